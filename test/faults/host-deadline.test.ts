/**
 * The host enforces a command's deadline by itself: when the relay (the relay daemon of the full
 * stack, or the stdio server, which runs the relay's operations in-process) is killed mid-command,
 * the watchdog the wrapper started on the host stops the command shortly after its timeout.
 * Real sshd; the host is this machine.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { commandLine, processIds, remoteProcesses, startSshd, type TestSshd } from '../harness/sshd.ts';
import { startStack, type Stack } from '../harness/stack.ts';
import { connectStdio, stdioEnv } from '../harness/stdio.ts';

let sshd: TestSshd;
let stack: Stack;

beforeAll(async () => {
  sshd = await startSshd();
  stack = await startStack();
});

/** Watchdogs of the run whose login shell (process group) is `pgid`: other test files may run commands as the same user. */
const watchdogsOf = (pgid: number): number[] => remoteProcesses(`mre-watchdog ${pgid} `, sshd.user);
let groups: number[] = [];

afterEach(() => {
  // Only what these tests started, by PID.
  for (const pid of [...remoteProcesses('sleep 1000.5', sshd.user), ...remoteProcesses('sleep 1000.6', sshd.user), ...groups.flatMap(watchdogsOf)]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  groups = [];
});

/** The process group of the command's login shell: the group of the sleep that stayed in it. */
function groupOf(pattern: string): number {
  // The setsid sleep leads its own group; the other is in the login shell's.
  for (const pid of remoteProcesses(pattern, sshd.user)) {
    const ids = processIds(pid);
    if (ids !== undefined && ids.pgid !== pid) {
      groups.push(ids.pgid);
      return ids.pgid;
    }
  }
  throw new Error('no sleep in the login shell group');
}

afterAll(async () => {
  await stack?.stop();
  await sshd?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait up to 5 s for `value()` to be `expected` (a watchdog that is replaced ends a moment after the new one starts). */
async function waitForValue(value: () => number, expected: number): Promise<void> {
  const until = performance.now() + 5_000;
  while (value() !== expected && performance.now() < until) await sleep(50);
}

describe('the host-side deadline', () => {
  it.each([
    ['on a channel of its own', false, undefined],
    // Its watchdog was started with the shell, for the 5 s of the run before it.
    ['on a ready shell whose watchdog waited for it', true, 5],
    // The run before had the default timeout: this run starts a watchdog of its own.
    ['on a ready shell whose watchdog was for other runs', true, undefined],
  ])('stops a command (and its setsid child) %s within 10 s of its 5 s timeout after the relay is killed', async (_, onReadyShell, timeoutBefore) => {
    const session = await connectStdio(stdioEnv(sshd, { SSH_READY_SHELL: String(onReadyShell) }));
    const pid = session.transport.pid;
    if (pid === null) throw new Error('the stdio server has no PID');
    // A first command leaves a ready shell behind it (when they are on), which the next one takes.
    if (onReadyShell)
      await session.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'true', ...(timeoutBefore ? { timeout: timeoutBefore } : {}) } });
    const calledAt = performance.now();
    // The seconds in a variable: only the two sleeps' command lines then read "sleep 1000.5".
    const pending = session.client
      .callTool({ name: 'ssh_exec_command', arguments: { command: 's=1000.5; setsid sleep $s & sleep $s', timeout: 5 } })
      .catch(() => undefined);
    const until = performance.now() + 10_000;
    while (remoteProcesses('sleep 1000.5', sshd.user).length < 2 && performance.now() < until) await sleep(50);
    expect(remoteProcesses('sleep 1000.5', sshd.user)).toHaveLength(2);
    const pgid = groupOf('sleep 1000.5');
    // One watchdog, for this run's id and 5 + 2 s (the one that waited for other runs is gone).
    await waitForValue(() => watchdogsOf(pgid).length, 1);
    expect(watchdogsOf(pgid)).toHaveLength(1);
    const [watchdog] = watchdogsOf(pgid);
    expect(commandLine(watchdog as number)).toMatch(/ mre-watchdog [0-9]+ [0-9]* 7 [0-9a-f]{16}( [0-9]+)? ?$/);
    // The login shell (the group's leader) is a ready shell exactly when they are on.
    expect(commandLine(pgid).includes('IFS= read -r mre_l')).toBe(onReadyShell);
    process.kill(pid, 'SIGKILL');
    await pending;
    await session.close().catch(() => undefined);
    // The relay is dead: nothing but the host can stop the command now.
    while (remoteProcesses('sleep 1000.5', sshd.user).length > 0 && performance.now() < calledAt + 15_000) await sleep(200);
    expect(remoteProcesses('sleep 1000.5', sshd.user)).toEqual([]);
    // The watchdog does not outlive what it guards.
    while (watchdogsOf(pgid).length > 0 && performance.now() < calledAt + 17_000) await sleep(200);
    expect(watchdogsOf(pgid)).toEqual([]);
  });

  it('stops a command within 10 s of its 5 s timeout after the relay daemon is killed (full stack)', async () => {
    const calledAt = performance.now();
    const pending = stack.call('ssh_exec_command', { command: 's=1000.6; setsid sleep $s & sleep $s', timeout: 5 }).catch(() => undefined);
    const until = performance.now() + 10_000;
    while (remoteProcesses('sleep 1000.6', sshd.user).length < 2 && performance.now() < until) await sleep(50);
    expect(remoteProcesses('sleep 1000.6', sshd.user)).toHaveLength(2);
    const pgid = groupOf('sleep 1000.6');
    expect(watchdogsOf(pgid)).toHaveLength(1);
    stack.relay.process.signal('SIGKILL');
    await pending;
    while (remoteProcesses('sleep 1000.6', sshd.user).length > 0 && performance.now() < calledAt + 15_000) await sleep(200);
    expect(remoteProcesses('sleep 1000.6', sshd.user)).toEqual([]);
    while (watchdogsOf(pgid).length > 0 && performance.now() < calledAt + 17_000) await sleep(200);
    expect(watchdogsOf(pgid)).toEqual([]);
  });
});
