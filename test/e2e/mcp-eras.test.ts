/**
 * One /mcp endpoint, both protocol eras, driven by the real SDK clients: the SDK v1 client on a
 * 2025-era session (served per request, the session in its id, questions and cancels through the
 * session's mailbox) and the SDK v2 client pinned to 2026-07-28 (stateless, createMcpHandler). What a 2025 client had must hold on both: progress during a call,
 * cancellation that stops the remote process, isolation between users; and a tool can ask its
 * caller a question mid-call on both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { connectMcpClient, MCP_ERAS, type ConnectedClient, type McpEra } from '../harness/mcp-client.ts';
import { expectProgressLines, PROGRESS_LINES_COMMAND, type SeenProgress } from '../harness/progress-lines.ts';
import { remoteProcesses } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

let stack: Stack;
let bobPassword = '';
const sessions: ConnectedClient[] = [];

beforeAll(async () => {
  // Only this stack turns the test tools on (test_ask_name).
  stack = await startStack({ workerVars: { MCP_REMOTE_EXEC_TEST_TOOLS: 'true' } });
  const admin = adminApi(stack.worker);
  const added = await admin.post('users', { username: 'bob', groups: [] });
  expect(added.status, JSON.stringify(added.body)).toBe(201);
  bobPassword = String(added.body.password);
  const saved = await admin.put('policy', { version: 1, grants: [{ subjects: ['user:bob'], role: 'operator', hosts: ['*'] }] });
  expect(saved.status, JSON.stringify(saved.body)).toBe(200);
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await stack?.stop();
});

async function signIn(
  era: McpEra,
  username = stack.worker.adminUser,
  password = stack.worker.adminPassword,
  answer?: (message: string) => Record<string, string> | 'decline',
): Promise<ConnectedClient> {
  const session = await connectMcpClient(stack.worker.mcpUrl, { username, password }, { era, ...(answer ? { answer } : {}) });
  sessions.push(session);
  return session;
}

async function until(check: () => boolean, what: string, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const running = (pattern: string): boolean => remoteProcesses(pattern, stack.sshd.user).length > 0;

/** The audit row of the one call that ran `command`, once it is no longer "started" (read through audit_log as the admin). */
async function finishedAuditOf(command: string): Promise<{ outcome: string; code: string | null }> {
  // A row stays "started" when the Worker never learned how the call ended.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const listed = await stack.call('audit_log', { tool: 'ssh_exec_command', limit: 50 });
    const entries = (listed.structuredContent as { entries: Array<{ target: string | null; outcome: string; code: string | null }> }).entries.filter(
      (entry) => entry.target === command,
    );
    expect(entries.length).toBeLessThanOrEqual(1);
    const entry = entries[0];
    if (entry && entry.outcome !== 'started') return entry;
    if (Date.now() > deadline) throw new Error(`the audit row of ${command} is ${entry ? 'still started' : 'missing'}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The headers a raw request on this session needs (2025: its session id and protocol version). */
function sessionHeaders(session: ConnectedClient): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    Authorization: `Bearer ${session.accessToken()}`,
  };
  if (session.raw.era === '2025-11-25') {
    headers['mcp-session-id'] = session.raw.transport.sessionId ?? '';
    headers['mcp-protocol-version'] = session.raw.transport.protocolVersion ?? '2025-11-25';
  }
  return headers;
}

describe.each(MCP_ERAS)('a %s client', (era) => {
  it('is asked a question mid-call and its answer reaches the tool', async () => {
    const asked: string[] = [];
    const session = await signIn(era, undefined, undefined, (message) => {
      asked.push(message);
      return { name: 'Ada' };
    });
    const result = await session.client.callTool({ name: 'test_ask_name', arguments: {} });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(result.structuredContent).toEqual({ name: 'Ada', era: era === '2026-07-28' ? 'modern' : 'legacy' });
    expect(asked).toEqual(['What name should the test tool greet?']);
  });

  it('gets the refusal, not an answer, when the user declines', async () => {
    const session = await signIn(era, undefined, undefined, () => 'decline');
    const result = await session.client.callTool({ name: 'test_ask_name', arguments: {} });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('decline');
  });

  it('receives progress with the latest output line, escaped and bounded, during a long command, before its result', async () => {
    const session = await signIn(era);
    const seen: SeenProgress[] = [];
    const result = await session.client.callTool({ name: 'ssh_exec_command', arguments: { command: PROGRESS_LINES_COMMAND, timeout: 30 } }, undefined, {
      onprogress: (progress) => seen.push(progress),
    });
    expect(result.structuredContent).toMatchObject({ stdout: expect.stringMatching(/^step 1\nstep 2 /), exit_code: 0 });
    expectProgressLines(seen);
  });

  it('stops the remote process when the client abandons the call (2025: notifications/cancelled; 2026-07-28: the request is dropped)', async () => {
    const session = await signIn(era);
    const marker = era === '2026-07-28' ? 'sleep 38.101' : 'sleep 38.102';
    const controller = new AbortController();
    const call = session.client.callTool({ name: 'ssh_exec_command', arguments: { command: marker, timeout: 60 } }, undefined, { signal: controller.signal });
    await until(() => running(marker), `${marker} starting`);
    controller.abort();
    await expect(call).rejects.toThrow();
    await until(() => !running(marker), `${marker} stopping`);
    // The call is audited to its end even though nobody waits for its answer any more.
    expect((await finishedAuditOf(marker)).outcome).not.toBe('started');
  });

  it('stops the remote process when the HTTP request carrying the call is dropped', async () => {
    const session = await signIn(era);
    const marker = era === '2026-07-28' ? 'sleep 38.201' : 'sleep 38.202';
    const controller = new AbortController();
    const params: Record<string, unknown> = { name: 'ssh_exec_command', arguments: { command: marker, timeout: 60 } };
    if (era === '2026-07-28') {
      // The 2026-07-28 envelope: every request names its protocol version and client in _meta.
      params._meta = {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': {},
      };
    }
    const response = await fetch(stack.worker.mcpUrl, {
      method: 'POST',
      headers: {
        ...sessionHeaders(session),
        ...(era === '2026-07-28' ? { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'ssh_exec_command' } : {}),
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params }),
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    await until(() => running(marker), `${marker} starting`);
    controller.abort();
    await until(() => !running(marker), `${marker} stopping`);
    expect((await finishedAuditOf(marker)).outcome).not.toBe('started');
  });

  it('keeps two users apart even when their JSON-RPC ids collide', async () => {
    const alice = await signIn(era);
    const bob = await signIn(era, 'bob', bobPassword);
    // Both clients have made the same requests so far, so their next ids are equal.
    const [fromAlice, fromBob] = await Promise.all([
      alice.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'sleep 0.5; echo alice-only' } }),
      bob.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'sleep 0.5; echo bob-only' } }),
    ]);
    expect(fromAlice.structuredContent).toMatchObject({ stdout: 'alice-only\n' });
    expect(fromBob.structuredContent).toMatchObject({ stdout: 'bob-only\n' });
    if (alice.raw.era === '2025-11-25') {
      // Bob's token on Alice's session id: as if the session did not exist.
      const stolen = await fetch(stack.worker.mcpUrl, {
        method: 'POST',
        headers: { ...sessionHeaders(alice), Authorization: `Bearer ${bob.accessToken()}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      });
      expect(stolen.status).toBe(404);
      expect(await stolen.text()).toContain('Session not found');
    }
  });
});

