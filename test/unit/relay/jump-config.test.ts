import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configError, configFixture, type ConfigFixture } from './config-fixture.ts';
import { ConfigError, loadHostsConfig, type RelayHostsConfig } from '../../../relay/config.ts';
import { MAX_JUMP_HOPS, parseProxyJump } from '../../../relay/jump-hosts.ts';

let fixture: ConfigFixture;
let dir: string;
let key: string;

beforeAll(async () => {
  fixture = await configFixture('mre-jump-config-', { id_ed25519: '' });
  dir = fixture.dir;
  key = fixture.keys.id_ed25519 ?? '';
});

afterAll(() => fixture.close());

function host(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, address: `${name}.example.net`, user: 'ops', key_path: key, ...extra };
}

function load(hosts: Record<string, unknown>[]): RelayHostsConfig {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ hosts }));
  return loadHostsConfig({ MCP_REMOTE_EXEC_STATE_DIR: dir }, path);
}

describe('jump in the relay config', () => {
  it('resolves named hops in order and leaves jump-only hosts out of the host list', () => {
    const config = load([host('bastion', { jump_only: true }), host('inner', { jump_only: true }), host('web1', { jump: ['bastion', 'inner'] })]);
    expect(config.hosts.map((h) => h.name)).toEqual(['web1']);
    expect(config.hosts[0]?.jump?.map((hop) => [hop.name, hop.address, hop.auth.kind])).toEqual([
      ['bastion', 'bastion.example.net', 'key'],
      ['inner', 'inner.example.net', 'key'],
    ]);
  });

  it("follows the first hop's own jump list, as ssh does for a bastion behind a bastion", () => {
    const config = load([host('outer'), host('bastion', { jump: ['outer'] }), host('web1', { jump: ['bastion'] })]);
    const byName = new Map(config.hosts.map((h) => [h.name, h.jump?.map((hop) => hop.name)]));
    expect(byName.get('web1')).toEqual(['outer', 'bastion']);
    expect(byName.get('bastion')).toEqual(['outer']);
    expect(byName.get('outer')).toBeUndefined();
  });

  it('refuses a host that jumps through itself, a cycle, an unknown name and a chain over the limit, naming the host', () => {
    expect(configError(() => load([host('bastion', { jump: ['bastion'] })]))).toContain('host "bastion"');
    expect(configError(() => load([host('bastion', { jump: ['bastion'] })]))).toContain('loops (bastion > bastion)');
    expect(configError(() => load([host('a', { jump: ['b'] }), host('b', { jump: ['a'] })]))).toMatch(/loops \((a > b > a|b > a > b)\)/);
    expect(configError(() => load([host('web1', { jump: ['nowhere'] })]))).toContain('host "web1"');
    expect(configError(() => load([host('web1', { jump: ['nowhere'] })]))).toContain('"nowhere", which is not a host in this config');
    expect(configError(() => load([host('a'), host('web1', { jump: ['a', 'a'] })]))).toContain('passes "a" twice');
    // A chain of MAX_JUMP_HOPS + 1 through each host's first hop.
    const chain = Array.from({ length: MAX_JUMP_HOPS + 2 }, (_, i) => host(`h${i}`, i === 0 ? {} : { jump: [`h${i - 1}`] }));
    expect(configError(() => load(chain))).toContain(`host "h${MAX_JUMP_HOPS + 1}"`);
    expect(configError(() => load(chain))).toContain(`at most ${MAX_JUMP_HOPS} are allowed`);
    // Exactly the limit is fine.
    expect(load(chain.slice(0, MAX_JUMP_HOPS + 1)).hosts.at(-1)?.jump).toHaveLength(MAX_JUMP_HOPS);
  });

  it('takes proxy_jump in OpenSSH syntax when each hop is a configured host, by name or by address and port', () => {
    const config = load([
      host('bastion', { port: 2222 }),
      host('inner'),
      host('web1', { proxy_jump: 'ops@bastion.example.net:2222,inner' }),
      host('web2', { proxy_jump: 'ssh://bastion' }),
      host('web3', { proxy_jump: 'none' }),
    ]);
    const byName = new Map(config.hosts.map((h) => [h.name, h.jump?.map((hop) => hop.name)]));
    expect(byName.get('web1')).toEqual(['bastion', 'inner']);
    expect(byName.get('web2')).toEqual(['bastion']);
    expect(byName.get('web3')).toBeUndefined();
  });

  it('refuses proxy_jump hops that are no configured host, or disagree with it, and jump with proxy_jump', () => {
    expect(configError(() => load([host('web1', { proxy_jump: 'admin@gateway.example.net' })]))).toContain(
      'jump hop "admin@gateway.example.net" is not a host in this config. Add it as a host',
    );
    expect(configError(() => load([host('bastion'), host('web1', { proxy_jump: 'root@bastion' })]))).toContain('gives another user or port');
    expect(configError(() => load([host('bastion'), host('web1', { proxy_jump: 'bastion:2200' })]))).toContain('gives another user or port');
    expect(configError(() => load([host('bastion'), host('web1', { jump: ['bastion'], proxy_jump: 'bastion' })]))).toContain(
      'give jump or proxy_jump, not both',
    );
  });
});

