/**
 * The exec tools as MCP tasks (shared/task-calls.ts), on both eras, through real SDK parts: the
 * 2025-11-25 era with the SDK v1 client's experimental tasks over an in-memory transport, the
 * 2026-07-28 era with raw JSON-RPC through createMcpHandler, checked against the Tasks extension's
 * own schemas (@modelcontextprotocol/ext-tasks). The executor is a test double of JobExecutor
 * (job-executor-double.ts) until the real ones land.
 */
import {
  CallToolResultV2Schema,
  CancelTaskResultV2Schema,
  CreateTaskResultV2Schema,
  GetTaskResultV2Schema,
  UpdateTaskResultV2Schema,
} from '@modelcontextprotocol/ext-tasks/core/v2';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createMcpHandler, InMemoryTransport, McpServer } from '@modelcontextprotocol/server';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { failure } from '../../../shared/errors.ts';
import { buildMcpServer, type ProtocolEra } from '../../../shared/mcp-server.ts';
import { captureToolCallHandler } from '../../../shared/tool-call-capture.ts';
import type { ToolExecutor } from '../../../shared/tool-executor.ts';
import { registerTool } from '../../../shared/tool-registration.ts';
import { JobExecutorDouble, JobHostDouble } from './job-executor-double.ts';

const settings = {
  characterLimit: 40,
  defaultTimeoutSeconds: 30,
  maxFileSize: 1024,
  readBytesPerCall: 1024,
  writeBytesPerCall: 1024,
  transfersViaImageKit: false,
};
const LONG = 'ünïcødé 😀 line\n'.repeat(9);
const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const client of open.splice(0)) await client.close();
});

function server(executor: ToolExecutor, era: ProtocolEra, taskMinTimeoutSeconds = 10): McpServer {
  return buildMcpServer({ instructions: 'test', executor, settings, era, proxmox: false, imagekit: false, taskMinTimeoutSeconds });
}

async function legacyClient(executor: ToolExecutor): Promise<Client> {
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  await server(executor, 'legacy').connect(serverSide);
  const client = new Client({ name: 'task-test', version: '1' }, { capabilities: { tasks: {} }, defaultTaskPollInterval: 5 });
  await client.connect(clientSide);
  open.push(client);
  await client.listTools();
  return client;
}

type StreamMessage = { type: string; task?: { taskId: string; status: string }; result?: unknown; error?: { message: string } };

/** Runs a tool call as a task; `onCreated` runs once the task exists (the test ends the job there). */
async function runAsTask(client: Client, command: string, onCreated: (taskId: string) => void): Promise<StreamMessage[]> {
  const seen: StreamMessage[] = [];
  const stream = client.experimental.tasks.callToolStream({ name: 'ssh_exec_command', arguments: { command } });
  for await (const message of stream as AsyncIterable<StreamMessage>) {
    seen.push(message);
    if (message.type === 'taskCreated' && message.task) onCreated(message.task.taskId);
    if (seen.length > 200) break;
  }
  return seen;
}

