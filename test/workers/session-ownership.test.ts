import { createExecutionContext, env, evictDurableObject, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { mcpApiHandler } from '../../worker/mcp/transport.ts';
import { CALLER_HEADER, NEW_SESSION_HEADER, SESSION_IDLE_MS } from '../../worker/mcp/session-object.ts';
import { INITIALIZE, RESOURCE } from './oauth-flow.ts';

/** The OAuth provider hands the API handler ctx.props; here we hand it two different users. */
async function asUser(userId: string, body: unknown, sessionId?: string, extraHeaders: Record<string, string> = {}): Promise<Response> {
  const base = createExecutionContext();
  const ctx = Object.assign(Object.create(Object.getPrototypeOf(base)), base, { props: { userId, username: userId } });
  const request = new Request(RESOURCE, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } : {}),
      ...extraHeaders,
    },
    body: JSON.stringify(body),
  });
  const response = await mcpApiHandler.fetch(request, env, ctx);
  await waitOnExecutionContext(base);
  return response;
}

describe('session ownership', () => {
  it('refuses a session to a user other than the one who opened it, as if it did not exist', async () => {
    const opened = await asUser('alice', INITIALIZE);
    const sessionId = opened.headers.get('mcp-session-id') ?? '';
    await opened.body?.cancel();
    expect(sessionId).not.toBe('');

    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    const intruder = await asUser('mallory', list, sessionId);
    expect(intruder.status).toBe(404);
    expect(await intruder.text()).toContain('Session not found');

    const owner = await asUser('alice', list, sessionId);
    expect(owner.status).toBe(200);
    await owner.body?.cancel();
  });

  it('keeps a session across eviction: the stored initialize is replayed, and the owner check still holds', async () => {
    const opened = await asUser('alice', INITIALIZE);
    const sessionId = opened.headers.get('mcp-session-id') ?? '';
    await opened.body?.cancel();
    expect((await asUser('alice', { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId)).status).toBe(202);

    await evictDurableObject(env.MCP_SESSION.get(env.MCP_SESSION.idFromName(sessionId)));

    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    expect((await asUser('mallory', list, sessionId)).status).toBe(404);
    const owner = await asUser('alice', list, sessionId);
    expect(owner.status).toBe(200);
    expect(owner.headers.get('mcp-session-id')).toBe(sessionId);
    expect(await owner.text()).toContain('ssh_exec_command');
  });

  it('answers 404 for a session id nobody opened, and 400 for a 2025 request with no session that is not an initialize', async () => {
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    const unknown = await asUser('alice', list, crypto.randomUUID());
    expect(unknown.status).toBe(404);
    const sessionless = await asUser('alice', list);
    expect(sessionless.status).toBe(400);
  });

  it('closes a session left unused: after the idle alarm its id answers 404, while a session in use is kept', async () => {
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    const open = async (): Promise<string> => {
      const opened = await asUser('alice', INITIALIZE);
      await opened.body?.cancel();
      return opened.headers.get('mcp-session-id') ?? '';
    };
    const stub = (sessionId: string): DurableObjectStub => env.MCP_SESSION.get(env.MCP_SESSION.idFromName(sessionId));

    const inUse = await open();
    expect(await runDurableObjectAlarm(stub(inUse))).toBe(true);
    const stillThere = await asUser('alice', list, inUse);
    expect(stillThere.status).toBe(200);
    await stillThere.body?.cancel();

    // Used, then evicted: the stored last use keeps it.
    await evictDurableObject(stub(inUse));
    expect(await runDurableObjectAlarm(stub(inUse))).toBe(true);
    const afterEviction = await asUser('alice', list, inUse);
    expect(afterEviction.status).toBe(200);
    await afterEviction.body?.cancel();

    // Unused for longer than the idle time (its stored last use set back a day): closed.
    const abandoned = await open();
    await runInDurableObject(stub(abandoned), async (_instance, state) => {
      await state.storage.put('lastUsed', Date.now() - SESSION_IDLE_MS - 1);
    });
    await evictDurableObject(stub(abandoned));
    expect(await runDurableObjectAlarm(stub(abandoned))).toBe(true);
    expect((await asUser('alice', list, abandoned)).status).toBe(404);
  });

  it('ignores the internal identity headers when a client sends them', async () => {
    const opened = await asUser('alice', INITIALIZE);
    const sessionId = opened.headers.get('mcp-session-id') ?? '';
    await opened.body?.cancel();
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
    // Mallory claims to be Alice in the header the Worker uses to tell the session who is calling.
    const spoofed = await asUser('mallory', list, sessionId, { [CALLER_HEADER]: JSON.stringify({ userId: 'alice', username: 'alice' }) });
    expect(spoofed.status).toBe(404);
    // And asks for a "new" session under Alice's id: the Worker mints its own id instead.
    const hijack = await asUser('mallory', INITIALIZE, undefined, { [NEW_SESSION_HEADER]: sessionId });
    expect(hijack.status).toBe(200);
    expect(hijack.headers.get('mcp-session-id')).not.toBe(sessionId);
    await hijack.body?.cancel();
    const owner = await asUser('alice', list, sessionId);
    expect(owner.status).toBe(200);
    await owner.body?.cancel();
  });

  it('refuses a request whose token carries no user', async () => {
    const base = createExecutionContext();
    const ctx = Object.assign(Object.create(Object.getPrototypeOf(base)), base, { props: {} });
    const response = await mcpApiHandler.fetch(new Request(RESOURCE, { method: 'POST', body: '{}' }), env, ctx);
    expect(response.status).toBe(403);
  });
});
