/**
 * Background jobs inside Proxmox guests at the relay level (RelayOperations, as the relay daemon
 * and the stdio mode run them): in a container through `pct exec`, in a VM through the guest
 * agent (`qm guest exec`), against the test sshd with the pct/qm stand-in (test/harness/
 * fake-proxmox.ts). The stand-in runs guest commands on this machine with the guest's / and HOME
 * mapped into its state, so a job's files are checked inside the guest and its processes in /proc.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Outcome } from '../../shared/errors.ts';
import { newJobId } from '../../shared/jobs.ts';
import { MAX_JOB_PAGE_BYTES } from '../../shared/limits.ts';
import type { JobReport, Operation, OperationResult } from '../../shared/protocol.ts';
import type { HostConfig, RelayHostsConfig } from '../../relay/config.ts';
import { RelayOperations } from '../../relay/operations.ts';
import { installFakeProxmox, type FakeProxmox } from '../harness/fake-proxmox.ts';
import { remoteProcesses, startSshd, TEST_HOME, waitForNoProcesses, waitForProcesses, type TestSshd } from '../harness/sshd.ts';
import { sshdHostConfig } from '../harness/relay.ts';
import { sleep } from '../harness/wait.ts';

const TIMINGS = { watchdogStepS: 1, stop: { graceSteps: 10 } };
/** Unique to this run, digits only (it is part of sleep durations): every sleep carries it. */
const RUN = `${process.pid}${randomInt(1000, 10_000)}`;
let sshd: TestSshd;
let pve: FakeProxmox;
let ops: RelayOperations;

type Guest = { kind: 'lxc' | 'qemu'; id: string };
const CT: Guest = { kind: 'lxc', id: '101' };
const VM: Guest = { kind: 'qemu', id: '200' };

function host(name: string, extra: Partial<HostConfig> = {}): HostConfig {
  return sshdHostConfig(sshd, name, { proxmox: true, ...extra });
}

beforeAll(async () => {
  pve = installFakeProxmox();
  pve.addContainer({ vmid: 101, name: 'web', status: 'running' });
  pve.addContainer({ vmid: 102, name: 'limited', status: 'running' });
  pve.addVm({ vmid: 200, name: 'build', status: 'running', agent: 'running' });
  pve.addVm({ vmid: 201, name: 'no-agent', status: 'running', agent: 'none' });
  pve.addVm({ vmid: 202, name: 'off', status: 'stopped', agent: 'running' });
  pve.addContainer({ vmid: 103, name: 'off', status: 'stopped' });
  sshd = await startSshd({ extraConfig: pve.sshdConfigLines() });
  const config: RelayHostsConfig = {
    relayId: 'guest-jobs-test',
    relayIdExplicit: true,
    hosts: [
      // jobs_dir is a host path: the guests' jobs keep ~/.mcp-remote-exec/jobs inside the guest.
      host('pve', { jobsDir: `~/.mre-guest-jobs-${RUN}` }),
      host('pve1', { jobsDir: `~/.mre-guest-jobs-${RUN}-one`, maxJobs: 1 }),
      host('plain', { proxmox: false }),
    ],
    knownHostsFiles: [sshd.knownHostsPath],
    recordKnownHostsFile: join(sshd.dir, 'recorded_known_hosts'),
    stateDir: join(sshd.dir, 'state'),
    source: 'test',
  };
  ops = new RelayOperations(config, TIMINGS);
});

