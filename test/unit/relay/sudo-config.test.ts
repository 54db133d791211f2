import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadHostsConfig } from '../../../relay/config.ts';

let dir: string;
let key: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mre-sudo-config-'));
  key = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(host: Record<string, unknown>): string {
  const path = join(dir, `config-${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ hosts: [{ name: 'web1', address: '192.0.2.10', user: 'deploy', key_path: key, ...host }] }));
  return path;
}

function configError(env: NodeJS.ProcessEnv, path?: string): string {
  try {
    loadHostsConfig(env, path);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const base = (): NodeJS.ProcessEnv => ({ MCP_REMOTE_EXEC_STATE_DIR: dir });

describe('sudo password sources', () => {
  it('reads sudo_password_env and sudo_password_file (its final newline dropped); none means no password', () => {
    const file = join(dir, 'sudo-pass');
    writeFileSync(file, 'from file\n');
    expect(loadHostsConfig({ ...base(), PW: 'from env' }, configFile({ sudo_password_env: 'PW' })).hosts[0]?.sudoPassword).toBe('from env');
    expect(loadHostsConfig(base(), configFile({ sudo_password_file: file })).hosts[0]?.sudoPassword).toBe('from file');
    expect(loadHostsConfig(base(), configFile({})).hosts[0]?.sudoPassword).toBeUndefined();
  });

  it('stdio variables: SSH_SUDO_PASSWORD', () => {
    const env = { ...base(), HOST: '192.0.2.10', SSH_USERNAME: 'deploy', SSH_KEY: key };
    expect(loadHostsConfig({ ...env, SSH_SUDO_PASSWORD: 's3cret' }).hosts[0]?.sudoPassword).toBe('s3cret');
    expect(loadHostsConfig(env).hosts[0]?.sudoPassword).toBeUndefined();
  });

  it('refuses an unset variable, both sources, and a password sudo cannot read as one line, without quoting the password', () => {
    expect(configError(base(), configFile({ sudo_password_env: 'NOPE' }))).toContain('sudo_password_env names NOPE, which is not set');
    expect(configError({ ...base(), PW: 'x' }, configFile({ sudo_password_env: 'PW', sudo_password_file: '/etc/hostname' }))).toContain('at most one of');
    const broken = configError({ ...base(), PW: 'line1\nline2' }, configFile({ sudo_password_env: 'PW' }));
    expect(broken).toContain('line break');
    expect(broken).not.toContain('line1');
    expect(configError({ ...base(), HOST: '192.0.2.10', SSH_USERNAME: 'd', SSH_KEY: key, SSH_SUDO_PASSWORD: 'a\0b' })).toContain('SSH_SUDO_PASSWORD');
  });

  it('takes a password up to the 1023 bytes sudo reads, counted in bytes, and refuses a longer one without quoting it', () => {
    const fits = `${'é'.repeat(511)}x`;
    expect(loadHostsConfig({ ...base(), PW: fits }, configFile({ sudo_password_env: 'PW' })).hosts[0]?.sudoPassword).toBe(fits);
    // 600 characters, 1200 bytes: sudo would cut it, and it could never match.
    const long = configError({ ...base(), PW: 'é'.repeat(600) }, configFile({ sudo_password_env: 'PW' }));
    expect(long).toContain('longer than 1023 bytes');
    expect(long).not.toContain('éé');
  });
});
