/**
 * The 2025-era session mailbox (worker/mcp/session-mailbox.ts): answers and cancels that arrive as
 * their own POSTs reach the call waiting for them, whichever comes first, and nothing piles up.
 */
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { MAX_ANSWER_CHARS } from '../../worker/mcp/session-mailbox.ts';

function mailbox(): DurableObjectStub<import('../../worker/mcp/session-mailbox.ts').McpSession> {
  return env.MCP_SESSION.get(env.MCP_SESSION.idFromName(`user\n${crypto.randomUUID()}`));
}

const answer = (id: string): Record<string, unknown> => ({ jsonrpc: '2.0', id, result: { action: 'accept', content: { confirm: true } } });

describe('the session mailbox', () => {
  it('hands an answer to the call already waiting for it', async () => {
    const box = mailbox();
    const waiting = box.awaitAnswer('q-1', 10_000);
    await box.answer('q-1', answer('q-1'));
    expect(await waiting).toEqual(answer('q-1'));
  });

  it('keeps an answer that comes before its waiter, once', async () => {
    const box = mailbox();
    await box.answer('q-2', answer('q-2'));
    expect(await box.awaitAnswer('q-2', 10_000)).toEqual(answer('q-2'));
    expect(await box.awaitAnswer('q-2', 20)).toBeNull();
  });

  it('gives nothing for a question with no answer, at the timeout, and nothing for another question id', async () => {
    const box = mailbox();
    await box.answer('q-3', answer('q-3'));
    expect(await box.awaitAnswer('q-other', 20)).toBeNull();
  });

  it('does not keep an oversized answer', async () => {
    const box = mailbox();
    const huge = { ...answer('q-4'), result: { action: 'accept', content: { text: 'x'.repeat(MAX_ANSWER_CHARS) } } };
    await box.answer('q-4', huge);
    expect(await box.awaitAnswer('q-4', 20)).toBeNull();
  });

  it('keeps an unclaimed answer and cancel across a restart of the object', async () => {
    const name = `user\n${crypto.randomUUID()}`;
    const stub = (): ReturnType<typeof mailbox> => env.MCP_SESSION.get(env.MCP_SESSION.idFromName(name));
    await stub().answer('q-8', answer('q-8'));
    await stub().cancel(8);
    await runInDurableObject(stub(), (_instance, state) => state.abort('restart')).catch(() => undefined);
    // A stub whose object restarted is broken: callers ask again through a fresh one (legacy-serving.ts).
    expect(await stub().awaitAnswer('q-8', 20)).toEqual(answer('q-8'));
    expect(await stub().awaitCancel(8, 0, 20)).toBe('cancelled');
  });

  it('turns a waiter away once 256 wait, instead of dropping one that waits', async () => {
    const box = mailbox();
    const watches = Array.from({ length: 256 }, (_, index) => box.awaitCancel(index, 0, 60_000));
    expect(await box.awaitCancel('one too many', 0, 60_000)).toBe('stop');
    await box.cancel(0);
    expect(await watches[0]).toBe('cancelled');
    await box.release([], 1);
    expect(await watches[1]).toBe('stop');
    for (let index = 2; index < 256; index += 1) await box.release([], index);
    await Promise.all(watches);
  });

  it('wakes every call that waits on one request id (a client that reused it), with no ping-pong between them', async () => {
    const box = mailbox();
    const first = box.awaitCancel(9, 0, 60_000);
    const second = box.awaitCancel(9, 0, 60_000);
    await box.cancel(9);
    expect(await Promise.all([first, second])).toEqual(['cancelled', 'cancelled']);
  });

  it('keeps at most 256 unclaimed answers: the oldest go first', async () => {
    const box = mailbox();
    for (let index = 0; index < 300; index += 1) await box.answer(`q-${index}`, answer(`q-${index}`));
    expect(await box.awaitAnswer('q-0', 20)).toBeNull();
    expect(await box.awaitAnswer('q-299', 20)).toEqual(answer('q-299'));
  });

  it('tells a watching call of its cancel, and a call that watches later of a cancel that came since it started', async () => {
    const box = mailbox();
    const watching = box.awaitCancel(5, 0, 10_000);
    await box.cancel(5);
    expect(await watching).toBe('cancelled');

    const before = Date.now() - 1000;
    await box.cancel('abc');
    expect(await box.awaitCancel('abc', before, 10_000)).toBe('cancelled');
    // 5 and "5" are different requests.
    await box.cancel('5');
    expect(await box.awaitCancel(5, before, 20)).toBe('again');
  });

  it('ignores a cancel older than the call (an id used again later is not cancelled by it)', async () => {
    const box = mailbox();
    await box.cancel(6);
    expect(await box.awaitCancel(6, Date.now() + 60_000, 20)).toBe('again');
  });

  it('lets go of waits when the call ends', async () => {
    const box = mailbox();
    const question = box.awaitAnswer('q-7', 60_000);
    const cancel = box.awaitCancel(7, 0, 60_000);
    await box.release(['q-7'], 7);
    expect(await question).toBeNull();
    expect(await cancel).toBe('stop');
  });
});
