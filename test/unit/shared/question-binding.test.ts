/**
 * The state that ties a 2026-07-28 client's answer to its question (shared/question-binding.ts):
 * the same question gets the same state in this process, a question that differs in any part
 * (host, guest, command, class, rule, time) gets another, a record's id is its own state, and a
 * carried state counts only when it is exactly the expected string.
 */
import { describe, expect, it } from 'vitest';
import { questionState, sameState } from '../../../shared/question-binding.ts';

const parts: unknown[] = ['prod', null, 'touch /tmp/x', 'mutating', 'the stdio config (confirm)', 30_000];

describe('questionState', () => {
  it('is the same for the same question, and differs when any part differs', async () => {
    const state = await questionState(parts);
    expect(state).toMatch(/^mac:[0-9a-f]{64}$/);
    expect(await questionState([...parts])).toBe(state);
    for (let index = 0; index < parts.length; index += 1) {
      const changed = [...parts];
      changed[index] = index === 1 ? { kind: 'lxc', id: '101' } : `${String(parts[index])}!`;
      expect(await questionState(changed)).not.toBe(state);
    }
  });

  it("is the record's id when the question stands for a record", async () => {
    expect(await questionState(parts, 'a'.repeat(32))).toBe(`record:${'a'.repeat(32)}`);
  });
});

describe('sameState', () => {
  it('accepts only the exact string', () => {
    expect(sameState('mac:ab', 'mac:ab')).toBe(true);
    for (const carried of ['mac:ac', 'mac:a', 'mac:abc', '', undefined, null, 42, { state: 'mac:ab' }]) expect(sameState(carried, 'mac:ab')).toBe(false);
  });
});
