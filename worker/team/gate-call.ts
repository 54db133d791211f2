/**
 * The one policy check every tool call and every transfer link goes through (decided in the
 * TeamDirectory, worker/team/gate-decision.ts), and the audit rows of those calls, which go to the
 * TeamDirectory's outbox (worker/team/audit-outbox.ts) and from there to the AuditLog.
 */
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { relayStates } from '../relay/fleet.ts';
import type { RelayState } from '../relay/relay-hub.ts';
import type { AuditEnd, AuditEntry, StartedEntry } from '../audit/audit-log.ts';
import { logEvent } from '../log.ts';
import { completeAudit } from './audit-batch.ts';
import { frozenReason } from './freeze.ts';
import { inactiveReason } from './gate-decision.ts';
import { teamDirectory, type Access, type GateAnswer, type GateRequest } from './team-directory.ts';

export type { CallGate } from './gate-decision.ts';

/**
 * The caller's standing for a call that does not pass the gate (listings, pings): refused when
 * disabled, frozen, or when `grantId` (the caller's OAuth grant) was revoked.
 */
export async function standingOf(env: Env, username: string, grantId?: string): Promise<Outcome<Access>> {
  const access = await teamDirectory(env).access(username, grantId);
  if (!access.active) return failure('access_denied', inactiveReason(access, username));
  const frozen = frozenReason(access.freeze, access.subject.username);
  if (frozen !== null) return failure('access_denied', frozen);
  return success(access);
}

/** The caller's standing and the inventories of the relays that count. */
export async function standingAndFleet(env: Env, username: string, grantId?: string): Promise<{ standing: Outcome<Access>; relays: RelayState[] }> {
  const standing = await standingOf(env, username, grantId);
  if (!standing.ok) return { standing, relays: [] };
  return { standing, relays: await relayStates(env, standing.value.relays) };
}

/**
 * Decide a call and write its audit row, in one TeamDirectory call (TeamDirectory.gate): a call let
 * through gets its `started` row (when `begin`) before anything is sent, and its id to complete it
 * (finishAudit); a refused one is recorded complete. No row, no call: if the row cannot be written
 * the call is refused rather than run unrecorded.
 */
export async function gateCall(env: Env, request: GateRequest): Promise<GateAnswer> {
  try {
    return await teamDirectory(env).gate(request);
  } catch (error) {
    logEvent('error', 'could not decide or audit a call; it was not run', { tool: request.entry.tool, user: request.entry.user, error: String(error) });
    return {
      outcome: failure('internal', 'The audit log could not be written, so nothing was sent to the host. Retry in a moment.'),
      denied: false,
      auditId: null,
    };
  }
}

/** Write the `started` row of a call about to be sent, outside the gate (a transfer link after its claim). Refused when it cannot be written. */
export async function beginAudit(env: Env, entry: StartedEntry): Promise<Outcome<string>> {
  try {
    return success(await teamDirectory(env).beginAudit(entry));
  } catch (error) {
    logEvent('error', 'could not write the audit log; the call was not run', { tool: entry.tool, user: entry.user, error: String(error) });
    return failure('internal', 'The audit log could not be written, so nothing was sent to the host. Retry in a moment.');
  }
}

/**
 * Complete a started row, in this isolate's next batch of audit writes (audit-batch.ts). The
 * call already happened, so a failure is logged loudly, not thrown; the row stays `started`.
 * Settles once the row is written: keep it under waitUntil.
 */
export function finishAudit(env: Env, auditId: string, end: AuditEnd, tool: string): Promise<void> {
  return completeAudit(env, { auditId, end, tool });
}

/** Record a call refused or failed before it was sent, through the same outbox (logged, not thrown, on failure). */
export async function recordCall(env: Env, entry: AuditEntry): Promise<void> {
  try {
    await teamDirectory(env).recordAudit(entry);
  } catch (error) {
    logEvent('error', 'could not write the audit log', { tool: entry.tool, user: entry.user, error: String(error) });
  }
}
