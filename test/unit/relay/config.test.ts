import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configError as messageOf, configFixture, type ConfigFixture } from './config-fixture.ts';
import { loadEnvironment, loadHostsConfig } from '../../../relay/config.ts';

let fixture: ConfigFixture;
let dir: string;
let key: string;
let encryptedKey: string;
let socket: string;

beforeAll(async () => {
  fixture = await configFixture('mre-config-', { id_ed25519: '', id_encrypted: 'sesame' });
  ({ dir, socket } = fixture);
  key = fixture.keys.id_ed25519 ?? '';
  encryptedKey = fixture.keys.id_encrypted ?? '';
});

afterAll(() => fixture.close());

const seed = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  HOST: '192.0.2.10',
  SSH_USERNAME: 'deploy',
  SSH_KEY: key,
  MCP_REMOTE_EXEC_STATE_DIR: dir,
  ...extra,
});

function configError(env: NodeJS.ProcessEnv, path?: string): string {
  return messageOf(() => loadHostsConfig(env, path));
}

describe('hosts from the seed variables', () => {
  it('builds one host with the seed defaults', () => {
    const config = loadHostsConfig(seed());
    expect(config.hosts).toHaveLength(1);
    expect(config.hosts[0]).toMatchObject({
      name: '192.0.2.10',
      address: '192.0.2.10',
      port: 22,
      username: 'deploy',
      strictHostKeyChecking: true,
      readyShell: true,
      maxSessions: 10,
    });
    expect(config.recordKnownHostsFile).toBe(join(dir, 'known_hosts'));
  });

  it('starts with no host when HOST is unset', () => {
    expect(loadHostsConfig({ MCP_REMOTE_EXEC_STATE_DIR: dir }).hosts).toEqual([]);
  });

  it('reads SSH_PORT, SSH_STRICT_HOST_KEY_CHECKING and SSH_READY_SHELL', () => {
    const [host] = loadHostsConfig(seed({ SSH_PORT: '2222', SSH_STRICT_HOST_KEY_CHECKING: 'false', SSH_READY_SHELL: 'false' })).hosts;
    expect(host).toMatchObject({ port: 2222, strictHostKeyChecking: false, readyShell: false });
  });

  it.each([
    ['SSH_USERNAME missing', { SSH_USERNAME: '' }, 'SSH_USERNAME'],
    ['no key or password', { SSH_KEY: '' }, 'neither SSH_KEY'],
    [
      'an SSH_AUTH_SOCK that is gone',
      { SSH_KEY: '', SSH_AUTH_SOCK: '/nonexistent/agent.sock' },
      'ssh-agent socket not found: /nonexistent/agent.sock (SSH_AUTH_SOCK)',
    ],
    ['a bad port', { SSH_PORT: '70000' }, 'SSH_PORT must be a port number'],
    ['a bad boolean', { SSH_STRICT_HOST_KEY_CHECKING: 'maybe' }, 'SSH_STRICT_HOST_KEY_CHECKING must be true or false'],
    ['a missing key file', { SSH_KEY: '/nonexistent/key' }, 'SSH key file not found: /nonexistent/key'],
  ])('explains %s', (_label, extra, message) => {
    expect(configError(seed(extra))).toContain(message);
  });

  it('uses the agent at SSH_AUTH_SOCK when no key or password is given, and a given key or password otherwise', () => {
    expect(loadHostsConfig(seed({ SSH_KEY: '', SSH_AUTH_SOCK: socket })).hosts[0]?.auth).toEqual({ kind: 'agent', socketPath: socket });
    expect(loadHostsConfig(seed({ SSH_AUTH_SOCK: socket })).hosts[0]?.auth).toMatchObject({ kind: 'key', keyPath: key });
    expect(loadHostsConfig(seed({ SSH_KEY: '', SSH_PASSWORD: 'pw', SSH_AUTH_SOCK: socket })).hosts[0]?.auth).toEqual({ kind: 'password', password: 'pw' });
  });

  it('says a key needs its passphrase, and loads it when given one', () => {
    expect(configError(seed({ SSH_KEY: encryptedKey }))).toContain('give it in SSH_KEY_PASSPHRASE');
    expect(loadHostsConfig(seed({ SSH_KEY: encryptedKey, SSH_KEY_PASSPHRASE: 'sesame' })).hosts[0]?.auth).toMatchObject({ kind: 'key', passphrase: 'sesame' });
  });

  it('lists the supported formats for a file that is not a key', () => {
    const notKey = join(dir, 'not-a-key');
    writeFileSync(notKey, 'hello\n');
    expect(configError(seed({ SSH_KEY: notKey }))).toContain('Supported: OpenSSH');
  });
});

