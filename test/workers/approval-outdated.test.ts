/**
 * When a held call's approval still stands against the gate's fresh answer (worker/mcp/command-hold.ts
 * approvalOutdated): the same policy revision and the same route. The end-to-end tests cover a
 * freeze and a policy edit through the stack; these also cover a route change, which the stack
 * cannot easily produce.
 */
import { describe, expect, it } from 'vitest';
import { approvalOutdated } from '../../worker/mcp/command-hold.ts';
import type { CallGate } from '../../worker/team/gate-call.ts';

const approved: CallGate = {
  route: { relay: 'relay-a', host: 'db1' },
  id: 'db1',
  qualified: 'relay-a/db1',
  command: { effect: 'approve', rule: { index: 2, note: null }, approvers: ['group:ops'] },
  policyRevision: 7,
};

describe('approvalOutdated', () => {
  it('lets the approved call run under the same revision and route, whatever the fresh ruling says of itself', () => {
    expect(approvalOutdated(approved, { ...approved })).toBeNull();
    expect(approvalOutdated(approved, { ...approved, command: { effect: 'allow', rule: null } })).toBeNull();
  });

  it('refuses after any policy edit, as the approval desk does', () => {
    expect(approvalOutdated(approved, { ...approved, policyRevision: 8 })).toContain('revision 7, now 8');
  });

  it('refuses when the host is reached through another relay or is another host', () => {
    expect(approvalOutdated(approved, { ...approved, route: { relay: 'relay-b', host: 'db1' }, qualified: 'relay-b/db1' })).toContain('relay-b/db1');
    expect(approvalOutdated(approved, { ...approved, route: { relay: 'relay-a', host: 'db2' }, qualified: 'relay-a/db2' })).toContain('reached another way');
  });
});
