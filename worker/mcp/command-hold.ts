/**
 * Where a command that a rule holds for a person (approve, or the requester's own confirm) goes.
 * The gate let it through with its route and decision but wrote no `started` row, and nothing has
 * been sent. Here the call either waits for a decision within its own time (worker/approvals), or
 * uses an approval given earlier (ssh_approval_status carries a call on with its approval id):
 * used once, bound to the same user, client, host, exact command and policy revision. Then the
 * gate is asked again (the wait may have been long: the caller may have been frozen, disabled or
 * signed out, or the rules changed), and only if it still lets the approved call through is its
 * `started` row written and the call sent; otherwise the caller is told why, and nothing ran.
 */
import { waitUntil } from 'cloudflare:workers';
import type { ConfirmCall } from '../../shared/confirm-call.ts';
import { failure, success, type Outcome } from '../../shared/errors.ts';
import type { JobGuest } from '../../shared/jobs.ts';
import type { AuditEnd, StartedEntry } from '../audit/audit-log.ts';
import { APPROVAL_INLINE_WAIT_MS, bindingFor, consumeApproval, holdForApproval } from '../approvals/approvals.ts';
import type { ApprovalCall } from '../approvals/approval-call.ts';
import { holdForOwnConfirmation } from '../approvals/own-confirmation.ts';
import { beginAudit, finishAudit, recordCall, type CallGate } from '../team/gate-call.ts';
import type { GateAnswer, GateCommand } from '../team/team-directory.ts';
import type { Caller } from './policed-executor.ts';

/** The parts of a call that an approval binds, beside its route and command. */
export interface HeldCallDetails {
  timeoutMs: number;
  guest: JobGuest | null;
  /** ssh_exec_command under sudo: part of what an approval is bound to. */
  sudo?: boolean;
  signal: AbortSignal;
  /** Carry on with this approval (ssh_approval_status) instead of asking for a new one. */
  approvalId?: string;
  /** Progress for the client while the call waits ("waiting for approval … by group:ops"); null once it runs. */
  onWaiting?: (message: string | null) => void;
  /** Only when the client can be asked during the call: a `confirm` rule asks the requester here (shared/confirm-call.ts). */
  confirm?: ConfirmCall;
}

export interface HeldCall {
  env: Env;
  caller: Caller;
  /** The gate's answer: route, names, the approve/confirm decision and the policy revision. */
  gate: CallGate & {
    command:
      | { effect: 'approve'; rule: { index: number; note: string | null }; approvers: string[] }
      | { effect: 'confirm'; rule: { index: number; note: string | null } };
  };
  command: GateCommand;
  /** The audit row's fields as the gate saw them (time is when the call came in). */
  entry: StartedEntry;
  details: HeldCallDetails;
  /** The same gate question again, writing no `started` row (a refusal is recorded complete, as at the start). */
  regate: () => Promise<GateAnswer>;
}

/**
 * Why the gate's fresh answer no longer covers what was approved, or null when it does. As at the
 * desk, an approval does not outlive a policy edit. The host must still be reached the same way (a
 * relay's hosts change without a policy edit). And the command must now be allowed outright, or
 * held by the same rule for the same people: the caller's groups (and so the rule that applies)
 * can change without a policy edit too, and one person's yes does not stand for another's.
 */
export function approvalOutdated(approved: HeldCall['gate'], now: CallGate): string | null {
  if (now.policyRevision !== approved.policyRevision)
    return `The policy changed while the call waited (revision ${approved.policyRevision}, now ${now.policyRevision}); approvals do not outlive a policy edit.`;
  if (now.route.relay !== approved.route.relay || now.route.host !== approved.route.host)
    return `The host ${approved.qualified} is reached another way (${now.qualified}) since the call was approved.`;
  const ruling = now.command;
  if (ruling === null || ruling.effect === 'allow') return null;
  // The gate refuses a denied command outright; this is for the type's sake.
  if (ruling.effect === 'deny') return 'The command rules now refuse this command.';
  const before = approved.command;
  const approvers = (decision: { effect: string; approvers?: string[] }): string => [...(decision.approvers ?? [])].sort().join('\n');
  if (ruling.effect === before.effect && ruling.rule.index === before.rule.index && approvers(ruling) === approvers(before)) return null;
  const who = ruling.effect === 'approve' ? (ruling.approvers.length > 0 ? ruling.approvers.join(', ') : "the deployment's admins") : 'your own confirmation';
  return `The command rules now hold this call by rule ${ruling.rule.index} for ${who}, not by the rule that was approved.`;
}

