/**
 * ssh_exec_command with sudo: true against a real sshd and the real sudo, through the Worker, the
 * relay and the audit log. The test user gets a password rule in a private sudoers drop-in (removed
 * afterwards); its password is the harness's known one.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, addTeam } from '../harness/admin-api.ts';
import { connectMcpClient } from '../harness/mcp-client.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { processesRunning, remoteProcesses, TEST_PASSWORD, type TestSshd } from '../harness/sshd.ts';
import { installSudoRule, type SudoRule } from '../harness/sudo-rule.ts';

const RUN = randomBytes(6).toString('hex');
/** A PAM service of our own, for the tricky-password host (pam_exec compares with our file). */
const PAM_SERVICE = `mre-test-${RUN}`;
const PAM_FILE = `/etc/pam.d/${PAM_SERVICE}`;
const dir = mkdtempSync(join(tmpdir(), 'mre-sudo-'));
const SUDO_LOG = join(dir, 'sudo.log');
const WRONG_FILE = join(dir, 'wrong-password');
const TRICKY_FILE = join(dir, 'tricky-password');
const EXPECTED_FILE = join(dir, 'expected');
const CHECK_SCRIPT = join(dir, 'check-password');
const ATTEMPTS = join(dir, 'attempts');
/**
 * Every character a shell or a quoting layer could trip on (quotes, spaces at both ends, $(), ``,
 * backslashes, globs, a tab, non-ASCII), then padding to 500 bytes: pam_exec hands a module at most
 * PAM_MAX_RESP_SIZE (512) bytes.
 */
const TRICKY = ` it's "q" $(id) \`id\` \\n\\ ;|&*?[a] ${'$'}{HOME} \tü€ %s -- `.padEnd(480, 'x') + ' end ';

let stack: Stack;
let sudoRule: SudoRule | undefined;
/** Replace the test user's sudo rule (the drop-in is this file's own). */
const writeSudoRule = (rule: 'password' | 'nopasswd', extra = ''): void => sudoRule?.write(rule, extra);

function relayConfig(sshd: TestSshd): unknown {
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath };
  return {
    known_hosts: [sshd.knownHostsPath],
    hosts: [
      { name: 'sudo-ok', ...base, sudo_password_env: 'MRE_TEST_SUDO_PASSWORD' },
      { name: 'sudo-wrong', ...base, sudo_password_file: WRONG_FILE },
      { name: 'sudo-tricky', ...base, sudo_password_file: TRICKY_FILE },
      { name: 'sudo-none', ...base },
    ],
  };
}

/**
 * A PAM service whose auth step is pam_exec with our script: it counts the attempt and accepts
 * exactly the bytes of TRICKY (pam_exec writes the password on the script's stdin; seteuid: as root).
 */
function installTrickyPam(): void {
  writeFileSync(TRICKY_FILE, `${TRICKY}\n`, { mode: 0o600 });
  writeFileSync(EXPECTED_FILE, TRICKY, { mode: 0o600 });
  writeFileSync(CHECK_SCRIPT, `#!/bin/sh\necho attempt >>${ATTEMPTS}\nexec cmp -s - ${EXPECTED_FILE}\n`, { mode: 0o700 });
  writeFileSync(
    PAM_FILE,
    `auth required pam_exec.so quiet expose_authtok seteuid ${CHECK_SCRIPT}\naccount required pam_permit.so\nsession required pam_permit.so\n`,
    { mode: 0o644 },
  );
}

/** Every process's command line on the host (this machine), NULs as spaces, as bytes. */
function allCommandLines(): Buffer[] {
  const lines: Buffer[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name))) {
    try {
      lines.push(readFileSync(`/proc/${pid}/cmdline`));
    } catch {
      // Gone since the listing.
    }
  }
  return lines;
}

