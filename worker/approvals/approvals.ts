/**
 * The seam between the executor (worker/mcp/policed-executor.ts) and the ApprovalDesk. When the
 * gate answers `approve` or `confirm` for a call, nothing reaches the relay: the executor calls
 * `holdForApproval`, which opens the record and waits for a decision within the call's own time
 * (with progress, so the client sees why it waits). Approved in time: the approval is used
 * (consumed) at once and the call runs. Not decided in time: the tool answers with the approval id
 * (a result, not an error), and `ssh_approval_status` carries the call on once it is approved.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { failure, success, type Outcome, type ToolError } from '../../shared/errors.ts';
import type { CommandClassification, CommandDecision } from '../../shared/shell/command-class.ts';
import { approvalDesk, type DeskCaller } from './approval-desk.ts';
import { OWN_APPROVALS_PATH } from './own-approvals-path.ts';
import { approvalArgsHash, type ApprovalCall } from './approval-call.ts';
import { approversLabel, type ApprovalBinding, type ApprovalRecord, type NewApproval } from './approval-record.ts';

/** The most a call waits on the server for another person's decision: under the 60 s cutoff common to clients. */
export const APPROVAL_INLINE_WAIT_MS = 50_000;
/** The desk is asked every 1 s at first, then less often, up to every 3 s. */
const FIRST_POLL_MS = 1_000;
const MAX_POLL_MS = 3_000;

export interface ApprovalRequester {
  userId: string;
  username: string;
  client: string | null;
  /** The OAuth grant of the requester's token: the wait stops once it is revoked. */
  grantId?: string;
}

/** What the executor knows when the gate holds a call. */
export interface ApprovalAsk {
  caller: ApprovalRequester;
  call: ApprovalCall;
  classification: CommandClassification;
  decision: Extract<CommandDecision, { effect: 'approve' | 'confirm' }>;
  policyRevision: number;
}

export interface WaitOptions {
  /** Epoch ms: stop waiting then (the caller bounds it by the call's timeout and APPROVAL_INLINE_WAIT_MS). */
  until: number;
  signal?: AbortSignal;
  /** A short line for the client's progress notification, e.g. "waiting for approval … by group:ops". */
  onProgress?: (message: string) => void;
  /** For tests: the first poll interval (default 1 s; grows to 3 s). */
  pollMs?: number;
}

/** Open an approval record for a held call. */
export async function requestApproval(env: Env, ask: ApprovalAsk): Promise<Outcome<{ id: string; expiresAt: string }>> {
  const request: NewApproval = {
    requester: { userId: ask.caller.userId, username: ask.caller.username },
    client: ask.caller.client,
    call: ask.call,
    argsHash: await approvalArgsHash(ask.call),
    class: ask.classification.class,
    reasons: ask.classification.reasons.slice(0, 20).map((reason) => reason.slice(0, 500)),
    rule: ask.decision.rule,
    policyRevision: ask.policyRevision,
    approvers: ask.decision.effect === 'approve' ? ask.decision.approvers : [],
    self: ask.decision.effect === 'confirm',
  };
  return approvalDesk(env).request(request);
}

/**
 * Wait until the approval leaves `pending` or `until` passes (or the signal aborts), asking the
 * desk every 1 → 3 s. Bounded in time by `until` and in count by (until - now) / 1 s + 2. Answers
 * the record as last read.
 */