describe('OpenSSH jump lists', () => {
  it('parses users, ports, IPv6 and ssh:// URIs', () => {
    expect(parseProxyJump('a@h1:2200, h2 ,ssh://b@h3:22,[::1]:2022', 'test')).toEqual([
      { user: 'a', host: 'h1', port: 2200, text: 'a@h1:2200' },
      { host: 'h2', text: 'h2' },
      { user: 'b', host: 'h3', port: 22, text: 'ssh://b@h3:22' },
      { host: '::1', port: 2022, text: '[::1]:2022' },
    ]);
    expect(parseProxyJump('NONE', 'test')).toEqual([]);
  });

  it('refuses empty hops, bad ports, shell and control characters and too many hops', () => {
    for (const bad of ['a,,b', 'a,', 'h:0', 'h:65536', 'h:22x', 'h;rm -rf /', '$(id)@h', 'h\nother', 'h\u0000', 'u@', '@h', '[zz]:22', '-oProxyCommand=x']) {
      expect(() => parseProxyJump(bad, 'test'), bad).toThrow(ConfigError);
    }
    const many = Array.from({ length: MAX_JUMP_HOPS + 1 }, (_, i) => `h${i}`).join(',');
    expect(() => parseProxyJump(many, 'test')).toThrow(`at most ${MAX_JUMP_HOPS}`);
    expect(() => parseProxyJump('h,'.repeat(3000), 'test')).toThrow(ConfigError);
  });
});

describe('stdio SSH_PROXY_JUMP', () => {
  const env = (jump: string): NodeJS.ProcessEnv => ({
    HOST: '10.0.0.5',
    HOST_NAME: 'db',
    SSH_USERNAME: 'deploy',
    SSH_KEY: key,
    SSH_PROXY_JUMP: jump,
    SSH_STRICT_HOST_KEY_CHECKING: 'false',
    SSH_HOST_KEY_FINGERPRINT: 'SHA256:' + 'A'.repeat(43),
    MCP_REMOTE_EXEC_STATE_DIR: dir,
  });

  it('gives the one host its hops, logged in to with its own key as SSH_USERNAME unless the hop names a user', () => {
    const [db] = loadHostsConfig(env('gw.example.net,admin@inner:2222')).hosts;
    expect(db?.jump?.map((hop) => [hop.name, hop.address, hop.port, hop.username, hop.auth.kind, hop.strictHostKeyChecking])).toEqual([
      ['gw.example.net', 'gw.example.net', 22, 'deploy', 'key', false],
      ['admin@inner:2222', 'inner', 2222, 'admin', 'key', false],
    ]);
    // The pinned fingerprint is the target's; hops are checked against known_hosts.
    expect(db?.jump?.every((hop) => hop.hostKeyFingerprints.length === 0)).toBe(true);
    expect(db?.hostKeyFingerprints).toHaveLength(1);
  });

  it('has no hop for an empty value or none, and refuses a malformed one', () => {
    expect(loadHostsConfig(env('')).hosts[0]?.jump).toBeUndefined();
    expect(loadHostsConfig(env('none')).hosts[0]?.jump).toBeUndefined();
    expect(configError(() => loadHostsConfig(env('gw,,inner')))).toContain('SSH_PROXY_JUMP');
  });

  it('warns at start that a password goes to every jump host too, and says nothing for a key', () => {
    expect(loadHostsConfig(env('gw')).notices ?? []).toEqual([]);
    const withPassword = loadHostsConfig({ ...env('gw'), SSH_KEY: '', SSH_PASSWORD: 'pw' });
    expect(withPassword.notices?.join('\n')).toContain('every jump host is sent the same password');
    expect(withPassword.notices?.join('\n')).not.toContain('pw ');
  });
});
