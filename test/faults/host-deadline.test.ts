/**
 * The host enforces a command's deadline by itself: when the relay (here the stdio server, which
 * runs the relay's operations in-process) is killed mid-command, the watchdog the wrapper started
 * on the host stops the command shortly after its timeout. Real sshd; the host is this machine.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { remoteProcesses, startSshd, type TestSshd } from '../harness/sshd.ts';
import { connectStdio, stdioEnv } from '../harness/stdio.ts';

let sshd: TestSshd;

beforeAll(async () => {
  sshd = await startSshd();
});

afterEach(() => {
  for (const pid of [...remoteProcesses('sleep 1000.5', sshd.user), ...remoteProcesses('mre-watchdog', sshd.user)]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

afterAll(async () => {
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
    const pending = session.client.callTool({ name: 'ssh_exec_command', arguments: { command: 's=1000.5; setsid sleep $s & sleep $s', timeout: 5 } }).catch(() => undefined);
    const until = Date.now() + 10_000;
    while (remoteProcesses('sleep 1000.5', sshd.user).length < 2 && Date.now() < until) await sleep(50);
    expect(remoteProcesses('sleep 1000.5', sshd.user)).toHaveLength(2);
    process.kill(pid, 'SIGKILL');
    await pending;
    await session.close().catch(() => undefined);
    // The relay is dead: nothing but the host can stop the command now.
    while (remoteProcesses('sleep 1000.5', sshd.user).length > 0 && Date.now() < calledAt + 15_000) await sleep(200);
    expect(remoteProcesses('sleep 1000.5', sshd.user)).toEqual([]);
    // The watchdog does not outlive what it guards.
    while (remoteProcesses('mre-watchdog', sshd.user).length > 0 && Date.now() < calledAt + 17_000) await sleep(200);
    expect(remoteProcesses('mre-watchdog', sshd.user)).toEqual([]);
  });
});
