/**
 * When a held call's approval still stands against the gate's fresh answer (worker/mcp/command-hold.ts
 * approvalOutdated): the same policy revision, the same route, and the command allowed outright or
 * held by the same rule for the same people. The end-to-end tests cover a freeze and a policy edit
 * through the stack; these also cover a route change and a rule that changed without a policy edit
 * (the caller's groups changed), which the stack cannot easily produce.
 */
import { describe, expect, it } from 'vitest';
import { approvalOutdated, type HeldCall } from '../../worker/mcp/command-hold.ts';
import type { CallGate } from '../../worker/team/gate-call.ts';

const rule = (index: number) => ({ index, note: null });

const approved: HeldCall['gate'] = {
  route: { relay: 'relay-a', host: 'db1' },
  id: 'db1',
  qualified: 'relay-a/db1',
  command: { effect: 'approve', rule: rule(2), approvers: ['group:ops', 'user:ann'] },
  policyRevision: 7,
};

function now(change: Partial<CallGate>): CallGate {
  return { ...approved, ...change };
}

describe('approvalOutdated', () => {
  it('lets the approved call run when the same rule holds it for the same people, in any order, or it is now allowed outright', () => {
    expect(approvalOutdated(approved, now({}))).toBeNull();
    expect(approvalOutdated(approved, now({ command: { effect: 'approve', rule: rule(2), approvers: ['user:ann', 'group:ops'] } }))).toBeNull();
    expect(approvalOutdated(approved, now({ command: { effect: 'allow', rule: null } }))).toBeNull();
  });

  it('refuses after any policy edit, as the approval desk does', () => {
    expect(approvalOutdated(approved, now({ policyRevision: 8 }))).toContain('revision 7, now 8');
  });

  it('refuses when the host is reached through another relay or is another host', () => {
    expect(approvalOutdated(approved, now({ route: { relay: 'relay-b', host: 'db1' }, qualified: 'relay-b/db1' }))).toContain('relay-b/db1');
    expect(approvalOutdated(approved, now({ route: { relay: 'relay-a', host: 'db2' }, qualified: 'relay-a/db2' }))).toContain('reached another way');
  });

  it('refuses when, under the same revision, another rule holds it, other people must approve it, or it asks for the requester instead', () => {
    expect(approvalOutdated(approved, now({ command: { effect: 'approve', rule: rule(0), approvers: ['group:ops', 'user:ann'] } }))).toContain('rule 0');
    expect(approvalOutdated(approved, now({ command: { effect: 'approve', rule: rule(2), approvers: ['group:ops'] } }))).toContain('for group:ops,');
    expect(approvalOutdated(approved, now({ command: { effect: 'approve', rule: rule(2), approvers: [] } }))).toContain("the deployment's admins");
    expect(approvalOutdated(approved, now({ command: { effect: 'confirm', rule: rule(2) } }))).toContain('your own confirmation');
    const confirmed: HeldCall['gate'] = { ...approved, command: { effect: 'confirm', rule: rule(1) } };
    expect(approvalOutdated(confirmed, now({ command: { effect: 'approve', rule: rule(1), approvers: [] } }))).toContain('rule 1');
    expect(approvalOutdated(confirmed, now({ command: { effect: 'confirm', rule: rule(1) } }))).toBeNull();
  });
});
