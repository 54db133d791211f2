/**
 * Ready shells against a real sshd (relay/ssh-pool.ts, host-stop.ts readyShellCommand): after a
 * run, the pool starts a login shell for the next one, which then runs there; such a run is
 * stopped at its timeout like any other; and a ready shell never holds a slot that a run it cannot
 * serve is waiting for.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecOperation, ExecResultFrame } from '../../shared/protocol.ts';
import type { RelayOperations } from '../../relay/operations.ts';
import { readyPings } from '../../relay/ready-shell-ping.ts';
import { READY_TIMINGS } from '../../relay/ssh-pool.ts';
import { runExec, waitingShells as waitingShellsUnder } from '../harness/ready-shells.ts';
import { sshdHostConfig, sshdOperations } from '../harness/relay.ts';
import { childrenOf, remoteProcesses, startSshd, type TestSshd } from '../harness/sshd.ts';
import { waitFor } from '../harness/wait.ts';

let sshd: TestSshd;
let stateDir: string;
let ops: RelayOperations;

/** Each host: 4 sessions per connection (2 channels for runs) and one connection, so slots run out quickly. */
beforeAll(async () => {
  sshd = await startSshd({ maxSessions: 4 });
  stateDir = mkdtempSync(join(tmpdir(), 'mre-ready-e2e-'));
  ops = sshdOperations(sshd, [sshdHostConfig(sshd, 'h', { maxSessions: 4, maxConnections: 1 }), sshdHostConfig(sshd, 'off', { readyShell: false })], stateDir);
});