describe('exec tools as tasks, 2025-11-25 (SDK v1 client, experimental tasks)', () => {
  it('declares task support (tools/call and cancel, no list) and marks only the exec tools optional', async () => {
    const client = await legacyClient(new JobExecutorDouble(new JobHostDouble(), 'ann'));
    expect(client.getServerCapabilities()?.tasks).toEqual({ requests: { tools: { call: {} } }, cancel: {} });
    const { tools } = await client.listTools();
    const marked = tools.filter((tool) => tool.execution?.taskSupport === 'optional').map((tool) => tool.name);
    expect(marked).toEqual(['ssh_exec_command']);
    expect(tools.length).toBeGreaterThan(1);
  });

  it('runs a command as a task and completes with exactly the synchronous answer', async () => {
    const host = new JobHostDouble();
    host.script('build', { stdout: LONG, stderr: 'warn ✓\u001b[31m red\n', exitCode: 3 });
    const client = await legacyClient(new JobExecutorDouble(host, 'ann'));
    const seen = await runAsTask(client, 'build', (taskId) => setTimeout(() => host.finish(taskId), 30));
    expect(seen[0]?.type).toBe('taskCreated');
    expect(seen.some((message) => message.type === 'taskStatus' && message.task?.status === 'working')).toBe(true);
    expect(seen.at(-2)?.task?.status).toBe('completed');
    const result = seen.at(-1);
    expect(result?.type).toBe('result');
    const synchronous = await client.callTool({ name: 'ssh_exec_command', arguments: { command: 'build' } });
    const { _meta: _taskMeta, ...taskResult } = result?.result as Record<string, unknown>;
    expect(taskResult).toEqual(synchronous);
    expect(JSON.stringify(synchronous)).toContain('truncated');
    expect(host.calls).toEqual(['start build', 'exec build']);
  });

  it('keeps a plain call (no task asked) synchronous: no job is started', async () => {
    const host = new JobHostDouble();
    host.script('uptime', { stdout: 'up 3 days\n', stderr: '', exitCode: 0 });
    const client = await legacyClient(new JobExecutorDouble(host, 'ann'));
    const result = await client.callTool({ name: 'ssh_exec_command', arguments: { command: 'uptime' } });
    expect(result.structuredContent).toMatchObject({ stdout: 'up 3 days\n', exit_code: 0 });
    expect(host.calls).toEqual(['exec uptime']);
  });

  it('completes a timed-out command with its error result inside, as the synchronous call answers', async () => {
    const host = new JobHostDouble();
    host.script('slow', { stdout: 'partial', stderr: '', exitCode: null, state: 'timed_out' });
    const client = await legacyClient(new JobExecutorDouble(host, 'ann'));
    const seen = await runAsTask(client, 'slow', (taskId) => host.finish(taskId));
    expect(seen.at(-2)?.task?.status).toBe('completed');
    const { _meta: _m, ...taskResult } = seen.at(-1)?.result as Record<string, unknown>;
    expect(taskResult).toMatchObject({ isError: true });
    expect(taskResult).toEqual(await client.callTool({ name: 'ssh_exec_command', arguments: { command: 'slow' } }));
  });

  it('reports a lost job as failed', async () => {
    const host = new JobHostDouble();
    host.script('vanish', { stdout: '', stderr: '', exitCode: null, state: 'lost' });
    const client = await legacyClient(new JobExecutorDouble(host, 'ann'));
    const seen = await runAsTask(client, 'vanish', (taskId) => host.finish(taskId));
    expect(seen.at(-2)?.task?.status).toBe('failed');
    expect(seen.at(-1)?.type).toBe('error');
  });

  it('cancels the job on tasks/cancel', async () => {
    const host = new JobHostDouble();
    const client = await legacyClient(new JobExecutorDouble(host, 'ann'));
    let cancelled: unknown;
    const seen = await runAsTask(client, 'sleep 1000', (taskId) => {
      cancelled = client.experimental.tasks.cancelTask(taskId);
    });
    const taskId = seen[0]?.task?.taskId ?? '';
    await expect(cancelled).resolves.toMatchObject({ taskId, status: 'cancelled' });
    expect(host.calls).toContain(`cancel ${taskId}`);
    expect(host.jobs.get(taskId)?.view.state).toBe('cancelled');
    expect(seen.at(-1)?.type).toBe('error');
    // Cancelling again: the task is terminal.
    await expect(client.experimental.tasks.cancelTask(taskId)).rejects.toMatchObject({ code: -32602 });
  });

  it("answers another user's task id exactly as a made-up one", async () => {
    const host = new JobHostDouble();
    const ann = await legacyClient(new JobExecutorDouble(host, 'ann'));
    const bob = await legacyClient(new JobExecutorDouble(host, 'bob'));
    const seen = await runAsTask(ann, 'sleep 1000', (taskId) => host.finish(taskId));
    const annTask = seen[0]?.task?.taskId ?? '';
    expect(annTask).toMatch(/^[0-9a-f]{32}$/);
    const errorOf = (promise: Promise<unknown>): Promise<unknown> =>
      promise.then(
        () => 'answered',
        (error: { code?: number; message?: string }) => ({ code: error.code, message: error.message }),
      );
    const theirs = await errorOf(bob.experimental.tasks.getTask(annTask));
    const madeUp = await errorOf(bob.experimental.tasks.getTask('0'.repeat(32)));
    const garbage = await errorOf(bob.experimental.tasks.getTask('../../etc/passwd\u0000'));
    expect(theirs).toMatchObject({ code: -32602 });
    expect(theirs).toEqual(madeUp);
    expect(garbage).toEqual(madeUp);
    expect(await errorOf(bob.experimental.tasks.cancelTask(annTask))).toEqual(madeUp);
    expect(await errorOf(bob.experimental.tasks.getTaskResult(annTask, z.object({}).loose()))).toEqual(madeUp);
    expect(host.calls.filter((call) => call.startsWith('cancel'))).toEqual([]);
    // The owner still reads it.
    await expect(ann.experimental.tasks.getTask(annTask)).resolves.toMatchObject({ status: 'completed' });
  });

  it("shows control characters in a host's error as escapes when a task method fails", async () => {
    const host = new JobHostDouble();
    const double = new JobExecutorDouble(host, 'ann');
    // A hostile host's stderr reaches the error message of a failed cancel (relay/job-ops.ts unreadable()).
    double.cancelJob = async () => failure('ssh_error', 'Host gave no readable answer: \u001b[2J\u001b]0;pwned\u0007\u202egnp.exe\r');
    const client = await legacyClient(double);
    let rejected: unknown;
    await runAsTask(client, 'sleep 1000', (taskId) => {
      rejected = client.experimental.tasks.cancelTask(taskId).then(
        () => 'answered',
        (error: { message?: string }) => error.message ?? '',
      );
      setTimeout(() => host.finish(taskId), 50);
    });
    const message = String(await rejected);
    expect(message).toContain('\\x1b[2J');
    expect(message).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  });

  it('refuses tasks/list (not offered)', async () => {
    const client = await legacyClient(new JobExecutorDouble(new JobHostDouble(), 'ann'));
    await expect(client.experimental.tasks.listTasks()).rejects.toMatchObject({ code: -32601 });
  });

  it('declares nothing and stays synchronous where the executor has no jobs', async () => {
    const host = new JobHostDouble();
    const double = new JobExecutorDouble(host, 'ann');
    const noJobs: ToolExecutor = { listHosts: () => double.listHosts(), exec: (request) => double.exec(request) };
    const client = await legacyClient(noJobs);
    expect(client.getServerCapabilities()?.tasks).toBeUndefined();
    const { tools } = await client.listTools();
    expect(tools.filter((tool) => tool.execution !== undefined)).toEqual([]);
    const seen = await runAsTask(client, 'uptime', () => undefined);
    expect(seen.map((message) => message.type)).toEqual(['result']);
    expect(host.calls).toEqual(['exec uptime']);
  });
});

