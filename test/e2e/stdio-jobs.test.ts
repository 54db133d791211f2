/**
 * Background jobs in the stdio mode, end to end: the built command over stdio, the real sshd, the
 * job records in the state directory. A job outlives the stdio server (SIGKILLed and started
 * again on the same state directory), its whole output comes back byte-exact, cancel stops its
 * whole process tree (checked in /proc), and the limits and unknown ids answer clearly.
 */
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../harness/wait.ts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newJobId } from '../../shared/jobs.ts';
import { remoteProcesses, startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { connectStdio, runCliOnce, stdioEnv, type StdioSession } from '../harness/stdio.ts';

let sshd: TestSshd;
const sessions: StdioSession[] = [];
/** Markers of the sleeps these tests start (unique to this file: other files share the user). */
const MARKERS = ['sleep 1017.1', 'sleep 1017.2', 'sleep 1017.3', 'sleep 1017.4'];

beforeAll(async () => {
  sshd = await startSshd();
});

afterEach(() => {
  for (const pid of MARKERS.flatMap((pattern) => remoteProcesses(pattern, sshd.user))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await sshd?.stop();
});

function jobEnv(extra: Record<string, string> = {}): Record<string, string> {
  // The server looks at its jobs every 200 ms, so an end is noticed without a status call.
  return stdioEnv(sshd, { MCP_REMOTE_EXEC_STATE_DIR: mkdtempSync(join(tmpdir(), 'mre-stdio-jobs-state-')), JOB_CHECK_MS: '200', ...extra });
}

async function open(env: Record<string, string>): Promise<StdioSession> {
  const session = await connectStdio(env);
  sessions.push(session);
  return session;
}

async function call(session: StdioSession, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await session.client.callTool({ name, arguments: args }, CallToolResultSchema));
}

interface JobAnswer {
  job_id: string;
  state: string;
  exit_code: number | null;
  stop_confirmed: boolean | null;
  processes_may_still_run: string[];
  stdout_bytes: number;
}

function job(result: CallToolResult): JobAnswer {
  if (result.isError) throw new Error(`the tool failed: ${textOf(result)}`);
  return result.structuredContent as unknown as JobAnswer;
}

/** Status until the job has ended (bounded). */
async function ended(session: StdioSession, jobId: string): Promise<JobAnswer> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const status = job(await call(session, 'ssh_job_status', { job_id: jobId }));
    if (status.state !== 'running' && status.state !== 'starting') return status;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`job ${jobId} did not end within 60 s`);
}

