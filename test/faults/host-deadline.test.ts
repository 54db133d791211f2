/**
 * The host enforces a command's deadline by itself: when the relay (the relay daemon of the full
 * stack, or the stdio server, which runs the relay's operations in-process) is killed mid-command,
 * the watchdog the wrapper started on the host stops the command shortly after its timeout.
 * Real sshd; the host is this machine.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { processIds, remoteProcesses, startSshd, type TestSshd } from '../harness/sshd.ts';
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

describe('the host-side deadline', () => {
  it('stops a command (and its setsid child) within 10 s of its 5 s timeout after the relay is killed', async () => {
    const session = await connectStdio(stdioEnv(sshd));
    const pid = session.transport.pid;
    if (pid === null) throw new Error('the stdio server has no PID');
    const calledAt = Date.now();
    // The seconds in a variable: only the two sleeps' command lines then read "sleep 1000.5".
    const pending = session.client
      .callTool({ name: 'ssh_exec_command', arguments: { command: 's=1000.5; setsid sleep $s & sleep $s', timeout: 5 } })
      .catch(() => undefined);
    const until = Date.now() + 10_000;
    while (remoteProcesses('sleep 1000.5', sshd.user).length < 2 && Date.now() < until) await sleep(50);
    expect(remoteProcesses('sleep 1000.5', sshd.user)).toHaveLength(2);
    const pgid = groupOf('sleep 1000.5');
    expect(watchdogsOf(pgid)).toHaveLength(1);
    process.kill(pid, 'SIGKILL');
    await pending;
    await session.close().catch(() => undefined);
    // The relay is dead: nothing but the host can stop the command now.
    while (remoteProcesses('sleep 1000.5', sshd.user).length > 0 && Date.now() < calledAt + 15_000) await sleep(200);
    expect(remoteProcesses('sleep 1000.5', sshd.user)).toEqual([]);
    // The watchdog does not outlive what it guards.
    while (watchdogsOf(pgid).length > 0 && Date.now() < calledAt + 17_000) await sleep(200);
    expect(watchdogsOf(pgid)).toEqual([]);
  });

  it('stops a command within 10 s of its 5 s timeout after the relay daemon is killed (full stack)', async () => {
    const calledAt = Date.now();
    const pending = stack.call('ssh_exec_command', { command: 's=1000.6; setsid sleep $s & sleep $s', timeout: 5 }).catch(() => undefined);
    const until = Date.now() + 10_000;
    while (remoteProcesses('sleep 1000.6', sshd.user).length < 2 && Date.now() < until) await sleep(50);
    expect(remoteProcesses('sleep 1000.6', sshd.user)).toHaveLength(2);
    const pgid = groupOf('sleep 1000.6');
    expect(watchdogsOf(pgid)).toHaveLength(1);
    stack.relay.process.signal('SIGKILL');
    await pending;
    while (remoteProcesses('sleep 1000.6', sshd.user).length > 0 && Date.now() < calledAt + 15_000) await sleep(200);
    expect(remoteProcesses('sleep 1000.6', sshd.user)).toEqual([]);
    while (watchdogsOf(pgid).length > 0 && Date.now() < calledAt + 17_000) await sleep(200);
    expect(watchdogsOf(pgid)).toEqual([]);
  });
});