describe('the SDK seam (pinned to @modelcontextprotocol/server 2.4.0)', () => {
  it("captures McpServer's own tools/call handler while tools are registered", async () => {
    const mcp = new McpServer({ name: 'x', version: '1' });
    const handler = captureToolCallHandler(mcp, () => {
      registerTool(mcp, 'probe', { inputSchema: z.object({}) }, async () => ({ content: [{ type: 'text', text: 'ok' }] }));
    });
    expect(handler).toBeTypeOf('function');
    // The server's own method is back in place: later registrations are not watched.
    expect(Object.hasOwn(mcp.server, 'setRequestHandler')).toBe(false);
  });
});

// ---- 2026-07-28: raw JSON-RPC through createMcpHandler

const EXTENSION = 'io.modelcontextprotocol/tasks';
let rpcId = 0;

function envelope(tasks: boolean): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': tasks ? { extensions: { [EXTENSION]: {} } } : {},
  };
}

interface Rpc {
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

function modernEndpoint(executor: ToolExecutor) {
  const handler = createMcpHandler(() => server(executor, 'modern'), { legacy: 'reject', responseMode: 'json' });
  return async (method: string, params: Record<string, unknown>, tasks: boolean, name?: string): Promise<Rpc> => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
    };
    if (name !== undefined) headers['mcp-name'] = name;
    const body = JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params: { ...params, _meta: envelope(tasks) } });
    const response = await handler.fetch(new Request('http://127.0.0.1/mcp', { method: 'POST', headers, body }));
    return (await response.json()) as Rpc;
  };
}

const call = (command: string, timeout = 60): Record<string, unknown> => ({ name: 'ssh_exec_command', arguments: { command, timeout } });
const withoutMeta = (result: Record<string, unknown> | undefined): Record<string, unknown> => {
  const { _meta: _ignored, ...rest } = result ?? {};
  return rest;
};