function approvalCall(held: HeldCall): ApprovalCall {
  return {
    tool: held.entry.tool,
    relay: held.gate.route.relay,
    host: held.gate.qualified,
    guest: held.details.guest,
    command: held.command.text,
    timeoutMs: held.details.timeoutMs,
    ...(held.details.sudo ? { sudo: true as const } : {}),
  };
}

/** A held call that did not run, in the audit log (the desk records the approval's own story). */
function recordNotRun(held: HeldCall, code: string): void {
  waitUntil(
    recordCall(held.env, {
      ...held.entry,
      relay: held.gate.route.relay,
      host: held.gate.route.host,
      outcome: 'denied',
      code,
      exitCode: null,
      bytes: null,
      durationMs: Math.max(0, Date.now() - new Date(held.entry.time).getTime()),
    }),
  );
}

/**
 * Hold `held` until a person decides (within the call's time, at most APPROVAL_INLINE_WAIT_MS), or
 * use the approval it carries; run it once approved, else say why not. `details` of the run's
 * result go to its audit row.
 */
export async function holdForPerson<T>(
  held: HeldCall,
  run: (gate: CallGate) => Promise<Outcome<T>>,
  details: (value: T) => Pick<AuditEnd, 'exitCode' | 'bytes'>,
): Promise<Outcome<T>> {
  const { env, caller, gate } = held;
  const call = approvalCall(held);
  let approvalId: string;
  // What the approval was given under: this call's gate when it waited here; for an approval
  // carried on (ssh_approval_status), the rule its record was asked under, which may differ.
  let approved: HeldCall['gate'] = gate;
  if (held.details.approvalId !== undefined) {
    approvalId = held.details.approvalId;
    const used = await consumeApproval(env, approvalId, await bindingFor(caller, call, gate.policyRevision));
    if (!used.ok) {
      recordNotRun(held, used.error.code);
      return used;
    }
    const record = used.value;
    approved = {
      ...gate,
      command: record.self ? { effect: 'confirm', rule: record.rule } : { effect: 'approve', rule: record.rule, approvers: record.approvers },
    };
  } else {
    const ask = { caller, call, classification: held.command.classification, policyRevision: gate.policyRevision };
    const waitMs = Math.min(held.details.timeoutMs, APPROVAL_INLINE_WAIT_MS);
    const confirm = held.details.confirm;
    const hold =
      gate.command.effect === 'confirm' && confirm
        ? // The requester is asked during the call; without a client that can be asked, the same
          // record waits like any hold, and the requester confirms it on their approvals page.
          await holdForOwnConfirmation(env, { ...ask, decision: gate.command }, { confirm, hostLabel: gate.id, waitMs, signal: held.details.signal })
        : await holdForApproval(
            env,
            { ...ask, decision: gate.command },
            {
              until: Date.now() + waitMs,
              signal: held.details.signal,
              ...(held.details.onWaiting ? { onProgress: held.details.onWaiting } : {}),
            },
          );
    if (hold.kind === 'refused') {
      recordNotRun(held, hold.error.code);
      return failure(hold.error.code, hold.error.message);
    }
    if (hold.kind === 'pending') {
      recordNotRun(held, 'approval_pending');
      const text = hold.result.content.map((item) => (item.type === 'text' ? item.text : '')).join('\n');
      return failure('approval_pending', text);
    }
    approvalId = hold.id;
    held.details.onWaiting?.(null);
  }
  // A call that waited here asks the gate again: the caller's standing, grant and role, and the
  // rules, may have changed meanwhile (a refusal is recorded by the gate itself). One carried on
  // was gated as this request came in, a moment ago.
  let now: CallGate = gate;
  if (held.details.approvalId === undefined) {
    const fresh = await held.regate();
    if (!fresh.outcome.ok) return fresh.outcome;
    now = fresh.outcome.value;
  }
  const outdated = approvalOutdated(approved, now);
  if (outdated !== null) {
    recordNotRun(held, 'approval_refused');
    return failure('approval_refused', outdated);
  }
  // Approved, used and still allowed: from here on it is an ordinary call, audited from its start.
  const begun = await beginAudit(env, {
    ...held.entry,
    relay: gate.route.relay,
    host: gate.route.host,
    target: `${held.entry.target ?? ''} [approval ${approvalId}]`,
  });
  if (!begun.ok) return begun;
  const started = Date.now();
  const result = await run(gate);
  waitUntil(
    finishAudit(
      env,
      begun.value,
      {
        outcome: result.ok ? 'ok' : 'error',
        code: result.ok ? null : result.error.code,
        ...(result.ok ? details(result.value) : { exitCode: null, bytes: null }),
        durationMs: Date.now() - started,
      },
      held.entry.tool,
    ),
  );
  return result.ok ? success(result.value) : result;
}
