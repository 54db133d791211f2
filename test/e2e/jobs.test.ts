/**
 * Background jobs through the whole stack (real Worker, relay, sshd, MCP clients signed in as
 * several users): what each user may do with jobs under the team's policy, that one user's job is
 * invisible to another, that a cancel leaves nothing running on the host, that jobs do not hold
 * the SSH channels synchronous calls need, and that starts, cancels and ends are audited without
 * their output.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTeam, adminApi } from '../harness/admin-api.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import { processesRunning, remoteProcesses, type TestSshd } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { sleep, waitFor } from '../harness/wait.ts';

let stack: Stack;
const sessions: ConnectedClient[] = [];
const passwords = new Map<string, string>();
/** Unique per run, so processes of another run or file are never mistaken for this one's. */
const RUN = `${process.pid}${Date.now() % 100_000}`;

function relayConfig(sshd: TestSshd): unknown {
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath };
  return {
    relay_id: 'jobs-relay',
    known_hosts: [sshd.knownHostsPath],
    hosts: [
      // Its own jobs directory: jobs of other files (or of a failed earlier run) do not count against max_jobs here.
      { name: 'web', ...base, labels: { env: 'prod' }, max_connections: 2, jobs_dir: `~/.mcp-remote-exec/test-jobs-${RUN}` },
      { name: 'vault', ...base, labels: { env: 'prod' }, read_only: true },
    ],
  };
}

const POLICY = {
  version: 1,
  grants: [
    { subjects: ['group:ops'], role: 'operator', hosts: ['*'] },
    { subjects: ['user:bob'], role: 'viewer', hosts: ['*'] },
  ],
};

async function signIn(username: string): Promise<ConnectedClient> {
  const password = passwords.get(username);
  if (!password) throw new Error(`no password for ${username}`);
  const session = await connectMcpClient(stack.worker.mcpUrl, { username, password });
  sessions.push(session);
  return session;
}

async function call(session: ConnectedClient, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await session.client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 })) as CallToolResult;
}

function fields(result: CallToolResult): Record<string, unknown> {
  if (result.isError) throw new Error(textOf(result));
  return (result.structuredContent ?? {}) as Record<string, unknown>;
}

async function waitForState(session: ConnectedClient, jobId: string, done: (state: string) => boolean): Promise<Record<string, unknown>> {
  let status: Record<string, unknown> = {};
  for (const until = Date.now() + 60_000; Date.now() < until; await sleep(500)) {
    status = fields(await call(session, 'ssh_job_status', { job_id: jobId }));
    if (done(String(status.state))) return status;
  }
  throw new Error(`job ${jobId} stayed ${String(status.state)}`);
}

/** The SSH user's processes whose command line is exactly `command`. */
function running(command: string): number[] {
  return processesRunning(command, stack.sshd.user);
}

let alice: ConnectedClient;
let dave: ConnectedClient;
let bob: ConnectedClient;

beforeAll(async () => {
  stack = await startStack({ relay: (sshd) => ({ configFile: relayConfig(sshd) }), workerVars: { JOBS_PER_USER: '25' } });
  for (const [username, password] of await addTeam(
    stack.worker,
    [
      ['alice', ['ops']],
      ['dave', ['ops']],
      ['bob', []],
    ],
    POLICY,
  ))
    passwords.set(username, password);
  [alice, dave, bob] = await Promise.all([signIn('alice'), signIn('dave'), signIn('bob')]);
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  // Whatever a failed test left running (every command here carries RUN), by PID.
  if (stack) for (const pid of remoteProcesses(RUN, stack.sshd.user)) process.kill(pid, 'SIGKILL');
  if (stack) rmSync(join(stack.sshd.home, '.mcp-remote-exec', `test-jobs-${RUN}`), { recursive: true, force: true });
  await stack?.stop();
});

