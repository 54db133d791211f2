/**
 * The state that ties a 2026-07-28 client's answer to its question (shared/question-binding.ts).
 * With a record behind the question, the state is the record's id. Without one (stdio), a state
 * answers only the question it was made for (any part changed: no), once (a replay: no), within
 * its window (later: no); a forged, truncated or non-string state answers nothing.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ANSWER_WINDOW_MS, answersQuestion, questionState, sameState } from '../../../shared/question-binding.ts';

const parts: unknown[] = ['prod', null, 'touch /tmp/x', 'mutating', 'the stdio config (confirm)', 30_000];

afterEach(() => {
  vi.useRealTimers();
});

describe('a question with a record', () => {
  it("is answered by the record's own state only", async () => {
    const record = 'a'.repeat(32);
    expect(await questionState(parts, record)).toBe(`record:${record}`);
    expect(await answersQuestion(`record:${record}`, parts, record)).toBe(true);
    expect(await answersQuestion(`record:${'b'.repeat(32)}`, parts, record)).toBe(false);
    expect(await answersQuestion(undefined, parts, record)).toBe(false);
  });
});

describe('a question without a record', () => {
  it('is answered by its own state, once', async () => {
    const state = await questionState(parts);
    expect(state).toMatch(/^mac:[0-9a-f]{32}\.\d+\.[0-9a-f]{64}$/);
    expect(await questionState(parts)).not.toBe(state);
    expect(await answersQuestion(state, parts)).toBe(true);
    expect(await answersQuestion(state, parts)).toBe(false);
  });

  it('is not answered by the state of a question that differs in any part', async () => {
    for (let index = 0; index < parts.length; index += 1) {
      const changed = [...parts];
      changed[index] = index === 1 ? { kind: 'lxc', id: '101' } : `${String(parts[index])}!`;
      expect(await answersQuestion(await questionState(changed), parts)).toBe(false);
    }
  });

  it('is not answered after its window', async () => {
    vi.useFakeTimers({ now: Date.now() });
    const state = await questionState(parts);
    vi.setSystemTime(Date.now() + ANSWER_WINDOW_MS + 1);
    expect(await answersQuestion(state, parts)).toBe(false);
  });

  it('is not answered by a forged, altered or malformed state', async () => {
    const state = await questionState(parts);
    const [nonce, issued, signature] = state.slice('mac:'.length).split('.');
    const flipped = `${signature?.slice(0, -1)}${signature?.endsWith('0') ? '1' : '0'}`;
    for (const carried of [
      `mac:${nonce}.${issued}.${flipped}`,
      `mac:${nonce}.${Number(issued) + 1}.${signature}`,
      `mac:${'0'.repeat(32)}.${issued}.${signature}`,
      `mac:${nonce}.${issued}`,
      state.toUpperCase(),
      `${state} `,
      42,
      null,
      { state },
    ])
      expect(await answersQuestion(carried, parts)).toBe(false);
    expect(await answersQuestion(state, parts)).toBe(true);
  });
});

describe('sameState', () => {
  it('accepts only the exact string', () => {
    expect(sameState('mac:ab', 'mac:ab')).toBe(true);
    for (const carried of ['mac:ac', 'mac:a', 'mac:abc', '', undefined, null, 42, { state: 'mac:ab' }]) expect(sameState(carried, 'mac:ab')).toBe(false);
  });
});