describe('exec tools as tasks, 2026-07-28 (extension io.modelcontextprotocol/tasks)', () => {
  it('answers an opted-in call with a task, then tasks/get carries the synchronous answer', async () => {
    const host = new JobHostDouble();
    host.script('build', { stdout: LONG, stderr: 'warn ✓\n', exitCode: 0 });
    const rpc = modernEndpoint(new JobExecutorDouble(host, 'ann'));
    const created = await rpc('tools/call', call('build'), true, 'ssh_exec_command');
    expect(CreateTaskResultV2Schema.safeParse(created.result).success).toBe(true);
    const taskId = String(created.result?.taskId);
    expect(created.result).toMatchObject({ resultType: 'task', status: 'working' });

    const working = await rpc('tasks/get', { taskId }, true, taskId);
    expect(GetTaskResultV2Schema.safeParse(working.result).success).toBe(true);
    expect(working.result).toMatchObject({ status: 'working' });

    host.finish(taskId);
    const done = await rpc('tasks/get', { taskId }, true, taskId);
    const parsed = GetTaskResultV2Schema.safeParse(done.result);
    expect(parsed.success).toBe(true);
    expect(done.result).toMatchObject({ resultType: 'complete', status: 'completed' });
    const taskResult = (done.result as { result: Record<string, unknown> }).result;
    expect(CallToolResultV2Schema.safeParse(taskResult).success).toBe(true);
    const synchronous = await rpc('tools/call', call('build'), false, 'ssh_exec_command');
    expect(withoutMeta(taskResult)).toEqual(withoutMeta(synchronous.result));
    expect(host.calls).toEqual(['start build', 'exec build']);
  });

  it('stays synchronous without the per-request opt-in, and below the minimum timeout', async () => {
    const host = new JobHostDouble();
    const rpc = modernEndpoint(new JobExecutorDouble(host, 'ann'));
    const plain = await rpc('tools/call', call('uptime'), false, 'ssh_exec_command');
    expect(plain.result).toMatchObject({ resultType: 'complete', structuredContent: { exit_code: 0 } });
    const short = await rpc('tools/call', call('df', 5), true, 'ssh_exec_command');
    expect(short.result).toMatchObject({ resultType: 'complete', structuredContent: { exit_code: 0 } });
    // A client's params.task is not this era's vocabulary: ignored.
    await rpc('tools/call', { ...call('ls'), task: { ttl: 1000 } }, false, 'ssh_exec_command');
    expect(host.calls).toEqual(['exec uptime', 'exec df', 'exec ls']);
  });

  it('answers a refused start as the synchronous call would (a tool error, no task)', async () => {
    const rpc = modernEndpoint(new JobExecutorDouble(new JobHostDouble(), 'ann'));
    const refused = await rpc('tools/call', call('refuse me'), true, 'ssh_exec_command');
    expect(refused.result).toMatchObject({ resultType: 'complete', isError: true });
    expect(JSON.stringify(refused.result)).toContain('access_denied');
  });

  it('cancels the job on tasks/cancel and acknowledges any id', async () => {
    const host = new JobHostDouble();
    const rpc = modernEndpoint(new JobExecutorDouble(host, 'ann'));
    const created = await rpc('tools/call', call('sleep 1000'), true, 'ssh_exec_command');
    const taskId = String(created.result?.taskId);
    const ack = await rpc('tasks/cancel', { taskId }, true, taskId);
    expect(CancelTaskResultV2Schema.safeParse(ack.result).success).toBe(true);
    expect(host.calls).toContain(`cancel ${taskId}`);
    const after = await rpc('tasks/get', { taskId }, true, taskId);
    expect(GetTaskResultV2Schema.safeParse(after.result).success).toBe(true);
    expect(after.result).toMatchObject({ status: 'cancelled' });
    const unknown = 'f'.repeat(32);
    expect((await rpc('tasks/cancel', { taskId: unknown }, true, unknown)).result).toEqual(ack.result);
  });

  it("answers another user's task id exactly as a made-up one (-32602)", async () => {
    const host = new JobHostDouble();
    const ann = modernEndpoint(new JobExecutorDouble(host, 'ann'));
    const bob = modernEndpoint(new JobExecutorDouble(host, 'bob'));
    const taskId = String((await ann('tools/call', call('sleep 1000'), true, 'ssh_exec_command')).result?.taskId);
    const madeUp = 'a'.repeat(32);
    const theirs = await bob('tasks/get', { taskId }, true, taskId);
    const none = await bob('tasks/get', { taskId: madeUp }, true, madeUp);
    expect(theirs.error?.code).toBe(-32602);
    expect(theirs.error).toEqual(none.error);
    await bob('tasks/cancel', { taskId }, true, taskId);
    expect(host.calls.filter((entry) => entry.startsWith('cancel'))).toEqual([]);
    expect(host.jobs.get(taskId)?.view.state).toBe('running');
  });

  it('refuses tasks/result and tasks/list (-32601), and the task methods without the opt-in (-32021)', async () => {
    const host = new JobHostDouble();
    const rpc = modernEndpoint(new JobExecutorDouble(host, 'ann'));
    const taskId = String((await rpc('tools/call', call('sleep 1000'), true, 'ssh_exec_command')).result?.taskId);
    expect((await rpc('tasks/result', { taskId }, true)).error?.code).toBe(-32601);
    expect((await rpc('tasks/list', {}, true)).error?.code).toBe(-32601);
    expect((await rpc('tasks/get', { taskId }, false, taskId)).error?.code).toBe(-32021);
    const update = await rpc('tasks/update', { taskId, inputResponses: {} }, true, taskId);
    expect(UpdateTaskResultV2Schema.safeParse(update.result).success).toBe(true);
  });

  it('lists no execution field and declares the extension', async () => {
    const rpc = modernEndpoint(new JobExecutorDouble(new JobHostDouble(), 'ann'));
    const listed = await rpc('tools/list', {}, true);
    const tools = (listed.result?.tools ?? []) as Array<Record<string, unknown>>;
    expect(tools.length).toBeGreaterThan(1);
    expect(tools.filter((tool) => 'execution' in tool)).toEqual([]);
    const discovered = await rpc('server/discover', {}, true);
    expect(JSON.stringify(discovered.result ?? discovered.error)).toContain(EXTENSION);
  });
});
