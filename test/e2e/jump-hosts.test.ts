/**
 * Jump hosts against real OpenSSH: a target sshd in a private network namespace, reachable only
 * through a jump sshd whose sessions live in that namespace (test/harness/jump-sshd.ts). The relay's
 * operations run in-process, as the relay daemon and the stdio mode run them, configured through
 * the real config loader (JSON, ssh_config, SSH_PROXY_JUMP).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relayExec } from '../harness/relay-exec.ts';
import type { Outcome } from '../../shared/errors.ts';
import type { OperationResult } from '../../shared/protocol.ts';
import { loadHostsConfig, type RelayHostsConfig } from '../../relay/config.ts';
import { RelayOperations } from '../../relay/operations.ts';
import { startInetdSshd, startNetns, type InetdSshd, type Netns } from '../harness/jump-sshd.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { startStallingProxy } from '../harness/stalling-proxy.ts';
import { connectStdio, runCliOnce, stdioEnv } from '../harness/stdio.ts';

let netns: Netns;
let target: TestSshd;
let jump: InetdSshd;
let dir: string;
/** A port inside the namespace where nothing listens: a target that is down behind a live jump. */
let downPort: number;
/** Accepts TCP and never says a word. */
let silent: Server;
const silentSockets = new Set<Socket>();
const opened: RelayOperations[] = [];

function knownHostsLine(host: string, port: number, type: string, blob: string): string {
  return `[${host}]:${port} ${type} ${blob}\n`;
}

