/**
 * The capabilities a relay reports for each host in its hello. Both sides use these names: the relay
 * sets them from its config, and the Worker reads them (a read-only host caps any role at viewer;
 * Proxmox tools appear only for hosts that carry the Proxmox capability).
 */

/** A host that accepts commands and writes (the default when it is not read-only). */
export const EXEC_CAPABILITY = 'exec';

/** The relay's config makes the host read-only: never more than viewer there, whatever the policy. */
export const READ_ONLY_CAPABILITY = 'read-only';

/** Hosts marked as Proxmox VE in the relay config carry this capability. */
export const PROXMOX_CAPABILITY = 'proxmox';

/** The relay can run background jobs on this host (job_* operations); older relays lack it. */
export const JOBS_CAPABILITY = 'jobs';