describe('.env files', () => {
  it('fills in variables the environment does not set, and the environment wins', () => {
    const file = join(dir, '.env');
    writeFileSync(file, 'HOST=from-file\nSSH_PORT=2200\n');
    expect(loadEnvironment({ HOST: 'from-env' }, file)).toMatchObject({ HOST: 'from-env', SSH_PORT: '2200' });
  });
});

describe('hosts from a config file', () => {
  function writeConfig(content: unknown): string {
    const path = join(dir, `relay-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  }

  it('reads several hosts with labels and per-host settings', () => {
    const path = writeConfig({
      relay_id: 'lan-1',
      hosts: [
        { name: 'web1', address: '192.0.2.1', user: 'deploy', key_path: key, labels: { env: 'prod' } },
        { name: 'db1', address: '192.0.2.2', port: 2222, user: 'dba', password_env: 'DB1_PASSWORD', strict_host_key_checking: false, ready_shell: false },
      ],
    });
    const config = loadHostsConfig({ DB1_PASSWORD: 'pw', MCP_REMOTE_EXEC_STATE_DIR: dir }, path);
    expect(config.relayId).toBe('lan-1');
    expect(config.hosts.map((host) => host.name)).toEqual(['web1', 'db1']);
    expect(config.hosts[0]?.labels).toEqual({ env: 'prod' });
    expect(config.hosts[0]?.readyShell).toBe(true);
    expect(config.hosts[1]).toMatchObject({ port: 2222, strictHostKeyChecking: false, readyShell: false, auth: { kind: 'password', password: 'pw' } });
  });

  it.each([
    ['invalid JSON', '{', 'is not valid JSON'],
    ['an unknown field', { hosts: [{ name: 'a', address: 'x', user: 'u', key_path: 'k', colour: 'red' }] }, 'colour'],
    [
      'two credential sources',
      { hosts: [{ name: 'a', address: 'x', user: 'u', key_path: 'k', password_env: 'P' }] },
      'give exactly one way to log in: key_path, password_env, password_file or agent',
    ],
    [
      'a key and an agent',
      { hosts: [{ name: 'a', address: 'x', user: 'u', key_path: 'k', agent: true }] },
      'give exactly one way to log in: key_path, password_env, password_file or agent',
    ],
    ['no way to log in', { hosts: [{ name: 'a', address: 'x', user: 'u' }] }, 'give exactly one way to log in'],
    ['agent: true without SSH_AUTH_SOCK', { hosts: [{ name: 'a', address: 'x', user: 'u', agent: true }] }, 'SSH_AUTH_SOCK is not set'],
    [
      'an agent socket that does not exist',
      { hosts: [{ name: 'a', address: 'x', user: 'u', agent: '/nonexistent/agent.sock' }] },
      'ssh-agent socket not found: /nonexistent/agent.sock',
    ],
    ['an agent path that is not a socket', { hosts: [{ name: 'a', address: 'x', user: 'u', agent: '/etc/hostname' }] }, '/etc/hostname (host "a" in'],
    [
      'a passphrase with an agent',
      { hosts: [{ name: 'a', address: 'x', user: 'u', agent: '/nonexistent', key_passphrase_env: 'P' }] },
      'key_passphrase_env is for key_path',
    ],
    [
      'a duplicate name',
      {
        hosts: [
          { name: 'a', address: 'x', user: 'u', password_env: 'P' },
          { name: 'a', address: 'y', user: 'u', password_env: 'P' },
        ],
      },
      'appears twice',
    ],
    ['an unset password variable', { hosts: [{ name: 'a', address: 'x', user: 'u', password_env: 'NOT_SET_ANYWHERE' }] }, 'NOT_SET_ANYWHERE, which is not set'],
    [
      'a malformed fingerprint',
      { hosts: [{ name: 'a', address: 'x', user: 'u', password_env: 'P', host_key_fingerprints: ['MD5:aa'] }] },
      'SHA256:<43 base64 characters>',
    ],
  ])('explains %s', (_label, content, message) => {
    expect(configError({ P: 'x', MCP_REMOTE_EXEC_STATE_DIR: dir }, writeConfig(content))).toContain(message);
  });

  it('reads agent: true from SSH_AUTH_SOCK, and an agent path relative to the file', () => {
    const path = writeConfig({
      hosts: [
        { name: 'a', address: 'x', user: 'u', agent: true },
        { name: 'b', address: 'x', user: 'u', agent: 'agent.sock' },
        { name: 'c', address: 'x', user: 'u', agent: false, password_env: 'P' },
      ],
    });
    const hosts = loadHostsConfig({ P: 'x', SSH_AUTH_SOCK: socket, MCP_REMOTE_EXEC_STATE_DIR: dir }, path).hosts;
    expect(hosts.map((host) => host.auth)).toEqual([
      { kind: 'agent', socketPath: socket },
      { kind: 'agent', socketPath: socket },
      { kind: 'password', password: 'x' },
    ]);
  });
});

describe('own confirmation settings (stdio mode)', () => {
  it('reads CONFIRM_CLASSES and CONFIRM_FALLBACK, refusing by default', () => {
    expect(loadHostsConfig(seed()).hosts[0]?.confirm).toBeUndefined();
    expect(loadHostsConfig(seed({ CONFIRM_CLASSES: 'Mutating, privileged' })).hosts[0]?.confirm).toEqual({
      classes: ['mutating', 'privileged'],
      fallback: 'refuse',
    });
    expect(loadHostsConfig(seed({ CONFIRM_CLASSES: 'unknown', CONFIRM_FALLBACK: 'run' })).hosts[0]?.confirm).toEqual({ classes: ['unknown'], fallback: 'run' });
  });

  it.each([
    [{ CONFIRM_CLASSES: 'mutating,dangerous' }, 'CONFIRM_CLASSES lists dangerous'],
    [{ CONFIRM_CLASSES: 'mutating', CONFIRM_FALLBACK: 'ask' }, 'CONFIRM_FALLBACK must be refuse or run'],
  ])('explains a wrong value: %o', (extra, message) => {
    expect(configError(seed(extra))).toContain(message);
  });

  it('applies the file-wide list to every host unless a host has its own, even an empty one', () => {
    const path = join(dir, 'confirm.json');
    writeFileSync(
      path,
      JSON.stringify({
        confirm: ['privileged'],
        confirm_fallback: 'run',
        hosts: [
          { name: 'a', address: '192.0.2.1', user: 'u', key_path: key },
          { name: 'b', address: '192.0.2.2', user: 'u', key_path: key, confirm: [] },
          { name: 'c', address: '192.0.2.3', user: 'u', key_path: key, confirm: ['mutating'], confirm_fallback: 'refuse' },
        ],
      }),
    );
    const hosts = loadHostsConfig({ MCP_REMOTE_EXEC_STATE_DIR: dir }, path).hosts;
    expect(hosts.map((host) => host.confirm)).toEqual([{ classes: ['privileged'], fallback: 'run' }, undefined, { classes: ['mutating'], fallback: 'refuse' }]);
    expect(configError({ MCP_REMOTE_EXEC_STATE_DIR: dir }, writeConfigText({ confirm: ['everything'], hosts: [] }))).toContain('confirm');
  });
});

function writeConfigText(content: unknown): string {
  const path = join(dir, `confirm-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(content));
  return path;
}
