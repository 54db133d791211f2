/**
 * 2025-era sessions served by the Worker with no stored session (worker/mcp/legacy-serving.ts): the
 * id carries the session, the token says who is calling, and a session is only ever its own user's.
 */
import { createExecutionContext, env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { mcpApiHandler } from '../../worker/mcp/transport.ts';
import { readSession } from '../../worker/mcp/session-id.ts';
import { INITIALIZE, RESOURCE } from './oauth-flow.ts';
import { editedSessionId, requestAs } from './legacy-requests.ts';

/** The OAuth provider hands the API handler ctx.props; here we hand it different users. */
const asUser = (userId: string, body: unknown, sessionId?: string, method = 'POST'): Promise<Response> => requestAs(userId, body, sessionId, method);

async function open(userId: string): Promise<string> {
  const opened = await asUser(userId, INITIALIZE);
  expect(opened.status).toBe(200);
  await opened.body?.cancel();
  const sessionId = opened.headers.get('mcp-session-id') ?? '';
  expect(sessionId).not.toBe('');
  return sessionId;
}

const LIST = { jsonrpc: '2.0', id: 2, method: 'tools/list' };

describe('2025-era session ownership', () => {
  it('refuses a session to a user other than the one who opened it, as if it did not exist', async () => {
    const sessionId = await open('alice');
    const intruder = await asUser('mallory', LIST, sessionId);
    expect(intruder.status).toBe(404);
    expect(await intruder.text()).toContain('Session not found');
    const owner = await asUser('alice', LIST, sessionId);
    expect(owner.status).toBe(200);
    expect(owner.headers.get('mcp-session-id')).toBe(sessionId);
    expect(await owner.text()).toContain('ssh_exec_command');
  });

  it('refuses an id edited to name another user, even one the editor owns otherwise', async () => {
    const mine = await open('mallory');
    const claimed = editedSessionId(mine, (claims) => (claims.u = 'alice'));
    expect((await asUser('mallory', LIST, claimed)).status).toBe(404);
  });

  it("keeps a user who names another user's nonce out of that user's mailbox", async () => {
    const alices = await open('alice');
    const nonce = readSession(alices, 'alice')?.nonce ?? '';
    expect(nonce).not.toBe('');
    // Mallory's own id, carrying Alice's nonce: it is Mallory's session, so it is served, but an
    // "answer" delivered through it lands in Mallory's mailbox, never in Alice's.
    const forged = editedSessionId(await open('mallory'), (claims) => (claims.n = nonce));
    const questionId = `q-${crypto.randomUUID()}`;
    const answer = { jsonrpc: '2.0', id: questionId, result: { action: 'accept', content: { confirm: true } } };
    expect((await asUser('mallory', answer, forged)).status).toBe(202);
    const alicesMailbox = env.MCP_SESSION.get(env.MCP_SESSION.idFromName(`alice\n${nonce}`));
    expect(await alicesMailbox.awaitAnswer(questionId, 50)).toBeNull();
    const mallorysMailbox = env.MCP_SESSION.get(env.MCP_SESSION.idFromName(`mallory\n${nonce}`));
    expect(await mallorysMailbox.awaitAnswer(questionId, 50)).toEqual(answer);
  });

  it('takes an answer that cannot be one (not a question id, or far larger than a form) with 202, and keeps nothing of it', async () => {
    const sessionId = await open('alice');
    const mailbox = env.MCP_SESSION.get(env.MCP_SESSION.idFromName(`alice\n${readSession(sessionId, 'alice')?.nonce ?? ''}`));
    const questionId = `q-${crypto.randomUUID()}`;
    const huge = { jsonrpc: '2.0', id: questionId, result: { action: 'accept', content: { text: 'x'.repeat(100_000) } } };
    expect((await asUser('alice', huge, sessionId)).status).toBe(202);
    expect(await mailbox.awaitAnswer(questionId, 20)).toBeNull();
    const odd = { jsonrpc: '2.0', id: 'not-a-question', result: {} };
    expect((await asUser('alice', odd, sessionId)).status).toBe(202);
    expect(await mailbox.awaitAnswer('not-a-question', 20)).toBeNull();
  });

  it('answers an initialize the server refuses with what is wrong, and no session', async () => {
    const bad = await asUser('alice', { ...INITIALIZE, params: { ...INITIALIZE.params, protocolVersion: 5 } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('mcp-session-id')).toBeNull();
    expect(await bad.text()).not.toContain('Mcp-Session-Id header is required');
  });

  it('answers 404 for ids nobody minted (random, tampered, oversized) and 400 for a request with no session that is not an initialize', async () => {
    const sessionId = await open('alice');
    for (const bad of [
      crypto.randomUUID(),
      `${sessionId.slice(0, -4)}AAAA`,
      `${sessionId}.`,
      'A'.repeat(5000),
      editedSessionId(sessionId, (claims) => (claims.v = 2)),
    ]) {
      expect((await asUser('alice', LIST, bad)).status, bad.slice(0, 40)).toBe(404);
    }
    expect((await asUser('alice', LIST)).status).toBe(400);
  });

  it('answers DELETE with 405 and a reason, and the session goes on working (it holds nothing to end)', async () => {
    const sessionId = await open('alice');
    const deleted = await asUser('alice', undefined, sessionId, 'DELETE');
    expect(deleted.status).toBe(405);
    expect(await deleted.text()).toContain('does not end sessions');
    const after = await asUser('alice', LIST, sessionId);
    expect(after.status).toBe(200);
    await after.body?.cancel();
  });

  it('accepts notifications and answers with 202 without running anything', async () => {
    const sessionId = await open('alice');
    expect((await asUser('alice', { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId)).status).toBe(202);
    expect((await asUser('alice', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } }, sessionId)).status).toBe(202);
  });

  it('refuses a request whose token carries no user', async () => {
    const base = createExecutionContext();
    const ctx = Object.assign(Object.create(Object.getPrototypeOf(base)), base, { props: {} });
    const response = await mcpApiHandler.fetch(new Request(RESOURCE, { method: 'POST', body: '{}' }), env, ctx);
    expect(response.status).toBe(403);
  });
});
