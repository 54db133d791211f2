/**
 * Review of 2025-era serving (worker/mcp/legacy-serving.ts, session-mailbox.ts): a hostile client
 * and faults against the real handler and the real mailbox Durable Object in the Workers pool.
 */
import { env, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import { beforeEach, describe, expect, it } from 'vitest';
import { CANCEL_WATCH_AFTER_MS } from '../../worker/mcp/legacy-call.ts';
import { readSession } from '../../worker/mcp/session-id.ts';
import type { McpSession } from '../../worker/mcp/session-mailbox.ts';
import { editedSessionId, requestAs, sendAs, type SentRequest } from './legacy-requests.ts';

let watchBreaker = 200;

/** Mailbox calls made by the Worker, by method name (the namespace is wrapped below). */
const mailboxCalls = new Map<string, number>();

function countingStub(stub: object): object {
  return new Proxy(stub, {
    get(target, property, receiver): unknown {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || property === 'then') return value;
      return (...args: unknown[]): unknown => {
        const calls = (mailboxCalls.get(String(property)) ?? 0) + 1;
        mailboxCalls.set(String(property), calls);
        // A breaker: watches that wake each other in a loop starve this one workerd (test, Worker and
        // mailbox share it), so past this many the watch fails (the call then stops watching).
        if (property === 'awaitCancel' && calls > watchBreaker) return Promise.reject(new Error('too many watches'));
        return Reflect.apply(value, target, args);
      };
    },
  });
}

/** The pool's env with the test tools on and the mailbox namespace counting its calls. */
const testEnv = ((): Env => {
  const namespace = env.MCP_SESSION;
  const counting = new Proxy(namespace, {
    get(target, property, receiver): unknown {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'get') return (...args: unknown[]): unknown => countingStub(Reflect.apply(value, target, args) as object);
      return value.bind(target);
    },
  });
  return { ...env, MCP_REMOTE_EXEC_TEST_TOOLS: 'true', MCP_SESSION: counting } as Env;
})();

function send(userId: string, body: unknown, sessionId?: string, method = 'POST'): SentRequest {
  return sendAs(userId, body, sessionId, method, testEnv);
}

function post(userId: string, body: unknown, sessionId?: string, method = 'POST'): Promise<Response> {
  return requestAs(userId, body, sessionId, method, testEnv);
}

const ELICITING_INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: { elicitation: {} }, clientInfo: { name: 'review', version: '1' } },
};

async function open(userId: string, initialize: unknown = ELICITING_INITIALIZE): Promise<string> {
  const opened = await post(userId, initialize);
  expect(opened.status).toBe(200);
  await opened.body?.cancel();
  const sessionId = opened.headers.get('mcp-session-id') ?? '';
  expect(sessionId).not.toBe('');
  return sessionId;
}

/** Reads JSON-RPC messages from an SSE body, one at a time. */
class EventReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private readonly queue: unknown[] = [];

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  /** The next message; null when the stream ended. Bounded by the stream (each test has its own timeout). */
  async next(): Promise<Record<string, unknown> | null> {
    for (let reads = 0; reads < 10_000; reads += 1) {
      const queued = this.queue.shift();
      if (queued !== undefined) return queued as Record<string, unknown>;
      const { done, value } = await this.reader.read();
      if (done) return null;
      this.buffer += this.decoder.decode(value, { stream: true });
      let cut = this.buffer.indexOf('\n\n');
      while (cut >= 0) {
        const event = this.buffer.slice(0, cut);
        this.buffer = this.buffer.slice(cut + 2);
        const data = event
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (data !== '') this.queue.push(JSON.parse(data));
        cut = this.buffer.indexOf('\n\n');
      }
    }
    throw new Error('too many reads');
  }

  async cancel(): Promise<void> {
    await this.reader.cancel('client went away');
  }
}

const ASK = (id: number | string): Record<string, unknown> => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'test_ask_name', arguments: {} } });

/** Start the asking tool and read up to its question: the stream, the question's wire id and the call's context. */
async function asked(userId: string, sessionId: string, id: number | string = 7): Promise<{ events: EventReader; wireId: string; ctx: ExecutionContext }> {
  const sent = send(userId, ASK(id), sessionId);
  const response = await sent.pending;
  expect(response.status).toBe(200);
  expect(response.body).not.toBeNull();
  const events = new EventReader(response.body as ReadableStream<Uint8Array>);
  const question = await events.next();
  expect(question?.method).toBe('elicitation/create');
  const wireId = question?.id;
  expect(typeof wireId).toBe('string');
  return { events, wireId: String(wireId), ctx: sent.ctx };
}