/** Runs a call while sampling every command line on the host; says whether `secret` ever showed. */
async function sampledCall(
  args: Record<string, unknown>,
  secret: string,
  seen: RegExp,
): Promise<{ result: Awaited<ReturnType<Stack['call']>>; leaked: boolean; sawRun: boolean }> {
  const call = stack.call('ssh_exec_command', args);
  let settled = false;
  void call.finally(() => {
    settled = true;
  });
  const needle = Buffer.from(secret, 'utf8');
  let leaked = false;
  let sawRun = false;
  // Bounded: 200 samples, ~10 s.
  for (let sample = 0; sample < 200 && !settled; sample++) {
    for (const line of allCommandLines()) {
      if (line.includes(needle)) leaked = true;
      if (seen.test(line.toString('latin1').replaceAll('\0', ' '))) sawRun = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { result: await call, leaked, sawRun };
}

/** root's processes whose command line is exactly `command`, waited for to be gone (bounded). */
async function rootGone(command: string, withinMs = 6000): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (processesRunning(command, 'root').length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return processesRunning(command, 'root').length === 0;
}

/** root's watchdogs guarding a run with this many seconds (command line `sh -c SCRIPT mre-watchdog PGID PIPE SECONDS`). */
function rootWatchdogs(seconds: number): number[] {
  return remoteProcesses('mre-watchdog ', 'root').filter((pid) => {
    try {
      return new RegExp(` mre-watchdog [0-9]+ [0-9]* ${seconds}$`).test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim());
    } catch {
      return false;
    }
  });
}

async function rootAppeared(command: string, withinMs = 10_000): Promise<void> {
  const until = Date.now() + withinMs;
  while (processesRunning(command, 'root').length === 0) {
    if (Date.now() > until) throw new Error(`${command} never started as root`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  sudoRule = installSudoRule(`mre-test-${RUN}`, dir, SUDO_LOG);
  installTrickyPam();
  writeFileSync(WRONG_FILE, 'not-the-password\n', { mode: 0o600 });
  stack = await startStack({
    relay: (sshd) => ({ configFile: relayConfig(sshd), env: { MRE_TEST_SUDO_PASSWORD: TEST_PASSWORD } }),
  });
});

afterAll(async () => {
  await stack?.stop();
  sudoRule?.remove();
  rmSync(PAM_FILE, { force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('sudo: true', () => {
  it('runs the command as root with the configured password, which appears in no process, output, relay log or audit row', async () => {
    const { result, leaked, sawRun } = await sampledCall(
      { host: 'sudo-ok', command: 'id -u; sleep 3', sudo: true, timeout: 30 },
      TEST_PASSWORD,
      /\bsudo -S\b.*sleep 3/,
    );
    expect(sawRun).toBe(true);
    expect(leaked).toBe(false);
    expect(result.isError).toBeFalsy();
    // stderr empty: sudo's lecture (lecture=always) is sudo's, not the command's.
    expect(result.structuredContent).toMatchObject({ exit_code: 0, stdout: '0\n', stderr: '' });
    expect(JSON.stringify(result)).not.toContain(TEST_PASSWORD);
    expect(stack.relay.process.output()).not.toContain(TEST_PASSWORD);
    const audit = await adminApi(stack.worker).get('audit?tool=ssh_exec_command');
    expect(audit.status).toBe(200);
    expect(audit.text).toContain('sudo: id -u; sleep 3');
    expect(audit.text).not.toContain(TEST_PASSWORD);
  });

  it('carries a password with quotes, spaces at both ends, $(), backticks, backslashes, globs, a tab and non-ASCII, 500 bytes long, byte for byte and nowhere else', async () => {
    writeSudoRule('password', `, pam_service=${PAM_SERVICE}`);
    try {
      rmSync(ATTEMPTS, { force: true });
      const { result, leaked, sawRun } = await sampledCall(
        { host: 'sudo-tricky', command: 'id -u; sleep 2', sudo: true, timeout: 30 },
        TRICKY,
        /\bsudo -S\b.*sleep 2/,
      );
      expect(sawRun).toBe(true);
      expect(leaked).toBe(false);
      expect(result.structuredContent).toMatchObject({ exit_code: 0, stdout: '0\n', stderr: '' });
      // One attempt, accepted: pam_exec saw exactly those bytes.
      expect(readFileSync(ATTEMPTS, 'utf8')).toBe('attempt\n');
      expect(JSON.stringify(result)).not.toContain(';|&*?[a] ${HOME}');
      expect(stack.relay.process.output()).not.toContain(';|&*?[a] ${HOME}');
      // The same host with a password one byte off (sudo-ok's) is refused by the same PAM check.
      const off = await stack.call('ssh_exec_command', { host: 'sudo-ok', command: 'id -u', sudo: true, timeout: 30 });
      expect(textOf(off)).toContain('sudo_failed');
    } finally {
      writeSudoRule('password');
    }
  });

  it('never gives the command the password line on stdin: cat sees end of input, also when a NOPASSWD rule leaves the line unread', async () => {
    const read = await stack.call('ssh_exec_command', { host: 'sudo-ok', command: 'cat; echo "[eof]"', sudo: true, timeout: 30 });
    expect(read.structuredContent).toMatchObject({ exit_code: 0, stdout: '[eof]\n', stderr: '' });
    writeSudoRule('nopasswd');
    try {
      const unread = await stack.call('ssh_exec_command', { host: 'sudo-ok', command: 'cat; echo "[eof]"; id -u', sudo: true, timeout: 30 });
      expect(unread.structuredContent).toMatchObject({ exit_code: 0, stdout: '[eof]\n0\n', stderr: '' });
      expect(JSON.stringify(unread)).not.toContain(TEST_PASSWORD);
      // And sudo -n (no password configured) works with the NOPASSWD rule.
      const none = await stack.call('ssh_exec_command', { host: 'sudo-none', command: 'id -u', sudo: true, timeout: 30 });
      expect(none.structuredContent).toMatchObject({ exit_code: 0, stdout: '0\n' });
    } finally {
      writeSudoRule('password');
    }
  });

  it('stops the root command at its timeout, a child that left the group too, and leaves no root process', async () => {
    const result = await stack.call('ssh_exec_command', { host: 'sudo-ok', command: 'setsid sleep 37.311 & sleep 37.312', sudo: true, timeout: 1 });
    expect(result.structuredContent).toMatchObject({ timed_out: true, exit_code: null });
    expect(textOf(result)).toContain('was stopped (its process group');
    // The answer comes after the stop's final check, and the host's own deadline (the root
    // watchdog) is seconds later: only the relay's stop, run as root, can have ended them by now.
    expect(processesRunning('sleep 37.311', 'root')).toEqual([]);
    expect(processesRunning('sleep 37.312', 'root')).toEqual([]);
    expect(stack.relay.process.output()).not.toContain(TEST_PASSWORD);
  });

  it('stops a root command that ignores TERM, and a root child that left the group and the output, when the client cancels the call', async () => {
    const controller = new AbortController();
    const call = stack.call(
      'ssh_exec_command',
      // The detached child (its parent gone, its output elsewhere) is found only by the run's marker, which the root shell sets again (sudo clears it).
      { host: 'sudo-ok', command: "( setsid sleep 37.322 >/dev/null 2>&1 & ); trap '' TERM; sleep 37.321", sudo: true, timeout: 60 },
      { signal: controller.signal },
    );
    await rootAppeared('sleep 37.321');
    await rootAppeared('sleep 37.322');
    controller.abort();
    await expect(call).rejects.toThrow();
    // The host's own deadline is a minute away: only the relay's root stop (KILL after the grace) ends them.
    // A 2026-07-28 client cancels by dropping the request, which the Worker learns from its stream's
    // keep-alive writes (every second; the first may still land in a buffer): allow for that.
    expect(await rootGone('sleep 37.321', 12_000)).toBe(true);
    expect(await rootGone('sleep 37.322')).toBe(true);
  });

  it('leaves no root watchdog behind once the command has ended', async () => {
    const result = await stack.call('ssh_exec_command', { host: 'sudo-ok', command: 'echo watched', sudo: true, timeout: 120 });
    expect(result.structuredContent).toMatchObject({ exit_code: 0, stdout: 'watched\n' });
    // The root watchdog ends within a second of its run ending (bounded wait; a lingering one would stay 2 minutes).
    const until = Date.now() + 5000;
    while (rootWatchdogs(120 + 2).length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(rootWatchdogs(120 + 2)).toEqual([]);
  });

  it('a wrong password is a clear error, tried once by sudo, not retried', async () => {
    const before = existsSync(SUDO_LOG) ? readFileSync(SUDO_LOG, 'utf8') : '';
    const result = await stack.call('ssh_exec_command', { host: 'sudo-wrong', command: 'id -u', sudo: true, timeout: 30 });
    expect(result.isError).toBe(true);
    const text = textOf(result);
    expect(text).toContain('sudo_failed');
    expect(text).toContain('refused the configured sudo password');
    expect(text).toContain('1 incorrect password attempt');
    expect(text).not.toContain('not-the-password');
    const logged = readFileSync(SUDO_LOG, 'utf8').slice(before.length);
    expect(logged.match(/incorrect password attempt/g)).toHaveLength(1);
    expect(logged).toContain('1 incorrect password attempt');
  });

  it('without a configured password, sudo -n fails with the clear error instead of prompting', async () => {
    const result = await stack.call('ssh_exec_command', { host: 'sudo-none', command: 'id -u', sudo: true, timeout: 30 });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('sudo needs a password on this host: configure sudo_password_env or a NOPASSWD rule');
  });

  it('without sudo: true the same command runs as the SSH user', async () => {
    const result = await stack.call('ssh_exec_command', { host: 'sudo-ok', command: 'id -u' });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).not.toMatchObject({ stdout: '0\n' });
  });

  it('counts as privileged for policy: a viewer allowed read-only commands may run id -u, but not under sudo', async () => {
    const passwords = await addTeam(stack.worker, [['vic', ['support']]], {
      version: 1,
      grants: [{ effect: 'allow', subjects: ['group:support'], role: 'viewer', hosts: ['*'] }],
      commandRules: [{ effect: 'allow', roles: ['viewer'], hosts: ['*'], classes: ['read-only'], note: 'viewers may look' }],
    });
    const vic = await connectMcpClient(stack.worker.mcpUrl, { username: 'vic', password: passwords.get('vic') ?? '' });
    try {
      const plain = await vic.client.callTool({ name: 'ssh_exec_command', arguments: { host: 'sudo-ok', command: 'id -u' } });
      expect(plain.isError).toBeFalsy();
      const privileged = await vic.client.callTool({ name: 'ssh_exec_command', arguments: { host: 'sudo-ok', command: 'id -u', sudo: true } });
      expect(privileged.isError).toBe(true);
      expect(textOf(privileged as Parameters<typeof textOf>[0])).toContain('access_denied');
    } finally {
      await vic.close().catch(() => undefined);
    }
  });

  it('holds a sudo call for approval where privileged commands need one, and the approved call runs under sudo, as root', async () => {
    const passwords = await addTeam(stack.worker, [['opal', ['ops']]], {
      version: 1,
      grants: [{ effect: 'allow', subjects: ['group:ops'], role: 'operator', hosts: ['*'] }],
      commandRules: [{ effect: 'approve', roles: ['operator'], hosts: ['*'], classes: ['privileged'], note: 'root waits for a person' }],
    });
    const opal = await connectMcpClient(stack.worker.mcpUrl, { username: 'opal', password: passwords.get('opal') ?? '' });
    try {
      const command = `id -u; echo approved-${RUN}`;
      // The plain command is not privileged: it runs at once, as the SSH user.
      const plain = await opal.client.callTool({ name: 'ssh_exec_command', arguments: { host: 'sudo-ok', command } });
      expect(plain.structuredContent).not.toMatchObject({ stdout: `0\napproved-${RUN}\n` });
      const pending = opal.client.callTool({ name: 'ssh_exec_command', arguments: { host: 'sudo-ok', command, sudo: true, timeout: 30 } }, undefined, {
        timeout: 60_000,
      });
      let id = '';
      for (let attempt = 0; attempt < 100 && id === ''; attempt += 1) {
        const reply = await adminApi(stack.worker).get('approvals');
        const found = (reply.body.approvals as Array<{ id: string; command: string; state?: string }> | undefined)?.find(
          (approval) => approval.command === command,
        );
        if (found) id = found.id;
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect((await adminApi(stack.worker).post(`approvals/${id}/approve`, {})).status).toBe(200);
      const ran = await pending;
      expect(ran.structuredContent).toMatchObject({ exit_code: 0, stdout: `0\napproved-${RUN}\n` });
    } finally {
      await opal.close().catch(() => undefined);
    }
  });
});
