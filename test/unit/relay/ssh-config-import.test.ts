import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configError, configFixture, type ConfigFixture } from './config-fixture.ts';
import { loadHostsConfig, type RelayHostsConfig } from '../../../relay/config.ts';
import { MAX_IMPORTED_HOSTS, MAX_SSH_CONFIG_BYTES } from '../../../relay/ssh-config-import.ts';

let fixture: ConfigFixture;
let dir: string;
let key: string;
let otherKey: string;
let socket: string;

beforeAll(async () => {
  fixture = await configFixture('mre-ssh-config-', { id_web: '', id_other: '' });
  ({ dir, socket } = fixture);
  key = fixture.keys.id_web ?? '';
  otherKey = fixture.keys.id_other ?? '';
});

afterAll(() => fixture.close());

let counter = 0;

/** Write `lines` as an ssh_config and a relay config importing `wanted` from it; load it. */
function load(lines: string[], wanted: string[], extra: { env?: NodeJS.ProcessEnv; hosts?: unknown[] } = {}): RelayHostsConfig {
  counter += 1;
  const sshConfig = join(dir, `ssh_config_${counter}`);
  writeFileSync(sshConfig, lines.join('\n'));
  const path = join(dir, `relay_${counter}.json`);
  writeFileSync(path, JSON.stringify({ ssh_config: sshConfig, hosts_from_ssh_config: wanted, hosts: extra.hosts ?? [] }));
  return loadHostsConfig({ MCP_REMOTE_EXEC_STATE_DIR: dir, USER: 'localme', ...extra.env }, path);
}