afterAll(async () => {
  ops?.close();
  await sshd?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

/** One exec on `host` (h by default) as `caller` (one caller may hold only one of h's two run slots; null: none, as in stdio mode). */
function run(command: string, extra: Partial<ExecOperation> = {}, caller: string | null = 'user-1', host = 'h'): Promise<ExecResultFrame & { stdout: string }> {
  return runExec(ops, host, command, extra, caller);
}

const waitingShells = (): number[] => waitingShellsUnder(sshd);

describe('ready shells', () => {
  it('start after a run, and the next run goes to the shell that was waiting for it', async () => {
    await run('true');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const [waiting] = waitingShells();
    // In the wrapper's subshell, $$ is still the login shell's PID.
    const next = await run('echo $$; exit 3');
    expect(next.stdout).toBe(`${waiting}\n`);
    expect(next.exitCode).toBe(3);
  });

  it('leave a command over 2 KB (counted in bytes, as the shell reads it) to a channel of its own, and wait for the next', async () => {
    await run('true');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const [waiting] = waitingShells();
    // 1,100 characters, 2,200 bytes: over the cut only when counted in bytes.
    const long = await run(`echo $$; : '${'é'.repeat(1_100)}'`);
    expect(long.stdout).not.toBe(`${waiting}\n`);
    expect(long.exitCode).toBe(0);
    expect(waitingShells()).toEqual([waiting]);
  });

  it('stop a run at its timeout like any other, leaving nothing of it', async () => {
    await run('true');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const [waiting] = waitingShells();
    const result = await run('echo $$; sleep 30', { timeoutMs: 1_500 });
    expect(result.stdout).toBe(`${waiting}\n`);
    expect(result.timedOut).toBe(true);
    expect(result.stopConfirmed).toBe(true);
    expect(childrenOf(waiting as number)).toEqual([]);
  });

  it("stop a run that fits their waiting watchdog by that watchdog's run id: a setsid child that let go of the output is found by it", async () => {
    const marker = `1014.${process.pid}`;
    // The ready shell after this run has a watchdog waiting for runs of 1.5 s, under its own run id.
    await run('true', { timeoutMs: 1_500 });
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const [waiting] = waitingShells();
    try {
      const result = await run(`setsid sleep ${marker} </dev/null >/dev/null 2>&1 & echo $$; sleep 30`, { timeoutMs: 1_500 });
      expect(result.stdout).toBe(`${waiting}\n`);
      expect(result.timedOut).toBe(true);
      expect(result.stopConfirmed).toBe(true);
      expect(remoteProcesses(`sleep ${marker}`, sshd.user)).toEqual([]);
    } finally {
      for (const pid of remoteProcesses(`sleep ${marker}`, sshd.user)) process.kill(pid, 'SIGKILL');
    }
  });

  it('give their slot to a run that cannot use them (here a terminal run) instead of keeping it waiting', async () => {
    await run('true');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    // The long run takes the ready shell; a short one takes the other slot, and after it a new ready
    // shell takes that slot: both of the connection's run slots are now in use.
    const long = run('sleep 4', {}, 'user-1');
    await waitFor(() => waitingShells().length === 0, 10_000, 'the long run to take the ready shell');
    await run('true', {}, 'user-2');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a new ready shell');
    const started = performance.now();
    const terminal = await run('echo on a terminal', { pty: { rows: 24, cols: 80 } }, 'user-3');
    expect(terminal.stdout).toContain('on a terminal');
    expect(performance.now() - started).toBeLessThan(2_500);
    expect((await long).exitCode).toBe(0);
  });

  it('serve a run that comes right after another: it waits for the ready shell being started rather than open a channel of its own', async () => {
    await run('true');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const loginShell = "tr '\\0' ' ' </proc/$$/cmdline";
    // The first takes the waiting shell; the second comes while the next one is being started, and takes it.
    expect((await run(loginShell)).stdout).toContain('IFS= read -r mre_l');
    expect((await run(loginShell)).stdout).toContain('IFS= read -r mre_l');
  });

  it('are pinged as they start, and a run within a second of that answer is written with no ping of its own; a later one is pinged first', async () => {
    await run('true');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const loginShell = "tr '\\0' ' ' </proc/$$/cmdline";
    // Back to back: each run takes the shell the one before it left, answered moments ago.
    const before = readyPings.sent;
    for (let index = 0; index < 3; index += 1) expect((await run(loginShell)).stdout).toContain('IFS= read -r mre_l');
    await waitFor(() => waitingShells().length === 1, 10_000, 'the next ready shell');
    // One ping per shell, as each started (the three runs' own shells' next ones): none before a run.
    expect(readyPings.sent - before).toBe(3);
    const freshMs = READY_TIMINGS.freshMs;
    READY_TIMINGS.freshMs = 0;
    try {
      const staleBefore = readyPings.sent;
      for (let index = 0; index < 2; index += 1) expect((await run(loginShell)).stdout).toContain('IFS= read -r mre_l');
      await waitFor(() => waitingShells().length === 1, 10_000, 'the next ready shell');
      // Each run pinged its shell first, and each next shell was pinged as it started.
      expect(readyPings.sent - staleBefore).toBe(4);
    } finally {
      READY_TIMINGS.freshMs = freshMs;
    }
  });

  it('serve runs with no caller too (stdio mode), back to back', async () => {
    await run('true', {}, null);
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    const [waiting] = waitingShells();
    const next = await run('echo $$', {}, null);
    expect(next.stdout).toBe(`${waiting}\n`);
  });

  it('are not used on a host with ready_shell off: each command is its own login shell, its text in the arguments', async () => {
    const loginShell = "tr '\\0' ' ' </proc/$$/cmdline";
    await run('true', {}, 'user-1', 'off');
    const off = await run(loginShell, {}, 'user-1', 'off');
    expect(off.stdout).toContain(`eval '${loginShell.replace(/'/g, "'\\''")}'`);
    expect(off.stdout).not.toContain('IFS= read -r mre_l');
    await run('true');
    await waitFor(() => waitingShells().length === 1, 10_000, 'a ready shell');
    expect((await run(loginShell)).stdout).toContain('IFS= read -r mre_l');
  });
});
