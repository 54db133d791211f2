/**
 * Background jobs on a real host: the relay's job_* operations (RelayOperations, as the relay
 * daemon and the stdio mode run them) against the test sshd, whose host is this machine, so what
 * is left running is checked in /proc here. No Worker: the host side alone.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, chownSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Outcome } from '../../shared/errors.ts';
import { newJobId } from '../../shared/jobs.ts';
import type { JobReport, Operation, OperationResult } from '../../shared/protocol.ts';
import { JOBS_CAPABILITY } from '../../shared/capabilities.ts';
import type { HostConfig, RelayHostsConfig } from '../../relay/config.ts';
import { RelayOperations } from '../../relay/operations.ts';
import { remoteProcesses, startSshd, TEST_HOME, waitForNoProcesses, waitForProcesses, type TestSshd } from '../harness/sshd.ts';
import { sshdHostConfig } from '../harness/relay.ts';
import { sleep } from '../harness/wait.ts';

const TIMINGS = { watchdogStepS: 1, stop: { graceSteps: 10 } };
/** Unique to this run, digits only (it is part of sleep durations): every job's base and every sleep carry it. */
const RUN = `${process.pid}${randomInt(1000, 10_000)}`;
const BASES: string[] = [];
let sshd: TestSshd;
let ops: RelayOperations;

function host(name: string, extra: Partial<HostConfig> = {}): HostConfig {
  return sshdHostConfig(sshd, name, extra);
}

/** A base for one host entry, under the test account's home, named for this run. */
function base(label: string): string {
  const dir = `~/.mre-jobs-${RUN}-${label}`;
  BASES.push(join(TEST_HOME, dir.slice(2)));
  return dir;
}

let config: RelayHostsConfig;

function operations(): RelayOperations {
  return new RelayOperations(config, TIMINGS);
}

beforeAll(async () => {
  sshd = await startSshd();
  config = {
    relayId: 'jobs-test',
    relayIdExplicit: true,
    hosts: [
      host('h', { jobsDir: base('main') }),
      host('limited', { jobsDir: base('limited'), maxJobs: 3 }),
      host('crowd', { jobsDir: base('crowd') }),
      host('shared', { jobsDir: base('shared'), maxJobs: 4 }),
      host('linked', { jobsDir: base('linked') }),
      host('ro', { jobsDir: base('ro'), readOnly: true }),
    ],
    knownHostsFiles: [sshd.knownHostsPath],
    recordKnownHostsFile: join(sshd.dir, 'recorded_known_hosts'),
    stateDir: join(sshd.dir, 'state'),
    source: 'test',
  };
  ops = operations();
});

afterAll(async () => {
  ops?.close();
  // Only what this file started, by PID: runners and watchdogs name their job directory, sleeps carry RUN.
  for (const pid of [...remoteProcesses(`.mre-jobs-${RUN}`, sshd.user), ...remoteProcesses(RUN, sshd.user)]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of BASES) rmSync(dir, { recursive: true, force: true });
  await sshd?.stop();
});

async function run(operation: Operation, through: RelayOperations = ops): Promise<Outcome<OperationResult>> {
  return through.run(operation, () => undefined, AbortSignal.timeout(60_000));
}

async function start(
  command: string,
  options: { host?: string; jobId?: string; timeoutMs?: number; keepBytes?: number } = {},
): Promise<{ jobId: string; outcome: Outcome<OperationResult> }> {
  const jobId = options.jobId ?? newJobId();
  const outcome = await run({
    op: 'job_start',
    host: options.host ?? 'h',
    jobId,
    command,
    timeoutMs: options.timeoutMs ?? 600_000,
    keepBytes: options.keepBytes ?? 1024 * 1024,
  });
  return { jobId, outcome };
}

async function started(command: string, options: Parameters<typeof start>[1] = {}): Promise<string> {
  const { jobId, outcome } = await start(command, options);
  if (!outcome.ok) throw new Error(`job_start failed: ${outcome.error.code}: ${outcome.error.message}`);
  return jobId;
}

async function status(jobId: string, hostName = 'h', through: RelayOperations = ops): Promise<JobReport> {
  const outcome = await run({ op: 'job_status', host: hostName, jobId }, through);
  if (!outcome.ok || outcome.value.op !== 'job_status') throw new Error(`job_status failed: ${JSON.stringify(outcome)}`);
  return outcome.value.report;
}