describe('reading an OpenSSH client config', () => {
  it('maps Host, HostName (%h), User, Port, IdentityFile, UserKnownHostsFile and StrictHostKeyChecking, first value winning', () => {
    const config = load(
      [
        '# comment',
        'Host web1 web2',
        '  HostName %h.internal.example.net',
        '  user=deploy',
        '  PORT = 2222',
        `  IdentityFile "${key}"`,
        `  UserKnownHostsFile ${join(dir, 'kh1')} ${join(dir, 'kh2')}`,
        'Host web1',
        '  User ignored-because-later',
        '  StrictHostKeyChecking accept-new',
        'Host *',
        '  Port 22',
      ],
      ['web1'],
    );
    expect(config.hosts).toHaveLength(1);
    expect(config.hosts[0]).toMatchObject({
      name: 'web1',
      address: 'web1.internal.example.net',
      username: 'deploy',
      port: 2222,
      auth: { kind: 'key', keyPath: key },
      strictHostKeyChecking: false,
      knownHostsFiles: [join(dir, 'kh1'), join(dir, 'kh2')],
    });
    expect(config.notices).toEqual([]);
  });

  it('honours negated patterns, and takes the local user and port 22 by default', () => {
    const config = load(['Host * !db1', '  User app', 'Host db1 web1', `  IdentityFile ${key}`], ['db1', 'web1']);
    expect(config.hosts.map((h) => [h.name, h.address, h.username, h.port])).toEqual([
      ['db1', 'db1', 'localme', 22],
      ['web1', 'web1', 'app', 22],
    ]);
  });

  it('imports the aliases a pattern in hosts_from_ssh_config matches, and refuses one that matches nothing', () => {
    const lines = ['Host db1 db2 web1 db*', `  IdentityFile ${key}`];
    expect(load(lines, ['db*']).hosts.map((h) => h.name)).toEqual(['db1', 'db2']);
    expect(configError(() => load(lines, ['mail*']))).toContain('"mail*" matches no Host alias');
    expect(configError(() => load(lines, ['db3']))).toContain('"db3" matches no Host alias');
    const many = [`Host ${Array.from({ length: MAX_IMPORTED_HOSTS + 1 }, (_, i) => `h${i}`).join(' ')}`, `  IdentityFile ${key}`];
    expect(configError(() => load(many, ['h*']))).toContain(`selects more than ${MAX_IMPORTED_HOSTS} hosts`);
  });

  it('lists every directive it does not use once per host, Match blocks, and ProxyCommand, without running any of them', () => {
    const marker = join(dir, 'ran');
    const config = load(
      [
        'Host web1',
        `  IdentityFile ${key}`,
        `  ProxyCommand sh -c "touch ${marker}"`,
        '  ForwardAgent yes',
        `Match exec "touch ${marker}"`,
        '  User root',
        `Match host web1 exec "touch ${marker}"`,
        '  Port 1',
        'Host *',
        '  forwardagent no',
        `  LocalCommand touch ${marker}`,
        '  PermitLocalCommand yes',
      ],
      ['web1'],
    );
    expect(config.hosts[0]).toMatchObject({ username: 'localme', port: 22 });
    expect(config.notices).toEqual([
      expect.stringMatching(/^ignored: Match block at .* line 5 /),
      expect.stringMatching(/^ignored: Match block at .* line 7 /),
      'ignored: ProxyCommand (host web1): never run; the relay connects directly (use ProxyJump)',
      'ignored: ForwardAgent (host web1)',
      'ignored: LocalCommand (host web1)',
      'ignored: PermitLocalCommand (host web1)',
    ]);
    expect(existsSync(marker)).toBe(false);
  });

  it('reads Include in place, with wildcards in the file name, inside the Host block that holds it', () => {
    const includes = join(dir, `conf.d-${counter}`);
    mkdirSync(includes);
    writeFileSync(join(includes, '10-web.conf'), ['  User from-include', 'Host web2', '  Port 2202'].join('\n'));
    writeFileSync(join(includes, '20-other.conf'), ['Host web1', '  Port 2201', '  User too-late'].join('\n'));
    writeFileSync(join(includes, '.hidden.conf'), ['Host *', '  Port 9999'].join('\n'));
    const config = load(
      ['Host web1', `  Include ${join(includes, '*.conf')}`, '  HostName after-include', 'Host *', `  IdentityFile ${key}`],
      ['web1', 'web2'],
    );
    expect(config.hosts.map((h) => [h.name, h.address, h.username, h.port])).toEqual([
      ['web1', 'after-include', 'from-include', 2201],
      ['web2', 'web2', 'localme', 2202],
    ]);
  });

  it('refuses an Included file that is not an ssh_config (a private key), naming file and line but never echoing its text', () => {
    const includes = join(dir, `keys.d-${counter}`);
    mkdirSync(includes);
    const keyText = readFileSync(key, 'utf8');
    writeFileSync(join(includes, 'deploy_key'), keyText);
    const message = configError(() => load(['Host web1', `  Include ${join(includes, '*')}`, `  IdentityFile ${key}`], ['web1']));
    expect(message).toContain(`${join(includes, 'deploy_key')} line 1`);
    expect(message).toContain('does not start with an ssh_config keyword');
    for (const line of keyText.split('\n').filter((text) => text.length > 8)) expect(message).not.toContain(line.slice(0, 20));
  });

  it('refuses an Include loop, a huge file, control characters, an unclosed quote and unusable values, naming the place', () => {
    counter += 1;
    const loop = join(dir, `loop_${counter}`);
    writeFileSync(loop, `Include ${loop}\nHost web1\n  IdentityFile ${key}\n`);
    const path = join(dir, `relay_loop_${counter}.json`);
    writeFileSync(path, JSON.stringify({ ssh_config: loop, hosts_from_ssh_config: ['web1'] }));
    expect(configError(() => loadHostsConfig({ MCP_REMOTE_EXEC_STATE_DIR: dir }, path))).toContain('Include nests deeper than 16');

    const huge = ['Host web1', `  IdentityFile ${key}`, `# ${'x'.repeat(MAX_SSH_CONFIG_BYTES)}`];
    expect(configError(() => load(huge, ['web1']))).toMatch(/is \d+ bytes; more than 1048576 is refused/);
    expect(configError(() => load(['Host web1', '  User a\u0007b'], ['web1']))).toMatch(/line 2: the line has a control character/);
    expect(configError(() => load(['Host web1', '  IdentityFile "/no/end'], ['web1']))).toMatch(/line 2: a quote is not closed/);
    expect(configError(() => load(['Host web1', `  IdentityFile ${key}`, '  Port 70000'], ['web1']))).toContain('Port "70000" is not a port number');
    expect(configError(() => load(['Host web1', `  IdentityFile ${key}`, '  HostName "a b"'], ['web1']))).toContain('is not a host name or address');
    expect(configError(() => load(['Host web1', `  IdentityFile ${key}`, '  HostName -oProxyCommand=x'], ['web1']))).toContain('is not a host name');
    expect(configError(() => load(['Host web1', `  IdentityFile ${key}`, '  User "$(id)"'], ['web1']))).toContain('is not a user name');
    expect(configError(() => load(['Host web1', `  IdentityFile ${key}`, '  StrictHostKeyChecking maybe'], ['web1']))).toContain(
      'is not yes, no, ask or accept-new',
    );
    expect(configError(() => load(['Host web1', '  IdentityFile ~/%C'], ['web1']))).toContain('the token %C is not supported');
    expect(configError(() => load(['Host web1', '  Port'], ['web1']))).toContain('Port needs a value');
    expect(configError(() => load(['Host web:1', `  IdentityFile ${key}`], ['web:1']))).toContain('cannot be a relay host name');
  });

  it('takes StrictHostKeyChecking no as accept-new, and says so', () => {
    const config = load(['Host web1', `  IdentityFile ${key}`, '  StrictHostKeyChecking no'], ['web1']);
    expect(config.hosts[0]?.strictHostKeyChecking).toBe(false);
    expect(config.notices).toEqual(['StrictHostKeyChecking no (host web1) is taken as accept-new: the relay records new keys and always refuses changed ones']);
  });

  it('logs in with the first IdentityFile that exists (listing the others), else the agent, else refuses', () => {
    const two = load(['Host web1', `  IdentityFile ${join(dir, 'missing')}`, `  IdentityFile ${key}`, `  IdentityFile ${otherKey}`], ['web1']);
    expect(two.hosts[0]?.auth).toMatchObject({ kind: 'key', keyPath: key });
    expect(two.notices).toEqual([`ignored: IdentityFile ${otherKey} (host web1): the relay uses one key per host, ${key}`]);
    const agent = load(['Host web1', `  IdentityFile ${join(dir, 'missing')}`], ['web1'], { env: { SSH_AUTH_SOCK: socket } });
    expect(agent.hosts[0]?.auth).toEqual({ kind: 'agent', socketPath: socket });
    expect(configError(() => load(['Host web1', `  IdentityFile ${join(dir, 'missing')}`], ['web1']))).toContain('no way to log in');
  });

  it('imports the hops a ProxyJump names from the same file, as jump-only hosts', () => {
    const config = load(
      [
        'Host web1',
        '  ProxyJump bastion',
        'Host db1',
        '  ProxyJump ops@bastion:2222',
        'Host bastion',
        '  HostName gw.example.net',
        '  Port 2222',
        '  User ops',
        '  ProxyJump outer',
        'Host *',
        `  IdentityFile ${key}`,
      ],
      ['web1', 'db1'],
    );
    expect(config.hosts.map((h) => [h.name, h.jump?.map((hop) => `${hop.username}@${hop.address}:${hop.port}`)])).toEqual([
      ['web1', ['localme@outer:22', 'ops@gw.example.net:2222']],
      ['db1', ['localme@outer:22', 'ops@gw.example.net:2222']],
    ]);
  });

  it('refuses a ProxyJump loop, a hop whose user or port disagrees with its own block, and a name the relay config already uses', () => {
    expect(configError(() => load(['Host a', '  ProxyJump b', 'Host b', '  ProxyJump a', 'Host *', `  IdentityFile ${key}`], ['a']))).toContain(
      'ProxyJump loops (a > b > a)',
    );
    expect(configError(() => load(['Host a', '  ProxyJump a', 'Host *', `  IdentityFile ${key}`], ['a']))).toContain('ProxyJump loops (a > a)');
    expect(configError(() => load(['Host a', '  ProxyJump root@b', 'Host *', `  IdentityFile ${key}`], ['a']))).toContain('gives another user or port than b');
    const taken = [{ name: 'web1', address: '192.0.2.1', user: 'x', key_path: key }];
    expect(configError(() => load(['Host web1', `  IdentityFile ${key}`], ['web1'], { hosts: taken }))).toContain(
      'the relay config already has a host named "web1"',
    );
  });
});