describe('background jobs through the Worker', () => {
  it('runs a job, shows its state and last lines, pages its output, and audits start and end without output', async () => {
    const secret = `not-in-audit-${RUN}`;
    const started = fields(await call(alice, 'ssh_start_job', { host: 'web', command: `echo ${secret}; echo warn >&2; exit 4`, name: 'short one' }));
    expect(started).toMatchObject({ host: 'web', name: 'short one', state: expect.stringMatching(/^(running|exited)$/) });
    const jobId = String(started.job_id);
    expect(jobId).toMatch(/^[0-9a-f]{32}$/);
    const ended = await waitForState(alice, jobId, (state) => state !== 'running');
    expect(ended).toMatchObject({ state: 'exited', exit_code: 4, stdout_tail: `${secret}\n`, stderr_tail: 'warn\n', stdout_bytes: secret.length + 1 });
    const text = textOf(await call(alice, 'ssh_job_status', { job_id: jobId }));
    expect(text).toContain('exited with code 4');
    const page = fields(await call(alice, 'ssh_job_output', { job_id: jobId, stream: 'stderr' }));
    expect(page).toMatchObject({ data: 'warn\n', encoding: 'utf-8', complete: true, next_offset: 5 });
    const listed = fields(await call(alice, 'ssh_list_jobs', { state: 'ended' }));
    expect((listed.jobs as Array<{ job_id: string }>).map((job) => job.job_id)).toContain(jobId);

    const audit = await adminApi(stack.worker).get(`audit?user=alice&limit=1000`);
    const rows = audit.body.entries as Array<{ tool: string; target: string | null; outcome: string; exitCode: number | null }>;
    expect(rows.filter((row) => row.tool === 'ssh_start_job')).toEqual([expect.objectContaining({ outcome: 'ok' })]);
    const ends = rows.filter((row) => row.tool === 'job_end' && row.target?.startsWith(`job ${jobId}:`));
    expect(ends).toEqual([expect.objectContaining({ outcome: 'error', exitCode: 4 })]);
    // The command is recorded (as for ssh_exec_command); what it printed never is.
    expect(JSON.stringify(rows.filter((row) => row.tool !== 'ssh_start_job' && row.tool !== 'job_end'))).not.toContain(secret);
  });

  it("answers another user's job id exactly as a made-up one", async () => {
    const started = fields(await call(alice, 'ssh_start_job', { host: 'web', command: `sleep 30.${RUN}1`, timeout: 60 }));
    const jobId = String(started.job_id);
    const madeUp = 'f'.repeat(32);
    for (const tool of ['ssh_job_status', 'ssh_job_output', 'ssh_cancel_job']) {
      const theirs = await call(dave, tool, { job_id: jobId });
      const none = await call(dave, tool, { job_id: madeUp });
      expect(theirs.isError).toBe(true);
      expect(textOf(theirs).replace(jobId, 'ID')).toBe(textOf(none).replace(madeUp, 'ID'));
      expect(textOf(theirs)).toContain('job_not_found');
    }
    // Still running: dave's cancel did nothing.
    expect(fields(await call(alice, 'ssh_job_status', { job_id: jobId })).state).toBe('running');
    expect(fields(await call(alice, 'ssh_cancel_job', { job_id: jobId })).state).toBe('cancelled');
  });

  it('lets a viewer neither start nor cancel, and refuses jobs on a read-only host', async () => {
    const refused = await call(bob, 'ssh_start_job', { host: 'web', command: 'touch /tmp/never' });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('access_denied');
    const readOnly = await call(alice, 'ssh_start_job', { host: 'vault', command: 'true' });
    expect(textOf(readOnly)).toContain('host_read_only');
  });

  it('cancels the whole tree, including setsid and nohup children, and says so', async () => {
    const marker = `1000.${RUN}2`;
    const command = `setsid sleep ${marker} & nohup sleep ${marker} >/dev/null 2>&1 & sleep ${marker}`;
    const started = fields(await call(alice, 'ssh_start_job', { host: 'web', command, timeout: 600 }));
    await waitFor(() => running(`sleep ${marker}`).length === 3, 10_000, 'three sleeps to start');
    const cancelled = fields(await call(alice, 'ssh_cancel_job', { job_id: String(started.job_id) }));
    expect(cancelled).toMatchObject({ state: 'cancelled', stop_confirmed: true, processes_may_still_run: [] });
    expect(running(`sleep ${marker}`)).toEqual([]);
    const audit = await adminApi(stack.worker).get('audit?tool=ssh_cancel_job&user=alice');
    expect(audit.body.entries).toContainEqual(expect.objectContaining({ target: `job ${String(started.job_id)}`, outcome: 'ok' }));
  });

  it('runs 20 jobs at once while synchronous commands on the same host still get a channel at once', async () => {
    const marker = `20.${RUN}3`;
    const ids = await Promise.all(
      Array.from({ length: 20 }, async (_, index) =>
        String(fields(await call(dave, 'ssh_start_job', { host: 'web', command: `sleep ${marker}; echo job ${index}` })).job_id),
      ),
    );
    expect(new Set(ids).size).toBe(20);
    await waitFor(() => running(`sleep ${marker}`).length === 20, 15_000, 'twenty jobs to run');
    // The host allows two SSH connections (max_connections 2): a job holding a channel for its life would starve these.
    for (let index = 0; index < 5; index += 1) {
      const result = await call(alice, 'ssh_exec_command', { host: 'web', command: `echo sync ${index}`, timeout: 10 });
      expect(fields(result)).toMatchObject({ stdout: `sync ${index}\n`, exit_code: 0 });
    }
    expect(running(`sleep ${marker}`)).toHaveLength(20);
    for (const id of ids) await call(dave, 'ssh_cancel_job', { job_id: id });
    expect(running(`sleep ${marker}`)).toEqual([]);
  });

  it("lets a deployment admin list and cancel everyone's jobs, audited, and nobody else", async () => {
    const started = fields(await call(alice, 'ssh_start_job', { host: 'web', command: `sleep 300.${RUN}4`, timeout: 600 }));
    const jobId = String(started.job_id);
    const everyone = fields(await stack.call('ssh_list_jobs', { all_users: true, state: 'active' }));
    expect(everyone.jobs).toContainEqual(expect.objectContaining({ job_id: jobId, owner: 'alice' }));
    // Without all_users an admin sees only their own jobs, like anyone.
    const own = fields(await stack.call('ssh_list_jobs', {}));
    expect((own.jobs as Array<{ job_id: string }>).map((job) => job.job_id)).not.toContain(jobId);
    const refused = await call(bob, 'ssh_list_jobs', { all_users: true });
    expect(textOf(refused)).toContain('access_denied');
    expect(fields(await stack.call('ssh_cancel_job', { job_id: jobId }))).toMatchObject({ state: 'cancelled' });
    expect(fields(await call(alice, 'ssh_job_status', { job_id: jobId })).state).toBe('cancelled');
    const audit = await adminApi(stack.worker).get(`audit?tool=ssh_cancel_job&user=${stack.worker.adminUser}`);
    expect(audit.body.entries).toContainEqual(expect.objectContaining({ target: `job ${jobId}`, outcome: 'ok' }));
  });

  it('refuses bad arguments with what to fix', async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['ssh_job_status', { job_id: '../etc' }, 'job_id must be the 32 hexadecimal digits'],
      ['ssh_start_job', { command: 'true', timeout: 86_401 }, 'at most 86400 seconds'],
      ['ssh_start_job', { command: 'true', name: 'a\u001b[2Jb' }, 'control or formatting characters'],
      ['ssh_job_output', { job_id: 'a'.repeat(32), limit: 10_000_000 }, 'limit must be at most'],
      ['ssh_start_job', { command: 'true', ctid: 101, vmid: 102 }, 'ctid or vmid, not both'],
    ];
    for (const [tool, args, expected] of cases) {
      const result = await call(alice, tool, args);
      expect(result.isError, tool).toBe(true);
      expect(textOf(result)).toContain(expected);
    }
  });
});