/** Poll the status (bounded) until `done` holds; the last report either way. */
async function until(jobId: string, done: (report: JobReport) => boolean, ms = 20_000, through: RelayOperations = ops): Promise<JobReport> {
  const end = performance.now() + ms;
  let report = await status(jobId, 'h', through);
  while (!done(report) && performance.now() < end) {
    await sleep(200);
    report = await status(jobId, 'h', through);
  }
  return report;
}

async function page(jobId: string, stream: 'stdout' | 'stderr', offset: number, length: number): Promise<Outcome<OperationResult>> {
  return run({ op: 'job_output', host: 'h', jobId, stream, offset, length });
}

async function bytes(jobId: string, stream: 'stdout' | 'stderr', offset: number, length: number): Promise<Buffer> {
  const outcome = await page(jobId, stream, offset, length);
  if (!outcome.ok || outcome.value.op !== 'job_output') throw new Error(`job_output failed: ${JSON.stringify(outcome)}`);
  return Buffer.from(outcome.value.data, 'base64');
}

function jobDir(jobId: string, label = 'main'): string {
  return join(TEST_HOME, `.mre-jobs-${RUN}-${label}`, jobId);
}

describe('a background job on the host', () => {
  it('reports the jobs capability for hosts that run commands, not read-only ones', () => {
    const caps = Object.fromEntries(ops.inventory().map((entry) => [entry.name, entry.capabilities]));
    expect(caps.h).toContain(JOBS_CAPABILITY);
    expect(caps.ro).not.toContain(JOBS_CAPABILITY);
  });

  it('keeps running after the channel and the whole pool are closed, and a new relay reads its state and output', async () => {
    const first = operations();
    const jobId = newJobId();
    const outcome = await run({ op: 'job_start', host: 'h', jobId, command: 'echo before; sleep 2; echo after', timeoutMs: 60_000, keepBytes: 65536 }, first);
    expect(outcome.ok && outcome.value.op === 'job_start' && outcome.value.report.state).toBe('running');
    first.close();
    const second = operations();
    try {
      expect((await status(jobId, 'h', second)).state).toBe('running');
      const report = await until(jobId, (r) => r.state !== 'running', 20_000, second);
      expect(report).toMatchObject({ state: 'exited', exitCode: 0, stdoutBytes: 13, stdoutTail: 'before\nafter\n' });
      expect(report.endedAt).toBeGreaterThanOrEqual(report.startedAt ?? Infinity);
    } finally {
      second.close();
    }
  });

  it('reports the exit code, and a signal as killed with its name', async () => {
    const exited = await started('echo out; echo err >&2; exit 7');
    const killed = await started('kill -TERM $$');
    expect(await until(exited, (r) => r.state !== 'running')).toMatchObject({
      state: 'exited',
      exitCode: 7,
      signal: null,
      stdoutTail: 'out\n',
      stderrTail: 'err\n',
    });
    const report = await until(killed, (r) => r.state !== 'running');
    expect(report).toMatchObject({ state: 'killed', exitCode: null, signal: 'TERM' });
  });

  it('is stopped whole by the host watchdog at its timeout, with no relay at all', async () => {
    const mark = `1001.${RUN}1`;
    const first = operations();
    const jobId = newJobId();
    const outcome = await run(
      {
        op: 'job_start',
        host: 'h',
        jobId,
        command: `setsid sleep ${mark}1 & nohup sleep ${mark}2 >/dev/null 2>&1 & sleep ${mark}3`,
        timeoutMs: 2_000,
        keepBytes: 65536,
      },
      first,
    );
    expect(outcome.ok).toBe(true);
    first.close();
    // Three sleeps (and the login shell running the command line, which names them too).
    expect((await waitForProcesses(mark, sshd.user, 3, 5_000)).length).toBeGreaterThanOrEqual(3);
    expect(await waitForNoProcesses(mark, sshd.user, 20_000)).toEqual([]);
    const report = await until(jobId, (r) => r.stopConfirmed !== null, 10_000);
    expect(report).toMatchObject({ state: 'timed_out', stopConfirmed: true, processesLeft: [] });
  });

  it('cancel stops setsid and nohup children too, and says so', async () => {
    const mark = `1001.${RUN}2`;
    // The fourth is found by the marker alone: its parent is gone, it left the group and the session, and its output is not the job's.
    const jobId = await started(
      `setsid sleep ${mark}1 & nohup sleep ${mark}2 >/dev/null 2>&1 & (setsid sleep ${mark}4 >/dev/null 2>&1 &); echo up; sleep ${mark}3`,
    );
    expect((await waitForProcesses(mark, sshd.user, 4, 5_000)).length).toBeGreaterThanOrEqual(4);
    const cancelled = await run({ op: 'job_cancel', host: 'h', jobId });
    if (!cancelled.ok || cancelled.value.op !== 'job_cancel') throw new Error(JSON.stringify(cancelled));
    expect(cancelled.value.report).toMatchObject({ state: 'cancelled', stopConfirmed: true, processesLeft: [], stdoutTail: 'up\n' });
    expect(remoteProcesses(mark, sshd.user)).toEqual([]);
    // A second cancel changes nothing and still answers.
    const again = await run({ op: 'job_cancel', host: 'h', jobId });
    expect(again.ok && again.value.op === 'job_cancel' && again.value.report.state).toBe('cancelled');
  });

  it('says what a command that ended left running, and a cancel after its end stops it', async () => {
    const mark = `1001.${RUN}9`;
    // The command itself ends at once (exit 0); a setsid and a nohup child run on, with the job's marker.
    const jobId = await started(`setsid sleep ${mark}1 >/dev/null 2>&1 & nohup sleep ${mark}2 >/dev/null 2>&1 & echo up`);
    const ended = await until(jobId, (report) => report.state === 'exited' && report.processesLeft.length === 2, 10_000);
    expect(ended).toMatchObject({ state: 'exited', exitCode: 0, stdoutTail: 'up\n' });
    expect(ended.processesLeft).toEqual(expect.arrayContaining([expect.stringContaining('(sleep)'), expect.stringContaining('(sleep)')]));
    expect(remoteProcesses(mark, sshd.user)).toHaveLength(2);
    const cancelled = await run({ op: 'job_cancel', host: 'h', jobId });
    if (!cancelled.ok || cancelled.value.op !== 'job_cancel') throw new Error(JSON.stringify(cancelled));
    // Still the command's own end, with nothing left.
    expect(cancelled.value.report).toMatchObject({ state: 'exited', exitCode: 0, processesLeft: [] });
    expect(remoteProcesses(mark, sshd.user)).toEqual([]);
    expect((await status(jobId)).processesLeft).toEqual([]);
  });

  it('pages 600 lines at random offsets that reassemble byte-exact, and binary bytes exactly', async () => {
    const lines = await started('for i in $(seq 1 600); do echo line $i; done');
    const binary = await started("printf '\\377\\376\\000\\200caf\\303\\251\\n\\300'");
    const expected = Buffer.from(Array.from({ length: 600 }, (_, i) => `line ${i + 1}\n`).join(''));
    const report = await until(lines, (r) => r.state !== 'running');
    expect(report).toMatchObject({ state: 'exited', stdoutBytes: expected.length, stdoutDropped: 0 });
    expect(report.stdoutTail.endsWith('line 600\n')).toBe(true);
    // The tail starts at a whole line.
    expect(report.stdoutTail.startsWith('line ')).toBe(true);
    const parts: Buffer[] = [];
    let offset = 0;
    for (let guard = 0; offset < expected.length && guard < 1000; guard += 1) {
      const length = 1 + Math.floor(Math.random() * 700);
      const chunk = await bytes(lines, 'stdout', offset, length);
      expect(chunk.length).toBe(Math.min(length, expected.length - offset));
      parts.push(chunk);
      offset += chunk.length;
    }
    expect(Buffer.concat(parts).equals(expected)).toBe(true);
    const middle = 1234;
    expect((await bytes(lines, 'stdout', middle, 100)).equals(expected.subarray(middle, middle + 100))).toBe(true);
    const beyond = await page(lines, 'stdout', expected.length + 10, 100);
    expect(beyond.ok && beyond.value.op === 'job_output' && beyond.value).toMatchObject({ data: '', size: expected.length, ended: true });
    await until(binary, (r) => r.state !== 'running');
    expect([...(await bytes(binary, 'stdout', 0, 100))]).toEqual([0xff, 0xfe, 0x00, 0x80, 0x63, 0x61, 0x66, 0xc3, 0xa9, 0x0a, 0xc0]);
    expect(await bytes(binary, 'stderr', 0, 100)).toHaveLength(0);
  });

  it('keeps at most keepBytes of a stream: the oldest is dropped, offsets stay, and a page below it is refused', async () => {
    const keep = 65536;
    const jobId = await started('seq 1 40000', { keepBytes: keep });
    const expected = Buffer.from(Array.from({ length: 40000 }, (_, i) => `${i + 1}\n`).join(''));
    const dropped = Math.floor((expected.length - keep) / 4096) * 4096;
    // The job's status is written before its watchdog's last trim: wait for that trim too.
    const report = await until(jobId, (r) => r.state !== 'running' && r.stdoutDropped >= dropped);
    expect(report).toMatchObject({ state: 'exited', stdoutBytes: expected.length, stdoutDropped: dropped });
    expect((await bytes(jobId, 'stdout', dropped, 5000)).equals(expected.subarray(dropped, dropped + 5000))).toBe(true);
    const last = expected.length - 300;
    expect((await bytes(jobId, 'stdout', last, 1000)).equals(expected.subarray(last))).toBe(true);
    const below = await page(jobId, 'stdout', dropped - 1, 10);
    expect(below.ok).toBe(false);
    if (!below.ok) {
      expect(below.error.code).toBe('invalid_argument');
      expect(below.error.message).toContain(`Kept output starts at offset ${dropped}`);
    }
    // The space is really freed: the file is sparse.
    const file = statSync(join(jobDir(jobId), 'out'));
    expect(file.size).toBe(expected.length);
    expect(file.blocks * 512).toBeLessThan(expected.length - dropped + 16 * 4096);
  });

  it('reads lost after its process group is killed from outside, and a reused PID does not make it running', async () => {
    const mark = `1001.${RUN}3`;
    const jobId = await started(`sleep ${mark}`);
    expect(await waitForProcesses(mark, sshd.user, 1, 5_000)).toHaveLength(1);
    const [pgid, startTime] = readFileSync(join(jobDir(jobId), 'pid'), 'utf8')
      .trim()
      .split(' ');
    process.kill(-Number(pgid), 'SIGKILL');
    expect(await waitForNoProcesses(mark, sshd.user, 5_000)).toEqual([]);
    expect((await until(jobId, (r) => r.state !== 'running', 10_000)).state).toBe('lost');
    // The PID now names another live process: this test process. With its real start time the job
    // would read as running (the check works); with the runner's recorded one it reads lost.
    const ours = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const ownStart = ours.slice(ours.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(join(jobDir(jobId), 'pid'), `${process.pid} ${startTime}\n`);
    expect((await status(jobId)).state).toBe('lost');
    writeFileSync(join(jobDir(jobId), 'pid'), `${process.pid} ${ownStart}\n`);
    expect((await status(jobId)).state).toBe('running');
    rmSync(join(jobDir(jobId), 'pid'));
  });

  it('refuses a job id that exists, reads a made-up id as absent, and refuses a symlinked base', async () => {
    const jobId = await started('true');
    const again = await start('true', { jobId });
    expect(again.outcome.ok ? 'started' : again.outcome.error.code).toBe('already_exists');
    expect((await status(newJobId())).state).toBe('absent');
    const absentPage = await page(newJobId(), 'stdout', 0, 10);
    expect(absentPage.ok ? 'ok' : absentPage.error.code).toBe('job_not_found');

    const linked = join(TEST_HOME, `.mre-jobs-${RUN}-linked`);
    const target = join(TEST_HOME, `.mre-jobs-${RUN}-target`);
    BASES.push(target);
    mkdirSync(target, { mode: 0o700 });
    const { uid, gid } = statSync(TEST_HOME);
    chownSync(target, uid, gid);
    symlinkSync(target, linked);
    const refused = await start('echo should-not-run', { host: 'linked' });
    expect(refused.outcome.ok).toBe(false);
    if (!refused.outcome.ok) {
      expect(refused.outcome.error.code).toBe('invalid_argument');
      expect(refused.outcome.error.message).toContain('symbolic link');
    }
    expect(existsSync(join(target, refused.jobId))).toBe(false);
  });

  it('refuses the (max+1)th running job on a host with job_limit, also when started all at once', async () => {
    const mark = `1001.${RUN}4`;
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => start(`sleep ${mark}`, { host: 'limited' })));
    const codes = outcomes.map(({ outcome }) => (outcome.ok ? 'ok' : outcome.error.code)).sort();
    expect(codes).toEqual(['job_limit', 'job_limit', 'ok', 'ok', 'ok']);
    const refused = outcomes.find(({ outcome }) => !outcome.ok)?.outcome;
    if (refused && !refused.ok) expect(refused.error.message).toContain('limit (3');
    // Once one ends, a new one starts.
    const running = outcomes.filter(({ outcome }) => outcome.ok).map(({ jobId }) => jobId);
    const first = running[0] ?? '';
    await run({ op: 'job_cancel', host: 'limited', jobId: first });
    expect((await start(`sleep ${mark}`, { host: 'limited' })).outcome.ok).toBe(true);
  });

  it("keeps a quarter of a host's job slots for other users, so one user cannot take them all", async () => {
    const mark = `1001.${RUN}8`;
    const as = (caller: string) => {
      const operation: Operation = { op: 'job_start', host: 'shared', jobId: newJobId(), command: `sleep ${mark}`, timeoutMs: 600_000, keepBytes: 65536 };
      return ops.run(operation, () => undefined, AbortSignal.timeout(60_000), undefined, caller);
    };
    const code = (outcome: Outcome<OperationResult>): string => (outcome.ok ? 'ok' : outcome.error.code);
    // max_jobs 4: alice may have 3 running, however fast she asks.
    const alice = await Promise.all([as('alice'), as('alice'), as('alice'), as('alice')]);
    expect(alice.map(code).sort()).toEqual(['job_limit', 'ok', 'ok', 'ok']);
    const refused = alice.find((outcome) => !outcome.ok);
    expect(refused && !refused.ok ? refused.error.message : '').toContain('your share of its limit');
    // bob still gets the slot kept for others; then the host is full for everyone.
    expect(code(await as('bob'))).toBe('ok');
    const carol = await as('carol');
    expect(carol.ok ? '' : carol.error.message).toContain('its limit (4');
    expect(await waitForProcesses(mark, sshd.user, 4, 10_000)).toHaveLength(4);
    for (const pid of remoteProcesses(mark, sshd.user)) process.kill(pid, 'SIGKILL');
  });

  it('runs 20 jobs at once while synchronous commands still get channels', async () => {
    const mark = `1001.${RUN}5`;
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => start(`sleep ${mark}`, { host: 'crowd' })));
    expect(outcomes.filter(({ outcome }) => outcome.ok)).toHaveLength(20);
    expect(await waitForProcesses(mark, sshd.user, 20, 10_000)).toHaveLength(20);
    // The host allows 10 channels per connection and the pool 4 connections: 20 jobs holding a
    // channel each would leave the execs waiting until their deadline.
    const execs = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        ops.run({ op: 'exec', host: 'crowd', command: `echo exec-${i}`, timeoutMs: 15_000, maxChars: 1000 }, () => undefined, AbortSignal.timeout(20_000)),
      ),
    );
    expect(execs.map((outcome) => outcome.ok && outcome.value.op === 'exec' && outcome.value.exitCode)).toEqual(Array.from({ length: 30 }, () => 0));
    expect(remoteProcesses(mark, sshd.user)).toHaveLength(20);
    const cancels = await Promise.all(outcomes.map(({ jobId }) => run({ op: 'job_cancel', host: 'crowd', jobId })));
    expect(cancels.map((cancelled) => cancelled.ok && cancelled.value.op === 'job_cancel' && cancelled.value.report.state)).toEqual(
      Array.from({ length: 20 }, () => 'cancelled'),
    );
    expect(await waitForNoProcesses(mark, sshd.user, 10_000)).toEqual([]);
  });

  it('deletes a finished job only: cleanup refuses a running one', async () => {
    const mark = `1001.${RUN}6`;
    const jobId = await started(`sleep ${mark}`);
    const refused = await run({ op: 'job_cleanup', host: 'h', jobId });
    expect(refused.ok ? 'ok' : refused.error.code).toBe('invalid_argument');
    expect(existsSync(jobDir(jobId))).toBe(true);
    await run({ op: 'job_cancel', host: 'h', jobId });
    const removed = await run({ op: 'job_cleanup', host: 'h', jobId });
    expect(removed.ok && removed.value.op === 'job_cleanup' && removed.value.removed).toBe(true);
    expect(existsSync(jobDir(jobId))).toBe(false);
    expect((await status(jobId)).state).toBe('absent');
  });

  it('refuses to start a job on a read-only host, and in a VM of a host not marked proxmox', async () => {
    const readOnly = await start('true', { host: 'ro' });
    expect(readOnly.outcome.ok ? 'ok' : readOnly.outcome.error.code).toBe('host_read_only');
    const vm = await run({
      op: 'job_start',
      host: 'h',
      guest: { kind: 'qemu', id: '100' },
      jobId: newJobId(),
      command: 'true',
      timeoutMs: 1000,
      keepBytes: 65536,
    });
    expect(vm.ok ? 'ok' : vm.error.code).toBe('invalid_argument');
    if (!vm.ok) expect(vm.error.message).toContain('not marked as a Proxmox VE host');
  });
});
