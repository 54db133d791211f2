/**
 * Exec tools as MCP tasks for a 2026-07-28 client (extension io.modelcontextprotocol/tasks), through
 * the real Worker, relay and sshd. The SDK v2 client has no task runtime, so the requests are raw
 * JSON-RPC with the signed-in client's token, and every answer is checked against the extension's
 * own schemas (@modelcontextprotocol/ext-tasks).
 */
import { CancelTaskResultV2Schema, CreateTaskResultV2Schema, GetTaskResultV2Schema } from '@modelcontextprotocol/ext-tasks/core/v2';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import { modernRpc, type Rpc } from '../harness/modern-rpc.ts';
import { processesRunning, remoteProcesses } from '../harness/sshd.ts';
import { startStack, type Stack } from '../harness/stack.ts';
import { sleep, waitFor } from '../harness/wait.ts';

const EXTENSION = 'io.modelcontextprotocol/tasks';
/** Unique per run, so processes of another run or file are never mistaken for this one's. */
const RUN = `${process.pid}${Date.now() % 100_000}`;

let stack: Stack;
let bob: ConnectedClient | undefined;
/** One request as a 2026-07-28 client sends it, opted in to tasks unless `capabilities` says otherwise. */
function rpc(
  session: ConnectedClient,
  method: string,
  params: Record<string, unknown>,
  name: string,
  capabilities: Record<string, unknown> = { extensions: { [EXTENSION]: {} } },
): Promise<Rpc> {
  return modernRpc(stack.worker.mcpUrl, session, method, params, name, capabilities);
}

/** The SSH user's processes whose command line is exactly `command`. */
function running(command: string): number[] {
  return processesRunning(command, stack.sshd.user);
}

beforeAll(async () => {
  stack = await startStack({ client: '2026-07-28' });
  const added = await adminApi(stack.worker).post('users', { username: 'bob', groups: [] });
  await adminApi(stack.worker).put('policy', { version: 1, grants: [{ subjects: ['user:bob'], role: 'operator', hosts: ['*'] }] });
  bob = await connectMcpClient(stack.worker.mcpUrl, { username: 'bob', password: String(added.body.password) }, { era: '2026-07-28' });
});

afterAll(async () => {
  await bob?.close().catch(() => undefined);
  if (stack) for (const pid of remoteProcesses(RUN, stack.sshd.user)) process.kill(pid, 'SIGKILL');
  await stack?.stop();
});

