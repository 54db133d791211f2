/**
 * ssh_exec_command as an MCP task through the whole stack (real Worker, relay, sshd), with the
 * official SDK v1 client's experimental tasks on a 2025-11-25 session: the task is a background
 * job on the host, its result is the synchronous answer, its cancel stops the remote command, and
 * another user's task id is answered as a made-up one.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { adminApi } from '../harness/admin-api.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import { remoteProcesses } from '../harness/sshd.ts';
import { startStack, type Stack } from '../harness/stack.ts';
import { waitFor } from '../harness/wait.ts';

let stack: Stack;
let other: ConnectedClient | undefined;
/** Unique per run, so processes of another run or file are never mistaken for this one's. */
const RUN = `${process.pid}${Date.now() % 100_000}`;

type V1Client = Extract<ConnectedClient['raw'], { era: '2025-11-25' }>['client'];
type StreamMessage = { type: string; task?: { taskId: string; status: string }; result?: unknown; error?: { message: string } };

function v1(session: ConnectedClient): V1Client {
  if (session.raw.era !== '2025-11-25') throw new Error('this test needs a 2025-11-25 session');
  return session.raw.client;
}

/** Calls ssh_exec_command as a task; `onCreated` runs once the server answered with the task. */
async function runAsTask(client: V1Client, args: Record<string, unknown>, onCreated: (taskId: string) => void = () => undefined): Promise<StreamMessage[]> {
  const seen: StreamMessage[] = [];
  const stream = client.experimental.tasks.callToolStream({ name: 'ssh_exec_command', arguments: args }, undefined, { timeout: 60_000 });
  for await (const message of stream as AsyncIterable<StreamMessage>) {
    seen.push(message);
    if (message.type === 'taskCreated' && message.task) onCreated(message.task.taskId);
    if (seen.length > 500) break;
  }
  return seen;
}

beforeAll(async () => {
  stack = await startStack({ client: '2025-11-25' });
  // The client learns which tools take tasks from the tool list.
  await v1(stack.mcp).listTools();
});

afterAll(async () => {
  await other?.close().catch(() => undefined);
  await stack?.stop();
});

