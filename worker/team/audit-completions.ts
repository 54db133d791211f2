/**
 * The completions of started audit rows (how each call ended), written to the TeamDirectory in
 * batches: one directory call completes every row of this isolate that ended within
 * COMPLETION_BATCH_MS, instead of one call per tool call. A tool call's answer never waits for its
 * row's completion; its invocation does (the caller keeps the promise under waitUntil), so a client
 * that drops the request still gets its row completed. One call per tool call was the most costly
 * part of an ssh_exec_command after its answer: locally, where the Worker and every Durable Object
 * share one thread, its work landed on the next call (about 1.4 ms of each in the benchmark).
 * readAudit sends this isolate's batch before it reads, so a reader sees its own calls complete.
 * A batch that cannot be written leaves its rows `started`, as a failed single completion did, and
 * says so in the log.
 */
import type { AuditEnd } from '../audit/audit-log.ts';
import { logEvent } from '../log.ts';
import { COMPLETIONS_PER_CALL } from './audit-outbox.ts';
import { teamDirectory } from './team-directory.ts';

/** How long a completion waits for others to share its directory call. */
export const COMPLETION_BATCH_MS = 50;

export interface Completion {
  auditId: string;
  end: AuditEnd;
  tool: string;
}

let pending: Completion[] = [];
/** Settles once the batch collecting now has been sent (or failed); null while nothing waits. */
let due: Promise<void> | null = null;

/** Complete a started row, in the next batch; settles when that batch is written (never rejects). */
export function completeAudit(env: Env, completion: Completion): Promise<void> {
  pending.push(completion);
  // A full batch goes at once.
  if (pending.length >= COMPLETIONS_PER_CALL) return sendCompletions(env);
  due ??= new Promise<void>((resolve) => setTimeout(resolve, COMPLETION_BATCH_MS)).then(() => sendCompletions(env));
  return due;
}

/** Send the completions collected so far, now (readers, before they read; a full batch). */
export async function sendCompletions(env: Env): Promise<void> {
  const batch = pending;
  pending = [];
  due = null;
  if (batch.length === 0) return;
  try {
    await teamDirectory(env).finishAudits(batch.map(({ auditId, end }) => ({ auditId, end })));
  } catch (error) {
    const tools = [...new Set(batch.map((completion) => completion.tool))];
    logEvent('error', 'could not complete audit rows; they stay as started', { rows: batch.length, tools, error: String(error) });
  }
}