describe('exec tools as MCP tasks through the Worker (2026-07-28)', () => {
  it('answers an opted-in long call with a task whose tasks/get carries the synchronous answer', async () => {
    const created = await rpc(
      stack.mcp,
      'tools/call',
      { name: 'ssh_exec_command', arguments: { command: 'sleep 3; echo done', timeout: 60 } },
      'ssh_exec_command',
    );
    expect(CreateTaskResultV2Schema.safeParse(created.result).success, JSON.stringify(created)).toBe(true);
    expect(created.result).toMatchObject({ resultType: 'task', status: 'working' });
    const taskId = String(created.result?.taskId);
    let got: Rpc = {};
    for (const until = Date.now() + 30_000; Date.now() < until; await sleep(500)) {
      got = await rpc(stack.mcp, 'tasks/get', { taskId }, taskId);
      if (got.result?.status !== 'working') break;
    }
    expect(GetTaskResultV2Schema.safeParse(got.result).success, JSON.stringify(got)).toBe(true);
    expect(got.result).toMatchObject({ status: 'completed', result: { structuredContent: { stdout: 'done\n', exit_code: 0 } } });
    // A short call stays synchronous even when the client opts in.
    const quick = await rpc(stack.mcp, 'tools/call', { name: 'ssh_exec_command', arguments: { command: 'echo now', timeout: 5 } }, 'ssh_exec_command');
    expect(quick.result).toMatchObject({ structuredContent: { stdout: 'now\n' } });
  });

  it("asks a command held for the requester's own confirmation by input_required, and starts the task on the retry's yes", async () => {
    if (!bob) throw new Error('bob is not signed in');
    const admin = adminApi(stack.worker);
    const grants = [{ subjects: ['user:bob'], role: 'operator', hosts: ['*'] }];
    const rule = { effect: 'confirm', roles: ['operator'], hosts: ['*'], programs: ['touch'], note: 'touch needs your own yes' };
    expect((await admin.put('policy', { version: 1, grants, commandRules: [rule] })).status).toBe(200);
    try {
      const file = join(stack.sshd.home, `task-confirmed-${RUN}`);
      const call = { name: 'ssh_exec_command', arguments: { command: `sleep 1; touch ${file}`, timeout: 60 } };
      const askable = { elicitation: { form: {} }, extensions: { [EXTENSION]: {} } };
      const asked = await rpc(bob, 'tools/call', call, 'ssh_exec_command', askable);
      expect(asked.result, JSON.stringify(asked)).toMatchObject({ resultType: 'input_required' });
      expect(JSON.stringify(asked.result?.inputRequests)).toContain(`touch ${file}`);
      const created = await rpc(
        bob,
        'tools/call',
        // The retry carries the answer with the question's state, as a client does.
        { ...call, inputResponses: { confirm: { action: 'accept', content: { confirm: true } } }, requestState: asked.result?.requestState },
        'ssh_exec_command',
        askable,
      );
      expect(created.result, JSON.stringify(created)).toMatchObject({ resultType: 'task', status: 'working' });
      const taskId = String(created.result?.taskId);
      let got: Rpc = {};
      for (const until = Date.now() + 30_000; Date.now() < until; await sleep(500)) {
        got = await rpc(bob, 'tasks/get', { taskId }, taskId);
        if (got.result?.status !== 'working') break;
      }
      expect(got.result).toMatchObject({ status: 'completed', result: { structuredContent: { exit_code: 0 } } });
      expect(existsSync(file)).toBe(true);
    } finally {
      expect((await admin.put('policy', { version: 1, grants })).status).toBe(200);
    }
  });

  it('answers a pty: true call synchronously, with its terminal, even when the client opts in to tasks', async () => {
    const answered = await rpc(
      stack.mcp,
      'tools/call',
      { name: 'ssh_exec_command', arguments: { command: 'sleep 3; tty', timeout: 60, pty: true } },
      'ssh_exec_command',
    );
    expect(answered.result?.resultType).not.toBe('task');
    expect(answered.result).toMatchObject({ structuredContent: { exit_code: 0 } });
    expect(JSON.stringify(answered.result)).toContain('/dev/pts/');
  });

  it('stops the remote command on tasks/cancel', async () => {
    const command = `sleep 1000.${RUN}1`;
    const created = await rpc(stack.mcp, 'tools/call', { name: 'ssh_exec_command', arguments: { command, timeout: 120 } }, 'ssh_exec_command');
    const taskId = String(created.result?.taskId);
    await waitFor(() => running(command).length === 1, 10_000, 'the command to start');
    const ack = await rpc(stack.mcp, 'tasks/cancel', { taskId }, taskId);
    expect(CancelTaskResultV2Schema.safeParse(ack.result).success, JSON.stringify(ack)).toBe(true);
    await waitFor(() => running(command).length === 0, 10_000, 'the command to stop');
    expect((await rpc(stack.mcp, 'tasks/get', { taskId }, taskId)).result).toMatchObject({ status: 'cancelled' });
  });

  it("answers another user's task id exactly as a made-up one, and does not cancel it", async () => {
    if (!bob) throw new Error('no second user');
    const command = `sleep 1000.${RUN}2`;
    const created = await rpc(stack.mcp, 'tools/call', { name: 'ssh_exec_command', arguments: { command, timeout: 120 } }, 'ssh_exec_command');
    const taskId = String(created.result?.taskId);
    await waitFor(() => running(command).length === 1, 10_000, 'the command to start');
    const madeUp = 'e'.repeat(32);
    const theirs = await rpc(bob, 'tasks/get', { taskId }, taskId);
    const none = await rpc(bob, 'tasks/get', { taskId: madeUp }, madeUp);
    expect(theirs.error?.code).toBe(-32602);
    expect(theirs.error?.message.replace(taskId, 'ID')).toBe(none.error?.message.replace(madeUp, 'ID'));
    await rpc(bob, 'tasks/cancel', { taskId }, taskId);
    await sleep(1_000);
    expect(running(command)).toHaveLength(1);
    await rpc(stack.mcp, 'tasks/cancel', { taskId }, taskId);
    await waitFor(() => running(command).length === 0, 10_000, 'the command to stop');
  });
});