describe('/mcp without a token', () => {
  it.each([
    [
      '2025-era initialize',
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } },
    ],
    [
      '2026-07-28 discover',
      { jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } },
    ],
  ])('answers a %s with 401 pointing at the resource metadata', async (_name, body) => {
    const response = await fetch(stack.worker.mcpUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain(`resource_metadata="${stack.worker.url}/.well-known/oauth-protected-resource/mcp"`);
  });
});

describe('a 2025-era session', () => {
  it('refuses a standalone GET stream with 405', async () => {
    const session = await signIn('2025-11-25');
    const response = await fetch(stack.worker.mcpUrl, { headers: { ...sessionHeaders(session), Accept: 'text/event-stream' } });
    expect(response.status).toBe(405);
  });

  it("takes a cancel sent in the call's first moment, before the call begins to watch for one", async () => {
    const session = await signIn('2025-11-25');
    const marker = 'sleep 38.301';
    const controller = new AbortController();
    const call = session.client.callTool({ name: 'ssh_exec_command', arguments: { command: marker, timeout: 60 } }, undefined, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    await expect(call).rejects.toThrow();
    // The mailbox kept the cancel until the call looked: the call ends (its row is completed within
    // finishedAuditOf's 10 s) long before its 38 s.
    expect((await finishedAuditOf(marker)).outcome).not.toBe('started');
    expect(running(marker)).toBe(false);
  });

  it('answers DELETE with 405 (a session holds nothing to end), which the client accepts, and the session keeps working', async () => {
    const session = await signIn('2025-11-25');
    const headers = sessionHeaders(session);
    const deleted = await fetch(stack.worker.mcpUrl, { method: 'DELETE', headers });
    expect(deleted.status).toBe(405);
    expect(await deleted.text()).toContain('does not end sessions');
    // The SDK client's own DELETE takes 405 as the answer the protocol allows (and forgets the id).
    if (session.raw.era !== '2025-11-25') throw new Error('a 2025-era client was asked for');
    await session.raw.transport.terminateSession();
    expect(session.raw.transport.sessionId).toBeUndefined();
    const after = await fetch(stack.worker.mcpUrl, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }) });
    expect(after.status).toBe(200);
    expect(await after.text()).toContain('ssh_exec_command');
  });
});
