/**
 * A sudo rule for the test user, in a private sudoers drop-in that the test removes afterwards.
 * The host is this machine; sudo is installed when missing (CI's .ci/run installs it too).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_USER } from './sshd.ts';

export interface SudoRule {
  /** The drop-in's path under /etc/sudoers.d. */
  path: string;
  /** Replace the rule: a password rule or NOPASSWD, with extra Defaults (", name=value…"). */
  write(rule: 'password' | 'nopasswd', extraDefaults?: string): void;
  remove(): void;
}

/**
 * Installs sudo if needed and a password rule for TEST_USER: no cached credentials between calls,
 * the lecture every time (it must never reach a command's output), every attempt logged to `logFile`.
 * `name` must hold no "." (sudo ignores such drop-ins). Each rule is checked by visudo first.
 */
export function installSudoRule(name: string, workDir: string, logFile: string): SudoRule {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error('a sudoers drop-in name is letters, digits, - and _ only');
  try {
    execFileSync('sh', ['-c', 'command -v sudo'], { stdio: 'ignore' });
  } catch {
    execFileSync('apt-get', ['install', '-y', '-qq', '-o', 'DPkg::Lock::Timeout=120', 'sudo'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  const path = `/etc/sudoers.d/${name}`;
  const write = (rule: 'password' | 'nopasswd', extraDefaults = ''): void => {
    const candidate = join(workDir, `${name}.sudoers`);
    const defaults = `Defaults:${TEST_USER} timestamp_timeout=0, lecture=always, logfile="${logFile}"${extraDefaults}`;
    writeFileSync(candidate, `${defaults}\n${TEST_USER} ALL=(ALL:ALL) ${rule === 'nopasswd' ? 'NOPASSWD: ' : ''}ALL\n`, { mode: 0o440 });
    execFileSync('visudo', ['-cf', candidate], { stdio: 'ignore' });
    writeFileSync(path, readFileSync(candidate), { mode: 0o440 });
    chmodSync(path, 0o440);
  };
  write('password');
  return { path, write, remove: () => rmSync(path, { force: true }) };
}
