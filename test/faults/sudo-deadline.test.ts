/**
 * The host's own deadline reaches a command run with sudo: true: when the stdio server (which runs
 * the relay's operations in-process, configured by SSH_SUDO_PASSWORD) is killed mid-command, the
 * root watchdog that the command's root shell started stops it, as root, shortly after its timeout.
 * The SSH user's watchdog alone could not: it cannot signal root's processes. Real sshd and sudo;
 * the host is this machine; the sudo rule is a private drop-in removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { processesRunning, remoteProcesses, startSshd, TEST_PASSWORD, type TestSshd } from '../harness/sshd.ts';
import { connectStdio, stdioEnv } from '../harness/stdio.ts';
import { installSudoRule, type SudoRule } from '../harness/sudo-rule.ts';

const dir = mkdtempSync(join(tmpdir(), 'mre-sudo-deadline-'));
let sshd: TestSshd;
let rule: SudoRule | undefined;
let watchdogs: number[] = [];

/**
 * root's watchdogs (only sudo: true runs start any as root): `sh -c SCRIPT mre-watchdog PGID …`,
 * not the root shell or sudo, whose command lines hold the script's text with "$1" there.
 */
const rootWatchdogs = (): number[] =>
  remoteProcesses('mre-watchdog ', 'root').filter((pid) => {
    try {
      return / mre-watchdog [0-9]+ /.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '));
    } catch {
      return false;
    }
  });

beforeAll(async () => {
  rule = installSudoRule(`mre-test-${randomBytes(6).toString('hex')}`, dir, join(dir, 'sudo.log'));
  sshd = await startSshd();
});

afterEach(() => {
  // Only what this test started, by PID.
  for (const pid of [...processesRunning('sleep 1000.7', 'root'), ...watchdogs]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  watchdogs = [];
});

afterAll(async () => {
  await sshd?.stop();
  rule?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('the host-side deadline under sudo', () => {
  it('stops a root command (and its setsid child) within 10 s of its 5 s timeout after the stdio server is killed', async () => {
    const before = new Set(rootWatchdogs());
    const session = await connectStdio(stdioEnv(sshd, { SSH_SUDO_PASSWORD: TEST_PASSWORD }));
    const pid = session.transport.pid;
    if (pid === null) throw new Error('the stdio server has no PID');
    const calledAt = performance.now();
    // The seconds in a variable: only the two sleeps' command lines then read "sleep 1000.7".
    const pending = session.client
      .callTool({ name: 'ssh_exec_command', arguments: { command: 's=1000.7; setsid sleep $s & sleep $s', timeout: 5, sudo: true } })
      .catch(() => undefined);
    const until = performance.now() + 10_000;
    while (processesRunning('sleep 1000.7', 'root').length < 2 && performance.now() < until) await sleep(50);
    expect(processesRunning('sleep 1000.7', 'root')).toHaveLength(2);
    watchdogs = rootWatchdogs().filter((watchdog) => !before.has(watchdog));
    expect(watchdogs).toHaveLength(1);
    process.kill(pid, 'SIGKILL');
    await pending;
    await session.close().catch(() => undefined);
    // The relay is dead: nothing but the host can stop the command now, and only as root.
    while (processesRunning('sleep 1000.7', 'root').length > 0 && performance.now() < calledAt + 15_000) await sleep(200);
    expect(processesRunning('sleep 1000.7', 'root')).toEqual([]);
    // The root watchdog does not outlive what it guards.
    const alive = (): number[] => watchdogs.filter((watchdog) => rootWatchdogs().includes(watchdog));
    while (alive().length > 0 && performance.now() < calledAt + 17_000) await sleep(200);
    expect(alive()).toEqual([]);
  });
});
