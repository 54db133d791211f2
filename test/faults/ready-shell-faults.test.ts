/**
 * A ready shell (relay/ssh-pool.ts) that stops answering while its connection is alive: a login
 * that starts slowly, or a host too loaded to schedule it (here the shell is stopped with SIGSTOP).
 * - Pinged before its run (it waited longer than READY_TIMINGS.freshMs): the run goes to a fresh
 *   channel and runs once; the commands already running on that connection are not cut; and the
 *   host's ready shells stay off, so later runs do not wait on a ping again.
 * - Written its run with no ping (it answered one moments before): the run ends within the channel
 *   open bound, saying the host did not show it starting; the shell is stopped, so it runs nothing
 *   even when let go on; and the commands beside it are not cut.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ExecOperation, ExecResultFrame } from '../../shared/protocol.ts';
import type { RelayOperations } from '../../relay/operations.ts';
import { CHANNEL_OPEN_TIMEOUT_MS, READY_TIMINGS } from '../../relay/ssh-pool.ts';
import { runExec, waitingShells as waitingShellsUnder } from '../harness/ready-shells.ts';
import { sshdHostConfig, sshdOperations } from '../harness/relay.ts';
import { commandLine, processesUnder, startSshd, type TestSshd } from '../harness/sshd.ts';
import { waitFor } from '../harness/wait.ts';

let sshd: TestSshd;
let stateDir: string;
let ops: RelayOperations;
const stopped: number[] = [];
const frozen: number[] = [];
const cleanups: (() => void)[] = [];

/** 2 run slots per connection and 2 connections: one caller may hold 2 of the 4. */
beforeAll(async () => {
  sshd = await startSshd({ maxSessions: 4 });
  stateDir = mkdtempSync(join(tmpdir(), 'mre-ready-faults-'));
  ops = sshdOperations(
    sshd,
    ['h', 'h2', 'h3', 'h4'].map((name) => sshdHostConfig(sshd, name, { maxSessions: 4, maxConnections: 2 })),
    stateDir,
  );
});

const freshMs = READY_TIMINGS.freshMs;

afterEach(() => {
  READY_TIMINGS.freshMs = freshMs;
  for (const pid of frozen.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
      process.kill(pid, 'SIGCONT');
    } catch {
      // Already gone.
    }
  }
  for (const pid of stopped.splice(0)) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Already gone.
    }
  }
});

afterAll(async () => {
  for (const cleanup of cleanups) cleanup();
  ops?.close();
  await sshd?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

function run(command: string, extra: Partial<ExecOperation> = {}, caller = 'user-1', host = 'h'): Promise<ExecResultFrame & { stdout: string }> {
  return runExec(ops, host, command, { timeoutMs: 20_000, ...extra }, caller);
}

const waitingShells = (): number[] => waitingShellsUnder(sshd);
const underSshd = (): number[] => processesUnder(sshd);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a ready shell that does not answer its ping on a live connection', () => {
  it('sends the run to a fresh channel, once, without cutting the commands beside it, and turns ready shells off', async () => {
    // Every run pings its shell first here, however soon it comes.
    READY_TIMINGS.freshMs = 0;
    // Written by the SSH user (another account than this test's): a file of its own in /tmp.
    const ranFile = join(tmpdir(), `mre-ready-ran-${process.pid}-${Date.now()}`);
    cleanups.push(() => rmSync(ranFile, { force: true }));
    await run('true');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const [shell] = waitingShells();
    if (shell === undefined) throw new Error('no ready shell');
    // The same caller's command on the same connection (a terminal run never takes the ready shell):
    // with the shell, the caller then holds their whole share (2).
    const beside = run('sleep 8; echo beside-done', { pty: { rows: 24, cols: 80 } }).catch((error: unknown) => String(error));
    await waitFor(() => underSshd().some((pid) => commandLine(pid).includes('sleep 8')), 10_000, 'the terminal run beside the shell');
    process.kill(shell, 'SIGSTOP');
    stopped.push(shell);
    const next = await run(`echo ran >>${ranFile}; echo next-done`);
    expect(next.stdout).toBe('next-done\n');
    expect(next.exitCode).toBe(0);
    const besideResult = await beside;
    expect(besideResult).toMatchObject({ exitCode: 0, stdout: expect.stringContaining('beside-done') as unknown });
    // No new ready shell: the next one would be pinged (and waited on) again.
    const after = await run("tr '\\0' ' ' </proc/$$/cmdline");
    expect(after.stdout).not.toContain('mre_l');
    // The stopped shell, let go on, reads the end of its input and runs nothing.
    process.kill(shell, 'SIGCONT');
    await waitFor(() => !alive(shell), 10_000, 'the stopped shell to end');
    expect(readFileSync(ranFile, 'utf8')).toBe('ran\n');
  });

  it('does not count an unanswered shell on a frozen connection against the caller, whose run goes to a new connection', async () => {
    READY_TIMINGS.freshMs = 0;
    await run('true', {}, 'user-1', 'h2');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    // With the shell, the caller holds their whole share (2) on that connection.
    const beside = run('sleep 30', { pty: { rows: 24, cols: 80 } }, 'user-1', 'h2').catch((error: unknown) => String(error));
    await waitFor(() => underSshd().some((pid) => commandLine(pid).includes('sleep 30')), 10_000, 'the terminal run beside the shell');
    // Freeze the connections (sshd's processes and the shell): TCP stays open, nothing answers,
    // and the shell's channel close is never confirmed. The listener itself still accepts.
    for (const pid of underSshd()) {
      process.kill(pid, 'SIGSTOP');
      frozen.push(pid);
    }
    // Its timeout ends well before keepalives (three of 5 s) drop the frozen connection.
    const next = await run('echo next-done', { timeoutMs: 11_000 }, 'user-1', 'h2');
    expect(next.stdout).toBe('next-done\n');
    expect(next.exitCode).toBe(0);
    void beside;
  });
});

