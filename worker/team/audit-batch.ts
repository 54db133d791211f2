/**
 * Audit writes that come after a call's answer, sent to the TeamDirectory in batches: the
 * completions of started rows (how each call ended) and the rows of calls recorded only once done
 * (relay_ping). One directory call carries every such write of this isolate made within
 * AUDIT_BATCH_MS, instead of one call per tool call. A tool call's answer never waits for them; its
 * invocation does (the caller keeps the promise under waitUntil), so a client that drops the
 * request still gets its row written. One call per tool call was the most costly part of an
 * ssh_exec_command after its answer: locally, where the Worker and every Durable Object share one
 * thread, its work landed on the next call (about 1.4 ms of each in the benchmark), and every
 * user's calls go through the one TeamDirectory. readAudit sends this isolate's batch before it
 * reads, so a reader sees its own calls. A batch that cannot be written leaves its rows `started`
 * (or unwritten), as a failed single write did, and says so in the log. A `started` row is never
 * batched: the gate writes it, durably, before anything is sent.
 */
import type { AuditEnd, AuditEntry } from '../audit/audit-log.ts';
import { logEvent } from '../log.ts';
import { AUDIT_WRITES_PER_CALL } from './audit-outbox.ts';
import { teamDirectory } from './team-directory.ts';

/** How long a write waits for others to share its directory call. */
export const AUDIT_BATCH_MS = 50;

export interface Completion {
  auditId: string;
  end: AuditEnd;
  tool: string;
}

let completions: Completion[] = [];
let rows: AuditEntry[] = [];
/** Settles once the batch collecting now has been sent (or failed); null while nothing waits. */
let due: Promise<void> | null = null;

/** Complete a started row, in the next batch; settles when that batch is written (never rejects). */
export function completeAudit(env: Env, completion: Completion): Promise<void> {
  completions.push(completion);
  return scheduled(env);
}

/** Record a complete row of a call already answered, in the next batch; settles when it is written (never rejects). */
export function recordAuditLater(env: Env, entry: AuditEntry): Promise<void> {
  rows.push(entry);
  return scheduled(env);
}

function scheduled(env: Env): Promise<void> {
  // A full batch goes at once.
  if (completions.length >= AUDIT_WRITES_PER_CALL || rows.length >= AUDIT_WRITES_PER_CALL) return sendAuditBatch(env);
  due ??= new Promise<void>((resolve) => setTimeout(resolve, AUDIT_BATCH_MS)).then(() => sendAuditBatch(env));
  return due;
}

/** Send the writes collected so far, now (readers, before they read; a full batch). */
export async function sendAuditBatch(env: Env): Promise<void> {
  const batch = { completions: completions.map(({ auditId, end }) => ({ auditId, end })), rows };
  const tools = [...new Set([...completions.map((completion) => completion.tool), ...rows.map((row) => row.tool)])];
  completions = [];
  rows = [];
  due = null;
  if (batch.completions.length === 0 && batch.rows.length === 0) return;
  try {
    await teamDirectory(env).writeAuditBatch(batch);
  } catch (error) {
    logEvent('error', 'could not write a batch of audit rows; completions stay as started', {
      completions: batch.completions.length,
      rows: batch.rows.length,
      tools,
      error: String(error),
    });
  }
}
