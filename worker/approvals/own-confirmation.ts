/**
 * A `confirm` rule's hold when the requester can be asked (a client that declared elicitation;
 * shared/confirm-call.ts): during the call on a 2025-era session, or, on 2026-07-28, by an
 * input_required result and the client's retry, which finds the same pending record (the desk
 * gives a repeated call its requester's pending record for exactly that call). The record is
 * opened as for any hold (self: true), so the desk audits the request, the decision and the use as usual; the
 * question names the host, the exact command, its class and the rule. Yes: the requester decides
 * their own record, it is used at once, and the call runs. No (decline or cancel): the record is
 * rejected by the requester and nothing ran. No answer (the client failed or timed out): the
 * record stays pending and the call answers like any pending hold, so the requester can still
 * confirm it on their approvals page (worker/approvals/own-approvals-page.ts); on 2026-07-28 the
 * tool returns the question as input_required instead of that answer.
 */
import type { ConfirmCall } from '../../shared/confirm-call.ts';
import { failure } from '../../shared/errors.ts';
import { approvalDesk } from './approval-desk.ts';
import { bindingFor, consumeApproval, pendingApprovalResult, requestApproval, type ApprovalAsk, type ApprovalHold } from './approvals.ts';

export interface OwnConfirmation {
  confirm: ConfirmCall;
  /** The host as the caller names it, for the question. */
  hostLabel: string;
  /** The most the question may wait for an answer (the call's time, bounded by the caller). */
  waitMs: number;
  signal: AbortSignal;
}

export async function holdForOwnConfirmation(env: Env, ask: ApprovalAsk & { decision: { effect: 'confirm' } }, own: OwnConfirmation): Promise<ApprovalHold> {
  const opened = await requestApproval(env, ask);
  if (!opened.ok) return { kind: 'refused', error: opened.error };
  const { id } = opened.value;
  const requester = ask.caller;
  const rule = `rule ${ask.decision.rule.index}${ask.decision.rule.note ? ` (${ask.decision.rule.note})` : ''} of this deployment's policy`;
  const answer = await own.confirm(
    { host: own.hostLabel, guest: ask.call.guest, command: ask.call.command, commandClass: ask.classification.class, rule, timeoutMs: own.waitMs, record: id },
    own.signal,
  );
  const desk = approvalDesk(env);
  // Nothing decided (not answered, or asked of a 2026-07-28 client, whose retry brings the answer):
  // unless it was decided on the approvals page meanwhile, the record waits.
  if (answer === 'unanswered' || answer === 'asked') {
    const record = await desk.status(id, requester);
    if (!record.ok) return { kind: 'refused', error: record.error };
    if (record.value.state === 'pending') return { kind: 'pending', id, result: pendingApprovalResult(record.value, env) };
  } else {
    const decided = await desk.decide(id, requester, answer === 'accept' ? 'approve' : 'reject');
    if (!decided.ok) return { kind: 'refused', error: decided.error };
    if (answer !== 'accept')
      return {
        kind: 'refused',
        error: failure('approval_refused', `You ${answer === 'decline' ? 'declined' : 'dismissed'} the confirmation (approval ${id}); the command was not run.`)
          .error,
      };
  }
  const used = await consumeApproval(env, id, await bindingFor(ask.caller, ask.call, ask.policyRevision));
  return used.ok ? { kind: 'granted', id } : { kind: 'refused', error: used.error };
}