describe('exec tools as MCP tasks through the Worker (2025-11-25, SDK v1 client)', () => {
  it('offers ssh_exec_command as an optional task', async () => {
    const client = v1(stack.mcp);
    expect(client.getServerCapabilities()?.tasks).toEqual({ requests: { tools: { call: {} } }, cancel: {} });
    const { tools } = await client.listTools();
    expect(tools.find((tool) => tool.name === 'ssh_exec_command')?.execution).toEqual({ taskSupport: 'optional' });
    expect(tools.find((tool) => tool.name === 'ssh_start_job')?.execution).toBeUndefined();
  });

  it('runs `sleep 5; echo done` as a task and gets the synchronous answer', async () => {
    const seen = await runAsTask(v1(stack.mcp), { command: 'sleep 5; echo done', timeout: 60 });
    expect(seen[0]?.type, JSON.stringify(seen.map((m) => m.error?.message ?? m.type))).toBe('taskCreated');
    const taskId = seen[0]?.task?.taskId ?? '';
    expect(taskId).toMatch(/^[0-9a-f]{32}$/);
    expect(seen.some((message) => message.task?.status === 'working')).toBe(true);
    const last = seen.at(-1);
    expect(last?.type, JSON.stringify(last)).toBe('result');
    const result = last?.result as { structuredContent?: Record<string, unknown>; content?: Array<{ text?: string }>; isError?: boolean };
    expect(result.isError).toBe(false);
    expect(result.structuredContent).toMatchObject({ stdout: 'done\n', stderr: '', exit_code: 0, timed_out: false, stdout_truncated: false });
    expect(result.content?.[0]?.text).toBe('STDOUT:\ndone\n\n\nSTDERR: (empty)\n\nEXIT CODE: 0');
    // The task is the job: the job tools see it too.
    const status = await stack.call('ssh_job_status', { job_id: taskId });
    expect(status.structuredContent).toMatchObject({ state: 'exited', exit_code: 0 });
  });

  it('cancels the task: the remote command is stopped', async () => {
    const marker = `1000.${RUN}1`;
    const client = v1(stack.mcp);
    let cancel: Promise<unknown> | undefined;
    const seen = await runAsTask(client, { command: `sleep ${marker}`, timeout: 120 }, (taskId) => {
      cancel = waitFor(() => remoteProcesses(`sleep ${marker}`, stack.sshd.user).length === 1, 10_000, 'the sleep to start').then(() =>
        client.experimental.tasks.cancelTask(taskId),
      );
    });
    await expect(cancel).resolves.toMatchObject({ status: 'cancelled' });
    expect(seen.at(-1)?.type).toBe('error');
    expect(remoteProcesses(`sleep ${marker}`, stack.sshd.user)).toEqual([]);
  });

  it('refuses sudo: true as a task with a clear error, and starts no job (jobs do not run under sudo)', async () => {
    const marker = `1000.${RUN}2`;
    const seen = await runAsTask(v1(stack.mcp), { command: `sleep ${marker}`, timeout: 60, sudo: true });
    expect(seen.map((message) => message.type)).toEqual(['error']);
    expect(seen[0]?.error?.message).toContain('sudo: true does not run as a task');
    const jobs = await stack.call('ssh_list_jobs', {});
    expect(JSON.stringify(jobs)).not.toContain(marker);
  });

  it('refuses pty: true as a task with a clear error, and starts no job (jobs have no terminal)', async () => {
    const marker = `1000.${RUN}3`;
    const seen = await runAsTask(v1(stack.mcp), { command: `sleep ${marker}`, timeout: 60, pty: true });
    expect(seen.map((message) => message.type)).toEqual(['error']);
    expect(seen[0]?.error?.message).toContain('pty: true does not run as a task');
    const jobs = await stack.call('ssh_list_jobs', {});
    expect(JSON.stringify(jobs)).not.toContain(marker);
  });

  it("asks a command held for the requester's own confirmation on the session before it starts the task, and starts it on yes", async () => {
    const admin = adminApi(stack.worker);
    const added = await admin.post('users', { username: 'cleo', groups: [] });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    const grants = [{ subjects: ['user:cleo'], role: 'operator', hosts: ['*'] }];
    const rule = { effect: 'confirm', roles: ['operator'], hosts: ['*'], programs: ['touch'], note: 'touch needs your own yes' };
    expect((await admin.put('policy', { version: 1, grants, commandRules: [rule] })).status).toBe(200);
    const asked: string[] = [];
    const cleo = await connectMcpClient(
      stack.worker.mcpUrl,
      { username: 'cleo', password: String(added.body.password) },
      {
        era: '2025-11-25',
        answer: (message) => {
          asked.push(message);
          return { confirm: true };
        },
      },
    );
    try {
      await v1(cleo).listTools();
      const file = join(stack.sshd.home, `task-confirmed-${RUN}`);
      const seen = await runAsTask(v1(cleo), { command: `sleep 1; touch ${file}`, timeout: 60 });
      expect(seen[0]?.type, JSON.stringify(seen.map((m) => m.error?.message ?? m.type))).toBe('taskCreated');
      expect(seen.at(-1)?.type, JSON.stringify(seen.at(-1))).toBe('result');
      expect(asked).toHaveLength(1);
      expect(asked[0]).toContain(`touch ${file}`);
      expect(existsSync(file)).toBe(true);
    } finally {
      await cleo.close();
    }
  });

  it("answers another user's task id exactly as a made-up one", async () => {
    const admin = adminApi(stack.worker);
    const added = await admin.post('users', { username: 'tess', groups: ['ops'] });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect((await admin.put('policy', { version: 1, grants: [{ subjects: ['group:ops'], role: 'operator', hosts: ['*'] }] })).status).toBe(200);
    other = await connectMcpClient(stack.worker.mcpUrl, { username: 'tess', password: String(added.body.password) }, { era: '2025-11-25' });
    const seen = await runAsTask(v1(stack.mcp), { command: 'echo mine', timeout: 60 });
    const taskId = seen[0]?.task?.taskId ?? '';
    const errorOf = (promise: Promise<unknown>): Promise<unknown> =>
      promise.then(
        () => 'answered',
        (error: { code?: number; message?: string }) => ({ code: error.code, message: error.message }),
      );
    const theirs = v1(other);
    const answer = await errorOf(theirs.experimental.tasks.getTask(taskId));
    expect(answer).toMatchObject({ code: -32602 });
    expect(answer).toEqual(await errorOf(theirs.experimental.tasks.getTask('0'.repeat(32))));
    expect(await errorOf(theirs.experimental.tasks.getTaskResult(taskId, z.object({}).loose()))).toEqual(answer);
    await expect(v1(stack.mcp).experimental.tasks.getTask(taskId)).resolves.toMatchObject({ status: 'completed' });
  });
});