afterAll(async () => {
  ops?.close();
  for (const pid of remoteProcesses(RUN, sshd.user)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Kills the jobs' runners (their pid files are inside the guests) and deletes the guests.
  pve?.remove();
  for (const dir of [`.mre-guest-jobs-${RUN}`, `.mre-guest-jobs-${RUN}-one`]) rmSync(join(TEST_HOME, dir), { recursive: true, force: true });
  await sshd?.stop();
});

async function run(operation: Operation): Promise<Outcome<OperationResult>> {
  return ops.run(operation, () => undefined, AbortSignal.timeout(90_000));
}

async function start(
  guest: Guest,
  command: string,
  options: { host?: string; timeoutMs?: number } = {},
): Promise<{ jobId: string; outcome: Outcome<OperationResult> }> {
  const jobId = newJobId();
  const outcome = await run({
    op: 'job_start',
    host: options.host ?? 'pve',
    guest,
    jobId,
    command,
    timeoutMs: options.timeoutMs ?? 600_000,
    keepBytes: 1024 * 1024,
  });
  return { jobId, outcome };
}

async function started(guest: Guest, command: string, options: { host?: string; timeoutMs?: number } = {}): Promise<string> {
  const { jobId, outcome } = await start(guest, command, options);
  if (!outcome.ok) throw new Error(`job_start failed: ${outcome.error.code}: ${outcome.error.message}`);
  // A short command may already have ended by the time the start script reports.
  expect(['running', 'exited']).toContain(outcome.value.op === 'job_start' && outcome.value.report.state);
  return jobId;
}

async function status(guest: Guest, jobId: string): Promise<JobReport> {
  const outcome = await run({ op: 'job_status', host: 'pve', guest, jobId });
  if (!outcome.ok || outcome.value.op !== 'job_status') throw new Error(`job_status failed: ${JSON.stringify(outcome)}`);
  return outcome.value.report;
}

async function until(guest: Guest, jobId: string, done: (report: JobReport) => boolean, ms = 30_000): Promise<JobReport> {
  const end = Date.now() + ms;
  let report = await status(guest, jobId);
  while (!done(report) && Date.now() < end) {
    await sleep(300);
    report = await status(guest, jobId);
  }
  return report;
}

async function bytes(guest: Guest, jobId: string, stream: 'stdout' | 'stderr', offset: number, length: number): Promise<Buffer> {
  const outcome = await run({ op: 'job_output', host: 'pve', guest, jobId, stream, offset, length });
  if (!outcome.ok || outcome.value.op !== 'job_output') throw new Error(`job_output failed: ${JSON.stringify(outcome)}`);
  return Buffer.from(outcome.value.data, 'base64');
}

/** The job's directory as the host sees it: inside the guest's /root. */
function jobDir(guest: Guest, jobId: string): string {
  const home = guest.kind === 'lxc' ? pve.containerPath(Number(guest.id), '/root') : join(pve.vmGuestDir(Number(guest.id)), 'root');
  return join(home, '.mcp-remote-exec', 'jobs', jobId);
}

describe.each([
  ['a container (pct exec)', CT, 1],
  ['a VM (qm guest exec)', VM, 2],
])('a background job in %s', (_name, guest, n) => {
  it("keeps its files inside the guest's /root, none on the host, and reports the exit code and tails", async () => {
    const jobId = await started(guest, 'echo out; echo err >&2; exit 7');
    const report = await until(guest, jobId, (r) => r.state !== 'running');
    expect(report).toMatchObject({ state: 'exited', exitCode: 7, stdoutTail: 'out\n', stderrTail: 'err\n', stdoutBytes: 4 });
    expect(existsSync(join(jobDir(guest, jobId), 'status'))).toBe(true);
    expect(existsSync(join(TEST_HOME, '.mcp-remote-exec', 'jobs', jobId))).toBe(false);
    expect(existsSync(join(TEST_HOME, `.mre-guest-jobs-${RUN}`, jobId))).toBe(false);
    // Another guest's base is another place: the id is unknown there.
    expect((await status(guest.kind === 'lxc' ? { kind: 'lxc', id: '102' } : CT, jobId)).state).toBe('absent');
  });

  it('pages 600 lines at random offsets that reassemble byte-exact, binary bytes exactly, and a whole maximal page', async () => {
    const lines = await started(guest, 'for i in $(seq 1 600); do echo line $i; done');
    const binary = await started(guest, "printf '\\377\\376\\000\\200caf\\303\\251\\n\\300'");
    const big = await started(guest, `head -c ${MAX_JOB_PAGE_BYTES + 1000} /dev/urandom | tee big.${RUN}.bin >/dev/null; cat big.${RUN}.bin`);
    const expected = Buffer.from(Array.from({ length: 600 }, (_, i) => `line ${i + 1}\n`).join(''));
    const report = await until(guest, lines, (r) => r.state !== 'running');
    expect(report).toMatchObject({ state: 'exited', stdoutBytes: expected.length });
    expect(report.stdoutTail.endsWith('line 600\n')).toBe(true);
    const parts: Buffer[] = [];
    let offset = 0;
    // Fewer, larger pages than on a host: each is a guest-agent round trip.
    for (let guard = 0; offset < expected.length && guard < 100; guard += 1) {
      const length = 1 + Math.floor(Math.random() * 2000);
      const chunk = await bytes(guest, lines, 'stdout', offset, length);
      expect(chunk.length).toBe(Math.min(length, expected.length - offset));
      parts.push(chunk);
      offset += chunk.length;
    }
    expect(Buffer.concat(parts).equals(expected)).toBe(true);
    await until(guest, binary, (r) => r.state !== 'running');
    expect([...(await bytes(guest, binary, 'stdout', 0, 100))]).toEqual([0xff, 0xfe, 0x00, 0x80, 0x63, 0x61, 0x66, 0xc3, 0xa9, 0x0a, 0xc0]);
    await until(guest, big, (r) => r.state !== 'running');
    const file = join(guest.kind === 'lxc' ? pve.containerPath(101, '/') : pve.vmGuestDir(200), `big.${RUN}.bin`);
    const random = readFileSync(file);
    expect((await bytes(guest, big, 'stdout', 500, MAX_JOB_PAGE_BYTES)).equals(random.subarray(500, 500 + MAX_JOB_PAGE_BYTES))).toBe(true);
  });

  it('cancel stops setsid and nohup children inside the guest, and says so', async () => {
    const mark = `1002.${RUN}${n}1`;
    const jobId = await started(
      guest,
      `setsid sleep ${mark}1 & nohup sleep ${mark}2 >/dev/null 2>&1 & (setsid sleep ${mark}4 >/dev/null 2>&1 &); echo up; sleep ${mark}3`,
    );
    expect((await waitForProcesses(mark, sshd.user, 4, 10_000)).length).toBeGreaterThanOrEqual(4);
    const cancelled = await run({ op: 'job_cancel', host: 'pve', guest, jobId });
    if (!cancelled.ok || cancelled.value.op !== 'job_cancel') throw new Error(JSON.stringify(cancelled));
    expect(cancelled.value.report).toMatchObject({ state: 'cancelled', stopConfirmed: true, processesLeft: [], stdoutTail: 'up\n' });
    expect(remoteProcesses(mark, sshd.user)).toEqual([]);
    const removed = await run({ op: 'job_cleanup', host: 'pve', guest, jobId });
    expect(removed.ok && removed.value.op === 'job_cleanup' && removed.value.removed).toBe(true);
    expect(existsSync(jobDir(guest, jobId))).toBe(false);
  });

  it("is stopped whole by the guest's job watchdog at its timeout", async () => {
    const mark = `1002.${RUN}${n}2`;
    const jobId = await started(guest, `setsid sleep ${mark}1 & nohup sleep ${mark}2 >/dev/null 2>&1 & sleep ${mark}3`, { timeoutMs: 2_000 });
    expect((await waitForProcesses(mark, sshd.user, 3, 10_000)).length).toBeGreaterThanOrEqual(3);
    expect(await waitForNoProcesses(mark, sshd.user, 20_000)).toEqual([]);
    const report = await until(guest, jobId, (r) => r.stopConfirmed !== null, 15_000);
    expect(report).toMatchObject({ state: 'timed_out', stopConfirmed: true, processesLeft: [] });
  });
});

describe('limits and refusals of jobs in guests', () => {
  it('counts max_jobs per base: the host and each guest apart', async () => {
    const mark = `1002.${RUN}9`;
    const ct = { kind: 'lxc' as const, id: '102' };
    const hostJob = newJobId();
    const onHost = await run({ op: 'job_start', host: 'pve1', jobId: hostJob, command: `sleep ${mark}1`, timeoutMs: 60_000, keepBytes: 65536 });
    expect(onHost.ok).toBe(true);
    const first = await start(ct, `sleep ${mark}2`, { host: 'pve1' });
    expect(first.outcome.ok).toBe(true);
    const second = await start(ct, `sleep ${mark}3`, { host: 'pve1' });
    expect(second.outcome.ok ? 'ok' : second.outcome.error.code).toBe('job_limit');
    if (!second.outcome.ok) expect(second.outcome.error.message).toContain('Container 102 on host "pve1" already runs 1');
    const inVm = await start(VM, `sleep ${mark}4`, { host: 'pve1' });
    expect(inVm.outcome.ok).toBe(true);
    await run({ op: 'job_cancel', host: 'pve1', guest: ct, jobId: first.jobId });
    await run({ op: 'job_cancel', host: 'pve1', guest: VM, jobId: inVm.jobId });
    await run({ op: 'job_cancel', host: 'pve1', jobId: hostJob });
    expect(await waitForNoProcesses(mark, sshd.user, 10_000)).toEqual([]);
  });

  it("refuses a VM without a guest agent or stopped with qm's words, a stopped container with pct's, and guests on a host not marked proxmox", async () => {
    const { outcome } = await start({ kind: 'qemu', id: '201' }, 'true');
    expect(outcome.ok ? 'ok' : outcome.error.code).toBe('guest_error');
    if (!outcome.ok) expect(outcome.error.message).toContain('No QEMU guest agent configured');
    const off = await start({ kind: 'qemu', id: '202' }, 'true');
    expect(off.outcome.ok ? 'ok' : off.outcome.error.code).toBe('guest_error');
    if (!off.outcome.ok) expect(off.outcome.error.message).toContain('VM 202 is not running');
    // pct exec's failure is the command's exit status: the relay cannot tell it from a start that
    // died half-way, so it says the outcome is unknown (with pct's words) rather than guess.
    const ct = await start({ kind: 'lxc', id: '103' }, 'true');
    expect(ct.outcome.ok ? 'ok' : ct.outcome.error.code).toBe('ssh_error');
    if (!ct.outcome.ok) expect(ct.outcome.error.message).toContain("container '103' not running!");
    const plain = await start(VM, 'true', { host: 'plain' });
    expect(plain.outcome.ok ? 'ok' : plain.outcome.error.code).toBe('invalid_argument');
    if (!plain.outcome.ok) expect(plain.outcome.error.message).toContain('not marked as a Proxmox VE host');
  });
});