/** A real key that is not the one the server presents: what known_hosts holds after a host was reinstalled. */
function otherKeyBlob(): string {
  const path = join(dir, `other-${Math.random().toString(36).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').split(/\s+/)[1] ?? '';
}

function targetBlob(): string {
  return readFileSync(join(target.dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(/\s+/)[1] ?? '';
}

function writeKnownHosts(name: string, jumpBlob: string, targetKeyBlob: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    knownHostsLine('127.0.0.1', jump.port, jump.hostKeyType, jumpBlob) + knownHostsLine('127.0.0.1', target.port, target.hostKeyType, targetKeyBlob),
  );
  return path;
}

/** A relay config file with these hosts (auth: the test key), loaded by the real loader. */
function load(name: string, hosts: Record<string, unknown>[], knownHosts: string, extra: Record<string, unknown> = {}): RelayHostsConfig {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ relay_id: name, known_hosts: [knownHosts], hosts, ...extra }));
  return loadHostsConfig({ MCP_REMOTE_EXEC_STATE_DIR: join(dir, `state-${name}`), SSH_KNOWN_HOSTS: join(dir, 'no-default-known-hosts') }, path);
}

function host(name: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, address: '127.0.0.1', port, user: target.user, key_path: target.privateKeyPath, ...extra };
}

function operations(config: RelayHostsConfig): RelayOperations {
  const ops = new RelayOperations(config);
  opened.push(ops);
  return ops;
}

async function exec(ops: RelayOperations, hostName: string, command: string): Promise<{ outcome: Outcome<OperationResult>; stdout: string }> {
  return relayExec(ops, hostName, command, 20_000);
}

function errorOf(outcome: Outcome<OperationResult>): { code: string; message: string } {
  if (outcome.ok) throw new Error(`expected a failure, got ${JSON.stringify(outcome.value)}`);
  return outcome.error;
}

/** A port no one listens on inside the namespace: the target's port + 1 is free there unless the target took it. */
function freeNamespacePort(): number {
  return target.port === 65535 ? target.port - 1 : target.port + 1;
}

let goodKnownHosts: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mre-jump-'));
  netns = await startNetns();
  target = await startSshd({ netns: netns.path });
  downPort = freeNamespacePort();
  // The jump may forward only to the target and to the down port; anything else is refused by its sshd.
  jump = await startInetdSshd({
    netns: netns.path,
    authorizedKeys: join(target.dir, 'authorized_keys'),
    extraConfig: [`PermitOpen 127.0.0.1:${target.port} 127.0.0.1:${downPort}`],
  });
  goodKnownHosts = writeKnownHosts('known_hosts', jump.hostKeyBlob, targetBlob());
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const ops of opened) ops.close();
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await jump?.stop();
  await target?.stop();
  await netns?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a host behind a jump host', () => {
  it('is refused when connected to directly, and reached through the jump', async () => {
    const config = load(
      'basic',
      [host('bastion', jump.port, { jump_only: true }), host('web1', target.port, { jump: ['bastion'] }), host('web1-direct', target.port)],
      goodKnownHosts,
    );
    expect(config.hosts.map((h) => h.name)).toEqual(['web1', 'web1-direct']);
    const ops = operations(config);
    const direct = await exec(ops, 'web1-direct', 'echo reached');
    expect(errorOf(direct.outcome).code).toBe('host_unreachable');
    expect(errorOf(direct.outcome).message).toContain('ECONNREFUSED');
    const before = jump.connections();
    const jumped = await exec(ops, 'web1', 'echo reached-$(id -un)');
    expect(jumped.outcome.ok).toBe(true);
    expect(jumped.stdout.trim()).toBe(`reached-${target.user}`);
    expect(jump.connections()).toBe(before + 1);
  });

  it('shares one jump connection between the hosts behind it, and keeps it when a target behind it is down', async () => {
    const config = load(
      'shared',
      [
        host('bastion', jump.port, { jump_only: true }),
        host('web1', target.port, { jump: ['bastion'] }),
        // The same target under another name: another pool, the same hop.
        host('web1-again', target.port, { proxy_jump: `${target.user}@127.0.0.1:${jump.port}` }),
        host('down1', downPort, { jump: ['bastion'] }),
        host('forbidden', downPort + 1, { jump: ['bastion'] }),
      ],
      goodKnownHosts,
    );
    const ops = operations(config);
    const before = jump.connections();
    expect((await exec(ops, 'web1', 'true')).outcome.ok).toBe(true);
    expect((await exec(ops, 'web1-again', 'true')).outcome.ok).toBe(true);
    expect(jump.connections()).toBe(before + 1);

    const down = errorOf((await exec(ops, 'down1', 'true')).outcome);
    expect(down.code).toBe('host_unreachable');
    expect(down.message).toContain('Could not reach host "down1" through jump host "bastion"');
    expect(down.message).toContain(`could not connect to 127.0.0.1:${downPort}`);

    const forbidden = errorOf((await exec(ops, 'forbidden', 'true')).outcome);
    expect(forbidden.message).toContain('Could not reach host "forbidden" through jump host "bastion"');
    expect(forbidden.message).toContain('refused to forward');

    // The jump connection survived both refusals: the next call goes through the same one.
    const again = await exec(ops, 'web1', 'echo still');
    expect(again.stdout.trim()).toBe('still');
    expect(jump.connections()).toBe(before + 1);
  });

  it('reconnects through a new jump connection after the jump host died under it', async () => {
    const ops = operations(load('dies', [host('bastion', jump.port, { jump_only: true }), host('web1', target.port, { jump: ['bastion'] })], goodKnownHosts));
    expect((await exec(ops, 'web1', 'true')).outcome.ok).toBe(true);
    const before = jump.connections();
    await jump.killSessions();
    // The pooled connection to web1 ran through the dead hop; a call may land on it while it closes
    // (its outcome then says so), never hangs, and the next one goes through a fresh jump connection.
    let last: Outcome<OperationResult> | undefined;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      last = (await exec(ops, 'web1', 'echo back')).outcome;
      if (last.ok) break;
    }
    expect(last?.ok).toBe(true);
    expect(jump.connections()).toBe(before + 1);
  });

  it('fails a host whose forwarding request goes unanswered within its connect timeout, without cutting the other hosts off the same jump', async () => {
    const proxy = await startStallingProxy(jump.port);
    try {
      const knownHosts = join(dir, 'known_hosts_proxy');
      writeFileSync(
        knownHosts,
        knownHostsLine('127.0.0.1', proxy.port, jump.hostKeyType, jump.hostKeyBlob) +
          knownHostsLine('127.0.0.1', target.port, target.hostKeyType, targetBlob()),
      );
      const ops = operations(
        load(
          'stalls',
          [
            host('bastion', proxy.port, { jump_only: true, connect_timeout_seconds: 2 }),
            host('web1', target.port, { jump: ['bastion'] }),
            host('web1-later', target.port, { jump: ['bastion'] }),
          ],
          knownHosts,
        ),
      );
      expect((await exec(ops, 'web1', 'true')).outcome.ok).toBe(true);
      expect(proxy.connections()).toBe(1);
      proxy.stall();
      // The bastion connection is up but answers nothing: the forwarding request for a new host waits out the 2 s.
      const error = errorOf((await exec(ops, 'web1-later', 'true')).outcome);
      expect(error.code).toBe('host_unreachable');
      expect(error.message).toContain('Could not reach host "web1-later" through jump host "bastion"');
      expect(error.message).toContain('did not answer a forwarding request');
      // web1's session still runs through that jump connection: one unanswered request (sshd answers
      // only once its connect to the target ends, minutes for a powered-off one) must not cut it off.
      expect(error.message).toContain('the jump connection stays open for the other hosts');
      proxy.resume();
      const still = await exec(ops, 'web1', 'echo still');
      expect(still.stdout.trim()).toBe('still');
      const after = await exec(ops, 'web1-later', 'echo back');
      expect(after.stdout.trim()).toBe('back');
      expect(proxy.connections()).toBe(1);
    } finally {
      await proxy.stop();
    }
  });

  it('refuses a changed host key on the jump hop, naming the hop', async () => {
    const knownHosts = writeKnownHosts('known_hosts_jump_changed', otherKeyBlob(), targetBlob());
    const ops = operations(load('jump-key', [host('bastion', jump.port, { jump_only: true }), host('web1', target.port, { jump: ['bastion'] })], knownHosts));
    const error = errorOf((await exec(ops, 'web1', 'true')).outcome);
    expect(error.code).toBe('host_key_changed');
    expect(error.message).toContain('Could not reach host "web1" through jump host "bastion"');
    expect(error.message).toContain(`The host key of host "bastion" (127.0.0.1:${jump.port}) has CHANGED`);
    expect(error.message).toContain(jump.hostKeyFingerprint);
  });

  it('refuses a changed host key on the target behind the jump', async () => {
    const knownHosts = writeKnownHosts('known_hosts_target_changed', jump.hostKeyBlob, otherKeyBlob());
    const ops = operations(load('target-key', [host('bastion', jump.port, { jump_only: true }), host('web1', target.port, { jump: ['bastion'] })], knownHosts));
    const error = errorOf((await exec(ops, 'web1', 'true')).outcome);
    expect(error.code).toBe('host_key_changed');
    expect(error.message).toContain(`The host key of host "web1" (127.0.0.1:${target.port}) has CHANGED`);
    expect(error.message).toContain(target.hostKeyFingerprint);
    expect(error.message).toContain('reached through jump host "bastion"');
    // The trust command appends the key the relay was shown through the jump: no scan from here needed.
    expect(error.message).toContain('>> ');
  });

  it('gives up on a jump host that accepts TCP but never speaks SSH, within its connect timeout', async () => {
    const silentPort = (silent.address() as AddressInfo).port;
    const ops = operations(
      load(
        'silent',
        [host('mute', silentPort, { jump_only: true, connect_timeout_seconds: 1 }), host('web1', target.port, { jump: ['mute'] })],
        goodKnownHosts,
      ),
    );
    const error = errorOf((await exec(ops, 'web1', 'true')).outcome);
    expect(error.code).toBe('host_unreachable');
    expect(error.message).toContain('Could not reach host "web1" through jump host "mute"');
    expect(error.message).toContain('did not complete the SSH handshake within 1 s');
  });
});

describe('stdio mode: SSH_PROXY_JUMP', () => {
  it('the mcp-remote-exec command reaches its single host through the jump, logging in to both with SSH_KEY', async () => {
    const session = await connectStdio(
      stdioEnv(target, { HOST_NAME: 'stdio-target', SSH_PROXY_JUMP: `127.0.0.1:${jump.port}`, SSH_KNOWN_HOSTS: goodKnownHosts }),
    );
    try {
      const before = jump.connections();
      const result = CallToolResultSchema.parse(
        await session.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'echo via-stdio', response_format: 'json' } }, CallToolResultSchema),
      );
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toMatchObject({ stdout: 'via-stdio\n', exit_code: 0 });
      // The start-up check already opened the jump connection; the call reused it.
      expect(before).toBeGreaterThan(0);
      expect(jump.connections()).toBe(before);
    } finally {
      await session.close();
    }
  });

  it('refuses to start on a malformed SSH_PROXY_JUMP, saying so', () => {
    const result = runCliOnce([], stdioEnv(target, { SSH_PROXY_JUMP: 'bastion,,inner' }));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('SSH_PROXY_JUMP: a jump list has an empty hop');
  });
});

describe('hosts from ~/.ssh/config', () => {
  it('agrees with ssh: the same file gets both to the target through its ProxyJump, and ProxyCommand is listed, never run', async () => {
    const marker = join(dir, 'proxycommand-ran');
    const sshConfig = join(dir, 'ssh_config');
    writeFileSync(
      sshConfig,
      [
        'Host bastion',
        '  HostName 127.0.0.1',
        `  Port ${jump.port}`,
        'Host web1',
        '  HostName=127.0.0.1',
        `  Port ${target.port}`,
        '  ProxyJump bastion',
        'Host other',
        `  ProxyCommand touch ${marker}`,
        'Match exec "touch ' + marker + '"',
        '  ServerAliveCountMax 5',
        'Host *',
        `  User ${target.user}`,
        `  IdentityFile "${target.privateKeyPath}"`,
        `  UserKnownHostsFile ${goodKnownHosts}`,
        '  StrictHostKeyChecking yes',
        '  ServerAliveInterval 15',
        '  BatchMode yes',
        '',
      ].join('\n'),
    );
    const path = join(dir, 'from-ssh-config.json');
    writeFileSync(path, JSON.stringify({ relay_id: 'sshcfg', ssh_config: sshConfig, hosts_from_ssh_config: ['web*', 'other'] }));
    const config = loadHostsConfig({ MCP_REMOTE_EXEC_STATE_DIR: join(dir, 'state-sshcfg'), SSH_KNOWN_HOSTS: join(dir, 'none') }, path);
    expect(config.hosts.map((h) => h.name)).toEqual(['web1', 'other']);
    expect(config.notices).toContain('ignored: ServerAliveInterval (host web1)');
    expect(config.notices).toContain('ignored: ProxyCommand (host other): never run; the relay connects directly (use ProxyJump)');
    expect(config.notices?.some((notice) => notice.startsWith(`ignored: Match block at ${sshConfig} line 10`))).toBe(true);

    const relay = await exec(operations(config), 'web1', 'echo relay-$(id -un)');
    expect(relay.stdout.trim()).toBe(`relay-${target.user}`);
    expect(existsSync(marker)).toBe(false);
    // OpenSSH's own client, with the same file (it does run Match exec: checked above, before it).
    // Not execFileSync: the jump's listener runs in this process and must keep accepting.
    const viaSsh = await promisify(execFile)('ssh', ['-F', sshConfig, 'web1', 'echo ssh-$(id -un)'], { encoding: 'utf8', timeout: 30_000 });
    expect(viaSsh.stdout.trim()).toBe(`ssh-${target.user}`);
  });
});