/** Waits (bounded) until every pattern has a process on the host. */
async function started(patterns: string[]): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (patterns.every((pattern) => remoteProcesses(pattern, sshd.user).length > 0)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not all of ${patterns.join(', ')} started`);
}

describe('background jobs in the stdio mode', () => {
  it('keeps a job and its whole output when the stdio server is SIGKILLed and started again on the same state directory', async () => {
    const env = jobEnv();
    const first = await open(env);
    const start = job(
      await call(first, 'ssh_start_job', { command: 'for i in $(seq 1 600); do echo line $i; sleep 0.01; done', timeout: 300, name: 'six hundred' }),
    );
    expect(start.state).toBe('running');
    const stateDir = env.MCP_REMOTE_EXEC_STATE_DIR ?? '';
    expect(statSync(join(stateDir, 'jobs', `${start.job_id}.json`)).mode & 0o777).toBe(0o600);

    const pid = first.transport.pid;
    if (pid === null) throw new Error('the stdio server has no pid');
    process.kill(pid, 'SIGKILL');
    await first.close().catch(() => undefined);
    // The server is gone and the job is not: it runs on the host, detached from it. (A start does
    // not wait for the runner to come up, so it may take a moment to appear.)
    await waitFor(() => remoteProcesses('echo line', sshd.user).length > 0, 10_000, 'the job to run on the host');

    const second = await open(env);
    const status = await ended(second, start.job_id);
    expect(status).toMatchObject({ state: 'exited', exit_code: 0 });

    const expected = Array.from({ length: 600 }, (_, index) => `line ${index + 1}\n`).join('');
    expect(status.stdout_bytes).toBe(Buffer.byteLength(expected));
    // Paged in small pieces, following next_offset.
    let output = '';
    let offset = 0;
    let complete = false;
    for (let page = 0; page < 100 && !complete; page++) {
      const result = await call(second, 'ssh_job_output', { job_id: start.job_id, offset, limit: 1000 });
      if (result.isError) throw new Error(textOf(result));
      const read = result.structuredContent as { data: string; encoding: string; next_offset: number; complete: boolean; stream_bytes: number; offset: number };
      expect(read).toMatchObject({ encoding: 'utf-8', offset, stream_bytes: Buffer.byteLength(expected) });
      output += read.data;
      offset = read.next_offset;
      complete = read.complete;
    }
    expect(complete).toBe(true);
    expect(output).toBe(expected);

    const listed = await call(second, 'ssh_list_jobs', {});
    expect((listed.structuredContent as { jobs: Array<{ job_id: string; name: string | null; state: string }> }).jobs).toContainEqual(
      expect.objectContaining({ job_id: start.job_id, name: 'six hundred', state: 'exited' }),
    );
    // The end is logged once, by the process that saw it; the output never is.
    const endLines = second
      .stderr()
      .split('\n')
      .filter((line) => line.includes('"job ended"') && line.includes(start.job_id));
    expect(endLines).toHaveLength(1);
    expect(second.stderr()).not.toContain('line 599');
  });

  it("lets two stdio servers on one state directory see each other's jobs, logs the end once, and skips a corrupt record", async () => {
    const env = jobEnv();
    const garbage = newJobId();
    const a = await open(env);
    writeFileSync(join(env.MCP_REMOTE_EXEC_STATE_DIR ?? '', 'jobs', `${garbage}.json`), '{"jobId":"half');
    const b = await open(env);
    const start = job(await call(a, 'ssh_start_job', { command: 'sleep 1; echo done' }));
    const listed = await call(b, 'ssh_list_jobs', {});
    expect((listed.structuredContent as { jobs: Array<{ job_id: string }> }).jobs.map((each) => each.job_id)).toEqual([start.job_id]);
    // Neither is asked: both servers' own periodic looks find the end (due at the same moment for both).
    const endLines = (): string[] =>
      [a, b].flatMap((session) => session.stderr().split('\n')).filter((line) => line.includes('"job ended"') && line.includes(start.job_id));
    const until = Date.now() + 30_000;
    while (endLines().length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
    for (const session of [a, b]) expect(job(await call(session, 'ssh_job_status', { job_id: start.job_id }))).toMatchObject({ state: 'exited', exit_code: 0 });
    // Both have looked again since (a status call each, and several periodic looks).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(endLines()).toHaveLength(1);
    expect([a, b].filter((session) => session.stderr().includes('skipped an unreadable job record') && session.stderr().includes(garbage))).toHaveLength(2);
  });

  it('refuses a job in a container on a host that is not marked Proxmox, and keeps no record of it', async () => {
    const env = jobEnv();
    const session = await open(env);
    const refused = await call(session, 'ssh_start_job', { command: 'true', ctid: 101 });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('not marked as a Proxmox VE host');
    expect(readdirSync(join(env.MCP_REMOTE_EXEC_STATE_DIR ?? '', 'jobs'))).toEqual([]);
  });

  it('answers a made-up job id with job_not_found', async () => {
    const session = await open(jobEnv());
    const made = newJobId();
    for (const [name, args] of [
      ['ssh_job_status', { job_id: made }],
      ['ssh_job_output', { job_id: made }],
      ['ssh_cancel_job', { job_id: made }],
    ] as const) {
      const result = await call(session, name, args);
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('[job_not_found]');
      expect(textOf(result)).toContain(made);
    }
  });

  it('cancels a job with its whole process tree, setsid and nohup children included', async () => {
    const session = await open(jobEnv());
    const sleeps = MARKERS.slice(0, 3);
    const start = job(await call(session, 'ssh_start_job', { command: `setsid ${sleeps[0]} & nohup ${sleeps[1]} & ${sleeps[2]}` }));
    await started(sleeps);
    const cancelled = job(await call(session, 'ssh_cancel_job', { job_id: start.job_id }));
    expect(cancelled).toMatchObject({ state: 'cancelled', stop_confirmed: true, processes_may_still_run: [] });
    expect(sleeps.filter((pattern) => remoteProcesses(pattern, sshd.user).length > 0)).toEqual([]);
    // Its state stays cancelled, and is listed so.
    expect(job(await call(session, 'ssh_job_status', { job_id: start.job_id })).state).toBe('cancelled');
    const listed = await call(session, 'ssh_list_jobs', { state: 'ended' });
    expect((listed.structuredContent as { jobs: Array<{ job_id: string }> }).jobs.map((each) => each.job_id)).toEqual([start.job_id]);
  });

  it('refuses a job beyond JOBS_PER_USER with job_limit, and starts one again once a job has ended', async () => {
    const env = jobEnv({ JOBS_PER_USER: '1' });
    const session = await open(env);
    const marker = MARKERS[3] ?? '';
    const first = job(await call(session, 'ssh_start_job', { command: marker }));
    const refused = await call(session, 'ssh_start_job', { command: 'true' });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('[job_limit]');
    expect(textOf(refused)).toContain('JOBS_PER_USER=1');
    expect(textOf(refused)).toContain(first.job_id);
    job(await call(session, 'ssh_cancel_job', { job_id: first.job_id }));
    const again = job(await call(session, 'ssh_start_job', { command: 'echo again' }));
    expect((await ended(session, again.job_id)).state).toBe('exited');
    // Only the two that ran have records: the refused start left none.
    const records = readdirSync(join(env.MCP_REMOTE_EXEC_STATE_DIR ?? '', 'jobs')).filter((name) => name.endsWith('.json'));
    expect(records.sort()).toEqual([`${first.job_id}.json`, `${again.job_id}.json`].sort());
  });

  it('stops at startup with a clear message when a job setting is out of range or the job records cannot be kept', () => {
    for (const [name, value] of [
      ['JOBS_PER_USER', '0'],
      ['JOB_OUTPUT_KEEP_BYTES', '1000'],
      ['JOB_RETENTION_HOURS', 'a week'],
    ] as const) {
      const result = runCliOnce([], jobEnv({ [name]: value }));
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(`${name} must be a whole number`);
      expect(result.stderr).toContain(`"${value}"`);
    }
    // A state directory whose jobs/ is not a directory of this user's.
    const env = jobEnv();
    writeFileSync(join(env.MCP_REMOTE_EXEC_STATE_DIR ?? '', 'jobs'), 'not a directory');
    const result = runCliOnce([], env);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('cannot start');
    expect(result.stderr).toContain('background job records cannot be kept');
  });
});
