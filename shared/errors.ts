/**
 * The one list of error codes. The relay maps ssh2/SFTP failures to these in one place
 * (relay/ssh-errors.ts); the Worker and the stdio mode turn them into tool results in one place
 * (describeError below). Codes double as wire strings in the protocol.
 */
export const ERROR_CODES = [
  'invalid_argument',
  'access_denied',
  'host_read_only',
  'relay_not_connected',
  'relay_disconnected',
  'relay_timeout',
  'relay_shutting_down',
  'host_not_configured',
  'host_ambiguous',
  'host_unreachable',
  'host_busy',
  'relay_busy',
  'auth_failed',
  'host_key_unknown',
  'host_key_changed',
  'ssh_error',
  'guest_error',
  'sudo_failed',
  'imagekit_error',
  'transfer_closed',
  'path_not_found',
  'path_is_directory',
  'not_a_directory',
  'permission_denied',
  'already_exists',
  'file_too_large',
  'cancelled',
  'protocol_error',
  'version_mismatch',
  'job_not_found',
  'job_limit',
  'approval_not_found',
  'approval_refused',
  'approval_pending',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A failure as it travels between relay, Worker and tool result. Never carries a secret. */
export interface ToolError {
  code: ErrorCode;
  /** What happened, specific to this call (e.g. which host, which fingerprint). */
  message: string;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ToolError };

export function failure(code: ErrorCode, message: string): { ok: false; error: ToolError } {
  return { ok: false, error: { code, message } };
}

export function success<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/**
 * What the person should do about each code. Exhaustive: adding a code fails to compile until
 * it has advice here.
 */
export function adviceFor(code: ErrorCode): string {
  switch (code) {
    case 'invalid_argument':
      return 'Correct the argument named above and call the tool again.';
    case 'access_denied':
      return "Your team's policy does not allow this. Ask an admin of this deployment for a grant; ssh_list_hosts shows what you may do on each host.";
    case 'host_read_only':
      return 'The relay\'s own configuration allows only reading on this host ("read_only": true there), whatever your role: no grant changes that. Its operator can lift it in the relay configuration on the relay machine, then restart the relay.';
    case 'relay_not_connected':
      return 'No relay is connected to this server. Start the relay on a machine that can reach your hosts (see the README, "Running the relay"), then retry.';
    case 'relay_disconnected':
      return 'The relay disconnected while the request was in flight, so its outcome is unknown. Check on the host whether it took effect before running it again; it was not retried automatically.';
    case 'relay_timeout':
      return 'The relay did not answer in time; the outcome is unknown. Check the relay logs and the host before retrying.';
    case 'relay_shutting_down':
      return 'The relay is shutting down and accepts no new work. Retry once it has restarted.';
    case 'host_not_configured':
      return 'Call ssh_list_hosts to see the host names you can use, or add the host to the relay configuration.';
    case 'host_ambiguous':
      return 'Several hosts are configured: pass the host argument (ssh_list_hosts lists them).';
    case 'host_unreachable':
      return 'Check that the host is up, that its SSH port is open from the relay machine, and the address and port in the relay configuration.';
    case 'host_busy':
      return 'Too many commands are running on this host at once. Wait for some to finish and retry, or raise max_connections for the host in the relay configuration.';
    case 'relay_busy':
      return 'Too many requests are in flight on this relay: you have used your share of it, or it is full. Wait for some of your calls to finish and retry; run fewer at once.';
    case 'auth_failed':
      return 'Check the user name and the key or password for this host in the relay configuration, and that the key is authorised on the host.';
    case 'host_key_unknown':
      return 'The host key is not trusted yet. Verify the fingerprint above out of band, then trust it as shown, or pin it in the relay configuration.';
    case 'host_key_changed':
      return 'The host key differs from the trusted one: this may be an attack or a reinstalled host. Verify the new fingerprint out of band before replacing the old key in known_hosts.';
    case 'ssh_error':
      return 'The SSH session failed; retry, and check the relay logs if it persists.';
    case 'guest_error':
      return 'Proxmox (pct or qm) refused; its own message is above. Check that the container or VM exists and is running (proxmox_list_containers, proxmox_container_status).';
    case 'imagekit_error':
      return 'ImageKit (the transfer storage) failed or refused; its answer is above. Check the ImageKit credentials and account, then retry.';
    case 'transfer_closed':
      return 'This transfer is finished, expired or not yours; nothing was changed. Start a new one with imagekit_request_upload or imagekit_request_download.';
    case 'path_not_found':
      return "Check the path (absolute, or relative to the SSH user's home directory); ssh_list_directory shows what is there.";
    case 'path_is_directory':
      return 'The path is a directory; give the path of a file (ssh_list_directory lists the directory).';
    case 'not_a_directory':
      return 'A part of the path that should be a directory is a file; check the path.';
    case 'sudo_failed':
      return 'sudo on the host did not run the command (the message says why); nothing ran as root. Fix the sudo rule or the sudo password source in the relay configuration (sudo_password_env, sudo_password_file, or SSH_SUDO_PASSWORD in stdio mode), or run the command without sudo.';
    case 'permission_denied':
      return 'The SSH user may not do this at that path; use a path it can access, or change the permissions on the host.';
    case 'already_exists':
      return 'Nothing was changed. Pass overwrite=true to replace it, or choose another path.';
    case 'file_too_large':
      return 'Nothing was written. The limit is MAX_FILE_SIZE; move larger files another way, or raise the limit.';
    case 'cancelled':
      return 'The request was cancelled; the remote process was stopped.';
    case 'protocol_error':
      return 'The relay and the server disagreed on a message; check that both run the same release.';
    case 'version_mismatch':
      return 'Upgrade the relay and the server to the same release.';
    case 'job_not_found':
      return 'Check the job id (ssh_list_jobs lists your jobs). Jobs and their output are deleted some time after they end; a job started by someone else is not visible to you.';
    case 'job_limit':
      return 'Too many jobs are running at once (the limit named above). Wait for one to end, or cancel one with ssh_cancel_job, then start again.';
    case 'approval_not_found':
      return 'Check the approval id: it is the one the held call returned to you. An approval asked for by someone else is not visible to you.';
    case 'approval_pending':
      return 'Nothing ran yet. When the approval above is granted, call ssh_approval_status with its approval_id: that runs the command once and returns its result. Do not retry the call itself; that asks for another approval.';
    case 'approval_refused':
      return 'Nothing was run. The reason is above; if the command should still run, call the tool again: a new approval is asked for.';
    case 'internal':
      return 'An unexpected error occurred; the operator can find details in the server logs.';
    default: {
      const unhandled: never = code;
      return unhandled;
    }
  }
}

/** The text a person reads: code, what happened, what to do. */
export function describeError(error: ToolError): string {
  return `Error [${error.code}]: ${error.message}\n${adviceFor(error.code)}`;
}