function mailboxOf(userId: string, sessionId: string): DurableObjectStub<McpSession> {
  const nonce = readSession(sessionId, userId)?.nonce ?? '';
  return env.MCP_SESSION.get(env.MCP_SESSION.idFromName(`${userId}\n${nonce}`));
}

const accept = (wireId: string): Record<string, unknown> => ({ jsonrpc: '2.0', id: wireId, result: { action: 'accept', content: { name: 'Ada' } } });

describe('2025-era serving under attack', () => {
  // The breaker counts per test.
  beforeEach(() => mailboxCalls.clear());

  it('delivers an answer to the asking tool (baseline)', async () => {
    const sessionId = await open('alice');
    const { events, wireId } = await asked('alice', sessionId);
    expect((await post('alice', accept(wireId), sessionId)).status).toBe(202);
    const result = await events.next();
    expect(JSON.stringify(result)).toContain('hello Ada');
  });

  it('hands an error answer to the tool at once', async () => {
    const sessionId = await open('alice');
    const { events, wireId } = await asked('alice', sessionId);
    expect((await post('alice', { jsonrpc: '2.0', id: wireId, error: { code: -32600, message: 'no form here' } }, sessionId)).status).toBe(202);
    const result = await events.next();
    expect(JSON.stringify(result)).toContain('could not be asked');
    expect(JSON.stringify(result)).toContain('no form here');
  });

  it("keeps another user's answer away from the question, even through an id carrying the asker's nonce", async () => {
    const sessionId = await open('alice');
    const nonce = readSession(sessionId, 'alice')?.nonce ?? '';
    const mallorys = editedSessionId(await open('mallory'), (claims) => (claims.n = nonce));
    const { events, wireId } = await asked('alice', sessionId);
    const forged = { jsonrpc: '2.0', id: wireId, result: { action: 'accept', content: { name: 'Mallory' } } };
    expect((await post('mallory', forged, mallorys)).status).toBe(202);
    expect((await post('mallory', forged, sessionId)).status).toBe(404);
    expect((await post('alice', accept(wireId), sessionId)).status).toBe(202);
    expect(JSON.stringify(await events.next())).toContain('hello Ada');
  });

  it("does not let another user's cancel, through an id carrying the caller's nonce, stop the call", async () => {
    const sessionId = await open('alice');
    const nonce = readSession(sessionId, 'alice')?.nonce ?? '';
    const mallorys = editedSessionId(await open('mallory'), (claims) => (claims.n = nonce));
    mailboxCalls.clear();
    const { events, wireId } = await asked('alice', sessionId, 31);
    await until(async () => (mailboxCalls.get('awaitCancel') ?? 0) > 0, 'the call watching for a cancel');
    await sleep(50);
    const cancel = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 31 } };
    expect((await post('mallory', cancel, mallorys)).status).toBe(202);
    expect((await post('mallory', cancel, sessionId)).status).toBe(404);
    expect((await post('alice', accept(wireId), sessionId)).status).toBe(202);
    expect(JSON.stringify(await events.next())).toContain('hello Ada');
  });

  it('lets go of the wait for an answer when the client drops the stream while its question is pending', async () => {
    const sessionId = await open('alice');
    const { events, wireId, ctx } = await asked('alice', sessionId);
    await events.cancel();
    await waitOnExecutionContext(ctx);
    // No waiter left: an answer now is kept, not handed to a call that is gone.
    const box = mailboxOf('alice', sessionId);
    await box.answer(wireId, accept(wireId));
    expect(await box.awaitAnswer(wireId, 50)).toEqual(accept(wireId));
  });

  it('does not loop when two running calls of one session share a request id and both watch for a cancel', async () => {
    const sessionId = await open('alice');
    const first = await asked('alice', sessionId, 9);
    const second = await asked('alice', sessionId, 9);
    mailboxCalls.clear();
    // Both calls start watching CANCEL_WATCH_AFTER_MS after they began; a quiet watch lasts 30 s, so
    // two and a half watch delays hold at most one watch per call (two if one was woken once).
    await sleep(CANCEL_WATCH_AFTER_MS * 2.5);
    const watches = mailboxCalls.get('awaitCancel') ?? 0;
    await post('alice', accept(first.wireId), sessionId);
    await post('alice', accept(second.wireId), sessionId);
    await first.events.next();
    await second.events.next();
    expect(watches).toBeLessThanOrEqual(4);
  });

  it('does not loop when more requests of one session watch for a cancel than the mailbox keeps waiters for (256)', async () => {
    const sessionId = await open('alice');
    // 257 calls that ask a question nobody answers: each waits for its answer and, after a moment,
    // watches for its cancel, one more than the mailbox keeps waiters for.
    const unread: Response[] = [];
    for (let index = 0; index < 257; index += 1) unread.push(await send('alice', ASK(2000 + index), sessionId).pending);
    mailboxCalls.clear();
    watchBreaker = 5000;
    // Each watches once it has run CANCEL_WATCH_AFTER_MS; a quiet watch lasts 30 s.
    await sleep(CANCEL_WATCH_AFTER_MS * 2.5);
    const watches = mailboxCalls.get('awaitCancel') ?? 0;
    watchBreaker = 200;
    for (const response of unread) await response.body?.cancel();
    expect(watches).toBeLessThanOrEqual(2 * 257);
  }, 30_000);

  it('never answers an initialize with success and a session id that is then not found (long client name or version)', async () => {
    for (const clientInfo of [
      { name: 'n'.repeat(300), version: '1' },
      { name: 'review', version: `1.0.0+${'b'.repeat(300)}` },
    ]) {
      const opened = await post('alice', { ...ELICITING_INITIALIZE, params: { ...ELICITING_INITIALIZE.params, clientInfo } });
      await opened.body?.cancel();
      // A refused initialize is fine; an accepted one must name a session that serves the next request.
      if (!opened.ok) continue;
      const sessionId = opened.headers.get('mcp-session-id') ?? '';
      const listed = await post('alice', { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId);
      await listed.body?.cancel();
      expect(listed.status, `session id ${sessionId.slice(0, 40)} of a client named ${clientInfo.name.slice(0, 20)}…`).toBe(200);
    }
  });

  it('still hands the answer to the tool when the mailbox restarts while the question is pending', async () => {
    const sessionId = await open('alice');
    const { events, wireId } = await asked('alice', sessionId);
    const box = mailboxOf('alice', sessionId);
    await until(() => waitsFor(box, 'answerWaiters', wireId), 'the wait for the answer reaching the mailbox');
    await runInDurableObject(box, (_instance, state) => state.abort('restart')).catch(() => undefined);
    expect((await post('alice', accept(wireId), sessionId)).status).toBe(202);
    expect(JSON.stringify(await events.next())).toContain('hello Ada');
  }, 20_000);

  it('fails a question at once, not at its timeout, when its mailbox turns the wait for the answer away', async () => {
    const sessionId = await open('alice');
    const box = mailboxOf('alice', sessionId);
    // 256 waits already there (the bound): the question's own wait is turned away.
    const filler = Array.from({ length: 256 }, (_, index) => box.awaitAnswer(`q-filler-${index}`, 60_000));
    const { events } = await asked('alice', sessionId);
    expect(JSON.stringify(await events.next())).toContain('could not be received');
    await box.release(
      Array.from({ length: 256 }, (_, index) => `q-filler-${index}`),
      null,
    );
    await Promise.all(filler);
  }, 20_000);

  it('cancels a watching call by message (baseline)', async () => {
    const sessionId = await open('alice');
    const { events, wireId } = await asked('alice', sessionId, 11);
    const box = mailboxOf('alice', sessionId);
    await until(() => waitsFor(box, 'cancelWaiters', 11), 'the call watching for a cancel');
    await post('alice', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 11 } }, sessionId);
    const next = await events.next();
    expect(next).toMatchObject({ method: 'notifications/cancelled', params: { requestId: wireId } });
  }, 20_000);

  it('still cancels a call by message after its mailbox restarted while the call watched', async () => {
    const sessionId = await open('alice');
    const { events, wireId } = await asked('alice', sessionId, 12);
    const box = mailboxOf('alice', sessionId);
    await until(() => waitsFor(box, 'cancelWaiters', 12), 'the call watching for a cancel');
    await runInDurableObject(box, (_instance, state) => state.abort('restart')).catch(() => undefined);
    await post('alice', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 12 } }, sessionId);
    const next = await events.next();
    expect(next).toMatchObject({ method: 'notifications/cancelled', params: { requestId: wireId } });
  }, 20_000);
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether the mailbox has a waiter on `key` in `which` (read inside the object). */
async function waitsFor(box: DurableObjectStub<McpSession>, which: 'answerWaiters' | 'cancelWaiters', key: string | number): Promise<boolean> {
  return runInDurableObject(box, (instance: McpSession) => {
    // Waiters are kept under the JSON of the id (5 and "5" are different requests).
    const waiters = Reflect.get(instance, which) as { waiting: Map<string, unknown> };
    return waiters.waiting.has(JSON.stringify(key));
  });
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`${what} did not happen`);
}
