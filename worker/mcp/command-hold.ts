/**
 * Where a command that a rule holds for a person (approve, or the requester's own confirm) goes.
 * The gate let it through with its route and decision but wrote no `started` row, and nothing has
 * been sent. Until approvals land this refuses it, clearly, and records the refusal; the approvals
 * part replaces the body of holdForPerson (request, wait, consume, then `run`, which sends it).
 */
import { waitUntil } from 'cloudflare:workers';
import { failure, type Outcome } from '../../shared/errors.ts';
import type { StartedEntry } from '../audit/audit-log.ts';
import { recordCall, type CallGate } from '../team/gate-call.ts';
import type { GateCommand } from '../team/team-directory.ts';
import type { Caller } from './policed-executor.ts';

export interface HeldCall {
  env: Env;
  caller: Caller;
  /** The gate's answer: route, names, the approve/confirm decision and the policy revision. */
  gate: CallGate & { command: { effect: 'approve' | 'confirm'; rule: { index: number; note: string | null } } };
  command: GateCommand;
  /** The audit row's fields as the gate saw them (time is when the call came in). */
  entry: StartedEntry;
}

/** Hold `held`, then run it once a person says yes; for now: refused, audited as denied. */
export async function holdForPerson<T>(held: HeldCall, _run: (gate: CallGate) => Promise<Outcome<T>>): Promise<Outcome<T>> {
  const { rule, effect } = held.gate.command;
  const note = rule.note !== null ? `: ${rule.note}` : '';
  const what = effect === 'approve' ? 'approval' : 'your confirmation';
  waitUntil(
    recordCall(held.env, {
      ...held.entry,
      relay: held.gate.route.relay,
      host: held.gate.route.host,
      outcome: 'denied',
      code: 'access_denied',
      exitCode: null,
      bytes: null,
      durationMs: Math.max(0, Date.now() - new Date(held.entry.time).getTime()),
    }),
  );
  return failure(
    'access_denied',
    `This command on ${held.gate.id} needs ${what} (rule ${rule.index}${note}); approvals are not available yet. Nothing was sent to the host.`,
  );
}