describe('a ready shell that went silent right after it answered, with a run written to it unpinged', () => {
  it('stopped (the connection alive): the run ends within the bound as not run, the shell is killed so it never runs it, and nothing beside it is cut', async () => {
    // However long this machine takes between the shell's answer and the run, the run is written unpinged.
    READY_TIMINGS.freshMs = 60_000;
    const ranFile = join(tmpdir(), `mre-ready-unpinged-${process.pid}-${Date.now()}`);
    cleanups.push(() => rmSync(ranFile, { force: true }));
    await run('true', {}, 'user-1', 'h3');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const [shell] = waitingShells();
    if (shell === undefined) throw new Error('no ready shell');
    let besideDone = false;
    const beside = run('sleep 15; echo beside-done', { pty: { rows: 24, cols: 80 } }, 'user-1', 'h3').then(
      (result) => {
        besideDone = true;
        return result;
      },
      (error: unknown) => String(error),
    );
    await waitFor(() => underSshd().some((pid) => commandLine(pid).includes('sleep 15')), 10_000, 'the terminal run beside the shell');
    process.kill(shell, 'SIGSTOP');
    stopped.push(shell);
    const started = performance.now();
    const next = await run(`echo ran >>${ranFile}; echo next-done`, {}, 'user-1', 'h3').then(
      (result) => JSON.stringify(result),
      (error: unknown) => String(error),
    );
    expect(next).toContain('killed the shell before it started the command: it did not run');
    expect(performance.now() - started).toBeLessThan(CHANNEL_OPEN_TIMEOUT_MS + 4_000);
    // The command beside it on the same connection was still running, and goes on to its end.
    expect(besideDone).toBe(false);
    expect(await beside).toMatchObject({ exitCode: 0, stdout: expect.stringContaining('beside-done') as unknown });
    // Killed while stopped (KILL needs no CONT): gone without having run anything.
    await waitFor(() => !alive(shell), 10_000, 'the stopped shell to end');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(() => readFileSync(ranFile, 'utf8')).toThrow();
  }, 40_000);

  it('frozen with its connection (nothing else on it): the run ends within the bound as unknown, the connection is dropped, and the next run goes to a new one', async () => {
    READY_TIMINGS.freshMs = 60_000;
    await run('true', {}, 'user-1', 'h4');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    // Freeze the connection (sshd's processes and the shell): TCP stays open, nothing answers.
    for (const pid of underSshd()) {
      process.kill(pid, 'SIGSTOP');
      frozen.push(pid);
    }
    const started = performance.now();
    const next = await run('echo next-done', {}, 'user-1', 'h4').then(
      (result) => JSON.stringify(result),
      (error: unknown) => String(error),
    );
    expect(next).toContain('whether the command ran is unknown');
    expect(performance.now() - started).toBeLessThan(CHANNEL_OPEN_TIMEOUT_MS + 4_000);
    // Ready shells are off for this host now: the next runs open channels of their own, on a new connection.
    for (const label of ['after', 'again']) {
      const after = await run(`echo ${label}; tr '\\0' ' ' </proc/$$/cmdline`, {}, 'user-1', 'h4');
      expect(after.stdout).toContain(label);
      expect(after.stdout).not.toContain('mre_l');
    }
  }, 40_000);
});
