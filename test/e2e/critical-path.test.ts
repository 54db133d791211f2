/**
 * The Durable Object calls on a tool call's critical path (issue 13, Benchmark): counted by the
 * Worker itself in test builds (worker/do-call-count.ts), for ssh_exec_command on one relay, for a
 * 2025-era client and a 2026-07-28 client: both are served by the Worker, one server per request.
 * What runs after the answer under waitUntil (the audit row's completion) is off the path, yet the
 * row is still completed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMcpClient, MCP_ERAS, type ConnectedClient, type McpEra } from '../harness/mcp-client.ts';
import { COUNT_DO_CALLS, waitForDoCalls } from '../harness/do-calls.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

/**
 * Per call: the gate (one TeamDirectory call: the caller's standing, the fleet, and the audit row
 * written into its outbox before the request is sent) and the relay hub, in both eras. Before the
 * cuts it was 5 and 6 (one hub call per relay for its inventory, the audit row's completion awaited
 * before the answer), then 3 and 4 (the started row written by a separate AuditLog call), then 2
 * and 3 (a 2025-era call crossed into its session object). A 2025-era call that runs past a second
 * also watches its session's mailbox for a cancel, beside the call and never holding up its answer:
 * that watch is not on the critical path and is not counted (the 3.5 s calls below check it).
 */
const EXPECTED_CALLS: Record<McpEra, number> = { '2025-11-25': 2, '2026-07-28': 2 };

let stack: Stack;
const sessions: ConnectedClient[] = [];

beforeAll(async () => {
  stack = await startStack({ workerVars: { MCP_REMOTE_EXEC_TEST_TOOLS: 'true' } });
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await stack?.stop();
});

describe.each(MCP_ERAS)('ssh_exec_command on one relay, %s client', (era) => {
  it(`makes ${EXPECTED_CALLS[era]} Durable Object calls before its answer, and its audit row is completed after it`, async () => {
    const session = await connectMcpClient(
      stack.worker.mcpUrl,
      { username: stack.worker.adminUser, password: stack.worker.adminPassword },
      { era, headers: COUNT_DO_CALLS },
    );
    sessions.push(session);
    const command = `echo critical-path-${era}`;
    const mark = stack.worker.process.mark();
    const result = await session.client.callTool({ name: 'ssh_exec_command', arguments: { command } });
    expect(textOf(result)).toContain(`critical-path-${era}`);
    expect(await waitForDoCalls(stack.worker, mark, 'ssh_exec_command', 1)).toEqual([EXPECTED_CALLS[era]]);
    // The completed row exists once the waitUntil work has run (never left "started").
    const deadline = Date.now() + 10_000;
    for (;;) {
      const listed = await session.client.callTool({ name: 'audit_log', arguments: { tool: 'ssh_exec_command', limit: 50 } });
      const entries = (listed.structuredContent as { entries: Array<{ target: string | null; outcome: string }> }).entries.filter(
        (entry) => entry.target === command,
      );
      expect(entries.length).toBe(1);
      if (entries[0]?.outcome === 'ok') break;
      if (Date.now() > deadline) throw new Error(`the audit row of ${command} is still ${entries[0]?.outcome}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it('asks the relay hub for the latest output line once per progress notification, and never without a progress token', async () => {
    const session = await connectMcpClient(
      stack.worker.mcpUrl,
      { username: stack.worker.adminUser, password: stack.worker.adminPassword },
      { era, headers: COUNT_DO_CALLS },
    );
    sessions.push(session);
    // Long enough for progress (from the third second on), with and without a token.
    const seen: string[] = [];
    let mark = stack.worker.process.mark();
    const withToken = await session.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'echo with-token; sleep 3.5' } }, undefined, {
      onprogress: (progress) => seen.push(progress.message ?? ''),
    });
    expect(textOf(withToken)).toContain('with-token');
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]).toContain('latest stdout: with-token');
    const [withCalls] = await waitForDoCalls(stack.worker, mark, 'ssh_exec_command', 1);
    expect(withCalls).toBeGreaterThanOrEqual(EXPECTED_CALLS[era] + seen.length);
    mark = stack.worker.process.mark();
    const withoutToken = await session.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'echo no-token; sleep 3.5' } });
    expect(textOf(withoutToken)).toContain('no-token');
    expect(await waitForDoCalls(stack.worker, mark, 'ssh_exec_command', 1)).toEqual([EXPECTED_CALLS[era]]);
  });
});

/**
 * relay_ping, the benchmark's no-op call: the standing and the relays' hosts from the team
 * directory's copy (one call), then the hub; its audit row is written after the answer.
 */
const PING_CALLS: Record<McpEra, number> = { '2025-11-25': 2, '2026-07-28': 2 };

describe.each(MCP_ERAS)('relay_ping, %s client', (era) => {
  it(`makes ${PING_CALLS[era]} Durable Object calls before its answer, and its audit row is written after it`, async () => {
    const session = await connectMcpClient(
      stack.worker.mcpUrl,
      { username: stack.worker.adminUser, password: stack.worker.adminPassword },
      { era, headers: COUNT_DO_CALLS },
    );
    sessions.push(session);
    const listedBefore = await session.client.callTool({ name: 'audit_log', arguments: { tool: 'relay_ping', limit: 500 } });
    const before = (listedBefore.structuredContent as { entries: unknown[] }).entries.length;
    const mark = stack.worker.process.mark();
    const result = await session.client.callTool({ name: 'relay_ping', arguments: {} });
    expect(result.isError).toBeFalsy();
    expect(await waitForDoCalls(stack.worker, mark, 'relay_ping', 1)).toEqual([PING_CALLS[era]]);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const listed = await session.client.callTool({ name: 'audit_log', arguments: { tool: 'relay_ping', limit: 500 } });
      const entries = (listed.structuredContent as { entries: Array<{ outcome: string; user: string }> }).entries;
      if (entries.length === before + 1) {
        expect(entries[0]).toMatchObject({ outcome: 'ok', user: stack.worker.adminUser });
        break;
      }
      expect(entries.length).toBe(before);
      if (Date.now() > deadline) throw new Error('the audit row of relay_ping was never written');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
});
