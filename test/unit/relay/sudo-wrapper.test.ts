/**
 * The sudo side of the wrapper, run by a real sh on this machine: a host without sudo gives a
 * clear error, and sudo's own stderr (lecture, retries) is told apart from the command's.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_STOP, newRunId, wrapCommand } from '../../../relay/host-stop.ts';
import { SUDO_STARTED, SudoStderrFilter, sudoRefused, underSudo } from '../../../relay/sudo.ts';

let bin: string;

beforeAll(() => {
  // A PATH with a shell and nothing else: no sudo, as on a host without it.
  bin = mkdtempSync(join(tmpdir(), 'mre-nosudo-'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
});

afterAll(() => rmSync(bin, { recursive: true, force: true }));

function runWithoutSudo(script: string): Promise<{ code: number | null; stderr: Buffer }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: bin } });
    const chunks: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('close', (code) => resolve({ code, stderr: Buffer.concat(chunks) }));
    child.stdin.end('the-password\n');
  });
}

describe('sudo missing on the host', () => {
  it.each(['password', 'no-password'] as const)('is a clear sudo_failed error (%s mode), and nothing ran', async (mode) => {
    const { code, stderr } = await runWithoutSudo(wrapCommand('touch /nonexistent-should-not-run', newRunId(), 60_000, DEFAULT_STOP, 'empty', mode));
    expect(code).toBe(127);
    const filter = new SudoStderrFilter(() => {
      throw new Error('nothing is the command’s: it never started');
    });
    filter.push(stderr);
    expect(filter.started).toBe(false);
    const refused = sudoRefused('web1', mode, filter.sudoText('the-password'), code);
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.error.code).toBe('sudo_failed');
    expect(refused.error.message).toContain('sudo is not installed on host "web1"');
    expect(refused.error.message).not.toContain('the-password');
  });
});

describe("telling sudo's stderr from the command's", () => {
  it('drops what sudo said before the marker (even split across chunks) and passes the rest on untouched', () => {
    const passed: Buffer[] = [];
    const filter = new SudoStderrFilter((chunk) => passed.push(Buffer.from(chunk)));
    const stream = Buffer.from(`We trust you have received the usual lecture\nSorry, try again.\n${SUDO_STARTED}command's own\n`);
    for (let at = 0; at < stream.length; at += 3) filter.push(stream.subarray(at, at + 3));
    expect(filter.started).toBe(true);
    expect(Buffer.concat(passed).toString()).toBe("command's own\n");
  });

  it('keeps the end of a long text (the reason comes last), printable, with the password cut out', () => {
    const filter = new SudoStderrFilter(() => undefined);
    filter.push(Buffer.from(`${'lecture line\n'.repeat(1000)}echoed s3cr3t by a module\x1b[31m\nsudo: 1 incorrect password attempt\n`));
    const text = filter.sudoText('s3cr3t');
    expect(text.endsWith('sudo: 1 incorrect password attempt')).toBe(true);
    expect(text).toContain('echoed [sudo password] by a module?[31m');
    expect(text).not.toContain('s3cr3t');
    expect(text.length).toBeLessThanOrEqual(401);
  });
});

describe('a login shell that traces its commands', () => {
  it('is told to stop before the password line is read, and a traced password is cut out in its quoted form too', () => {
    const wrapped = underSudo('true', '', 'password');
    expect(wrapped.indexOf('set +vx;')).toBeLessThan(wrapped.indexOf('read -r mre_p'));
    const filter = new SudoStderrFilter(() => undefined);
    filter.push(Buffer.from(`+ printf '%s\\n' 'it'\\''s a pw'\nsudo: 1 incorrect password attempt\n`));
    const text = filter.sudoText("it's a pw");
    expect(text).not.toContain('s a pw');
    expect(text).toContain('[sudo password]');
  });

  it('really runs the wrapper with tracing off (bash -x): the password never reaches stderr', () => {
    const script = `${underSudo('true', '', 'password').replace(/ \| sudo .*$/, ' >/dev/null')}`;
    const result = spawnSync('bash', ['-x', '-c', script], { input: "it's a pw\n", encoding: 'utf8' });
    expect(result.stderr).toContain('set +vx');
    expect(result.stderr).not.toContain('s a pw');
  });
});

describe('sudo refusing', () => {
  it('names a wrong password and a missing NOPASSWD rule in English, and any other words (another language) still as sudo_failed with sudo’s text', () => {
    const wrong = sudoRefused('web1', 'password', 'Sorry, try again. / sudo: 1 incorrect password attempt', 1);
    expect(!wrong.ok && wrong.error.message).toContain('refused the configured sudo password');
    const none = sudoRefused('web1', 'no-password', 'sudo: a password is required', 1);
    expect(!none.ok && none.error.message).toContain('sudo needs a password on this host: configure sudo_password_env or a NOPASSWD rule');
    const german = sudoRefused('web1', 'password', 'Entschuldigung, versuchen Sie es noch einmal. / sudo: 1 Fehlversuch bei der Passwort-Eingabe', 1);
    expect(german.ok).toBe(false);
    if (german.ok) return;
    expect(german.error.code).toBe('sudo_failed');
    expect(german.error.message).toContain('did not run the command (sudo said: "Entschuldigung');
    expect(german.error.message).toContain('Nothing ran');
  });
});
