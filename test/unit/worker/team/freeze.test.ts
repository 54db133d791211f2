/** Freeze marks (worker/team/freeze.ts): who a mark stops, and how freeze and unfreeze change the state. */
import { describe, expect, it } from 'vitest';
import { applyFreeze, freezeRequestSchema, frozenReason, NO_FREEZE } from '../../../../worker/team/freeze.ts';

const mark = { by: 'admin', at: '2026-12-01T10:00:00.000Z' };

describe('frozenReason', () => {
  it('stops nobody when nothing is frozen', () => {
    expect(frozenReason(NO_FREEZE, 'alice', 'site-a')).toBeNull();
  });
  it('stops everyone when the deployment is frozen, naming who and when', () => {
    const state = applyFreeze(NO_FREEZE, 'deployment', undefined, mark);
    expect(frozenReason(state, 'alice')).toBe(
      'This deployment was frozen by an admin (admin) at 2026-12-01T10:00:00.000Z: every new call is refused until an admin unfreezes it. Nothing was sent to the host.',
    );
  });
  it('stops only the frozen user, whatever the case of the name', () => {
    const state = applyFreeze(NO_FREEZE, 'user', 'Alice', mark);
    expect(frozenReason(state, 'alice')).toContain('Your account "Alice" was frozen');
    expect(frozenReason(state, 'ALICE')).not.toBeNull();
    expect(frozenReason(state, 'bob')).toBeNull();
  });
  it('stops calls through the frozen relay only once the relay is known', () => {
    const state = applyFreeze(NO_FREEZE, 'relay', 'site-a', mark);
    expect(frozenReason(state, 'alice')).toBeNull();
    expect(frozenReason(state, 'alice', 'SITE-A')).toContain('Relay "site-a" was frozen');
    expect(frozenReason(state, 'alice', 'site-b')).toBeNull();
  });
});

describe('applyFreeze', () => {
  it('keeps the first mark when frozen twice, and unfreezes one name only', () => {
    const later = { by: 'other', at: '2026-12-02T00:00:00.000Z' };
    let state = applyFreeze(NO_FREEZE, 'user', 'alice', mark);
    state = applyFreeze(state, 'user', 'ALICE', later);
    state = applyFreeze(state, 'user', 'bob', later);
    expect(state.users).toEqual([
      { name: 'alice', ...mark },
      { name: 'bob', ...later },
    ]);
    state = applyFreeze(state, 'user', 'Alice', null);
    expect(state.users).toEqual([{ name: 'bob', ...later }]);
    const twice = applyFreeze(applyFreeze(NO_FREEZE, 'deployment', undefined, mark), 'deployment', undefined, later);
    expect(twice.deployment).toEqual(mark);
    expect(applyFreeze(twice, 'deployment', undefined, null)).toEqual(NO_FREEZE);
  });
});

describe('freezeRequestSchema', () => {
  it.each([
    [{ scope: 'deployment' }, true],
    [{ scope: 'user', name: 'alice', cancelJobs: true }, true],
    [{ scope: 'relay', name: 'site-a' }, true],
    [{ scope: 'user' }, false],
    [{ scope: 'user', name: '../x' }, false],
    [{ scope: 'user', name: 'a\u001b[2Jb' }, false],
    [{ scope: 'relay', name: 'x'.repeat(65) }, false],
    [{ scope: 'deployment', name: 'x' }, false],
    [{ scope: 'everything' }, false],
    [{ scope: 'deployment', cancelJobs: 'yes' }, false],
    [{ scope: 'deployment', more: 1 }, false],
  ])('%j valid: %s', (body, valid) => {
    expect(freezeRequestSchema.safeParse(body).success).toBe(valid);
  });
});