export async function waitForDecision(env: Env, id: string, caller: DeskCaller, options: WaitOptions): Promise<Outcome<ApprovalRecord>> {
  const desk = approvalDesk(env);
  let interval = options.pollMs ?? FIRST_POLL_MS;
  const maxPolls = Math.ceil(Math.max(0, options.until - Date.now()) / Math.max(1, interval)) + 2;
  let last = await desk.status(id, caller);
  for (let poll = 0; poll < maxPolls; poll += 1) {
    if (!last.ok || last.value.state !== 'pending') return last;
    const left = options.until - Date.now();
    if (left <= 0 || options.signal?.aborted) return last;
    options.onProgress?.(`waiting for approval ${id} by ${approversLabel(last.value)}; expires ${new Date(last.value.expiresAt).toISOString()}`);
    await sleep(Math.min(interval, left), options.signal);
    interval = Math.min(MAX_POLL_MS, Math.round(interval * 1.5));
    last = await desk.status(id, caller);
  }
  return last;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Use an approval for the call about to run: refused (with the reason) unless every part matches.
 * Answers the record as used (its rule, approvers and whether it was the requester's own).
 */
export async function consumeApproval(env: Env, id: string, binding: ApprovalBinding): Promise<Outcome<ApprovalRecord>> {
  return approvalDesk(env).consume(id, binding);
}

/** The binding of a call as the executor is about to run it. */
export async function bindingFor(caller: ApprovalRequester, call: ApprovalCall, policyRevision: number): Promise<ApprovalBinding> {
  return {
    userId: caller.userId,
    client: caller.client,
    relay: call.relay,
    host: call.host,
    guest: call.guest,
    tool: call.tool,
    argsHash: await approvalArgsHash(call),
    policyRevision,
  };
}

/** What the executor does with a held call. */
export type ApprovalHold =
  /** Approved within the wait and already used: run the call now. */
  | { kind: 'granted'; id: string }
  /** Still waiting: return this result (not an error) to the client. */
  | { kind: 'pending'; id: string; result: CallToolResult }
  /** Rejected, expired, or could not be recorded: return this failure; nothing ran. */
  | { kind: 'refused'; error: ToolError };

/**
 * The whole hold for one call: open the record, wait up to `wait.until`, and either use the
 * approval (granted) or answer with the id (pending) or the refusal.
 */
export async function holdForApproval(env: Env, ask: ApprovalAsk, wait: WaitOptions): Promise<ApprovalHold> {
  const opened = await requestApproval(env, ask);
  if (!opened.ok) return { kind: 'refused', error: opened.error };
  const { id } = opened.value;
  const decided = await waitForDecision(env, id, ask.caller, wait);
  if (!decided.ok) return { kind: 'refused', error: decided.error };
  const record = decided.value;
  if (record.state === 'pending') return { kind: 'pending', id, result: pendingApprovalResult(record, env) };
  if (record.state !== 'approved') return { kind: 'refused', error: refusalOf(record) };
  const used = await consumeApproval(env, id, await bindingFor(ask.caller, ask.call, ask.policyRevision));
  return used.ok ? { kind: 'granted', id } : { kind: 'refused', error: used.error };
}

/** Why a decided record will not run. */
export function refusalOf(record: ApprovalRecord): ToolError {
  const by = record.decidedBy ? ` by ${record.decidedBy}` : '';
  switch (record.state) {
    case 'rejected':
      return failure('approval_refused', `Approval ${record.id} was rejected${by}; the command was not run.`).error;
    case 'expired':
      return failure(
        'approval_refused',
        record.decidedAt === null
          ? `Approval ${record.id} expired at ${new Date(record.expiresAt).toISOString()} without a decision; the command was not run.`
          : `Approval ${record.id} was approved${by} but not used in time; the command was not run.`,
      ).error;
    case 'used':
      return failure('approval_refused', `Approval ${record.id} was already used at ${new Date(record.usedAt ?? 0).toISOString()}; it runs its call once.`)
        .error;
    case 'pending':
    case 'approved':
      return failure('approval_refused', `Approval ${record.id} is ${record.state}.`).error;
    default: {
      const unhandled: never = record.state;
      return failure('internal', `Approval in an unknown state ${String(unhandled)}.`).error;
    }
  }
}

/** Where a requester confirms their own held commands (a signed-in page, never a tool). */
export function ownApprovalsUrl(env: Pick<Env, 'PUBLIC_URL'>): string {
  return new URL(OWN_APPROVALS_PATH, env.PUBLIC_URL).toString();
}

/**
 * The answer to a held call still waiting: a result (not an error) with the id and how to carry on,
 * for any client. For the requester's own confirmation it names the page where they give it: the
 * person, not the model, confirms.
 */
export function pendingApprovalResult(record: ApprovalRecord, env: Pick<Env, 'PUBLIC_URL'>): CallToolResult {
  const expiresAt = new Date(record.expiresAt).toISOString();
  const why = record.rule.note ? ` (rule ${record.rule.index}: ${record.rule.note})` : ` (rule ${record.rule.index})`;
  const text = [
    record.self
      ? `The command was NOT run: policy holds ${record.class} commands on ${record.host} for your own confirmation${why}.`
      : `The command was NOT run: policy holds ${record.class} commands on ${record.host} for approval${why}.`,
    `Approval ${record.id} is waiting for ${approversLabel(record)}; it expires at ${expiresAt}.`,
    ...(record.self
      ? [`The person who asked confirms it in a browser, signed in to this deployment: ${ownApprovalsUrl(env)} (an assistant cannot confirm it for them).`]
      : []),
    `Once it is approved, call ssh_approval_status with approval_id "${record.id}": that runs the command and returns its result.`,
  ].join('\n');
  // Text only: the held tool's outputSchema describes its own result, which this is not.
  return { content: [{ type: 'text', text }] };
}
