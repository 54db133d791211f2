/**
 * What a deployment admin can do to relays, for the admin API and the admin page: see each relay's
 * state, issue a relay its own credential (the token is shown once; only its hash is kept), and
 * revoke one (its live connection is closed at once and its hosts leave every listing).
 */
import { z } from 'zod';
import { describeIssues } from '../../shared/describe-issues.ts';
import type { HostInventoryEntry } from '../../shared/protocol.ts';
import { sha256Hex } from '../auth/password-hash.ts';
import { newRelayToken, RELAY_NAME_PATTERN, RELAY_NAME_RULE } from '../../shared/relay-credential.ts';
import { logEvent } from '../log.ts';
import { relayHub } from '../relay/hub-stub.ts';
import { teamDirectory, type RelayRecordSummary } from '../team/team-directory.ts';
import type { ActionResult } from './admin-actions.ts';

export interface RelayStatus extends RelayRecordSummary {
  online: boolean;
  version: string | null;
  /** When its current connection began (online), or its last one did. */
  connectedAt: string | null;
  disconnectedAt: string | null;
  hosts: HostInventoryEntry[];
}

const newRelaySchema = z.object({ name: z.string().regex(RELAY_NAME_PATTERN, RELAY_NAME_RULE) }).strict();

export async function listRelayStatuses(env: Env): Promise<RelayStatus[]> {
  const records = await teamDirectory(env).listRelays();
  return Promise.all(
    records.map(async (record) => {
      const state = await relayHub(env, record.name).inventory();
      return {
        ...record,
        online: Boolean(state?.connected) && !record.revokedAt,
        version: state?.version ?? null,
        connectedAt: state?.connectedAt ?? null,
        disconnectedAt: state?.disconnectedAt ?? null,
        hosts: state?.hosts ?? [],
      };
    }),
  );
}

/** Issue relay `name` its own token. A relay already connected under that name with the deployment token is disconnected. */
export async function issueRelayCredential(
  env: Env,
  admin: string,
  body: unknown,
): Promise<ActionResult<{ relay: RelayRecordSummary; token: string; note: string }>> {
  const parsed = newRelaySchema.safeParse(body);
  if (!parsed.success) return { ok: false, reason: 'invalid_argument', message: describeIssues(parsed.error, 'relay') };
  // Names are matched without regard to case: keep the spelling already on record, so the name in
  // the token is the one the relay is admitted under.
  const directory = teamDirectory(env);
  const known = (await directory.listRelays()).find((relay) => relay.name.toLowerCase() === parsed.data.name.toLowerCase());
  const token = newRelayToken(known?.name ?? parsed.data.name);
  const issued = await directory.issueRelay(known?.name ?? parsed.data.name, await sha256Hex(token));
  if (!issued.ok) return { ok: false, reason: 'conflict', message: issued.message };
  await relayHub(env, issued.relay.name).disconnect('the relay was issued its own credential');
  logEvent('info', 'relay credential issued', { admin, relay: issued.relay.name });
  return {
    ok: true,
    relay: issued.relay,
    token,
    note: `Give this token to the relay as RELAY_TOKEN_FILE (mode 600) or RELAY_TOKEN; it names the relay "${issued.relay.name}", and it is not shown again.`,
  };
}

export async function revokeRelayCredential(env: Env, admin: string, name: string): Promise<ActionResult<{ relay: RelayRecordSummary }>> {
  const revoked = await teamDirectory(env).revokeRelay(name);
  if (!revoked.ok) return { ok: false, reason: 'not_found', message: revoked.message };
  await relayHub(env, revoked.relay.name).disconnect('the relay credential was revoked');
  logEvent('info', 'relay credential revoked', { admin, relay: revoked.relay.name });
  return { ok: true, relay: revoked.relay };
}
