import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.ts';
import { startRelay } from '../harness/relay.ts';
import type { TestSshd } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

let stack: Stack;
let keysDir: string;
const WRONG_FINGERPRINT = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

function relayConfig(sshd: TestSshd, closedPort: number, strangerKey: string): unknown {
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath };
  return {
    relay_id: 'failures-relay',
    known_hosts: [sshd.knownHostsPath],
    hosts: [
      { name: 'good', ...base, labels: { env: 'test' } },
      { name: 'by-password', address: '127.0.0.1', port: sshd.port, user: sshd.user, password_env: 'TEST_SSH_PASSWORD' },
      { name: 'closed-port', ...base, port: closedPort },
      { name: 'wrong-key', ...base, key_path: strangerKey },
      { name: 'wrong-password', address: '127.0.0.1', port: sshd.port, user: sshd.user, password_env: 'TEST_WRONG_PASSWORD' },
      // known_hosts holds [127.0.0.1]:port, so the same server under another name (127.1 is
      // 127.0.0.1 in inet_aton's short form) is unknown.
      { name: 'unknown-key', ...base, address: '127.1' },
      { name: 'accept-new', ...base, address: 'localhost', strict_host_key_checking: false },
      { name: 'changed-key', ...base, host_key_fingerprints: [WRONG_FINGERPRINT] },
    ],
  };
}

beforeAll(async () => {
  keysDir = mkdtempSync(join(tmpdir(), 'mre-keys-'));
  const strangerKey = join(keysDir, 'stranger');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', strangerKey]);
  const closedPort = await freePort();
  stack = await startStack({
    relay: (sshd) => ({
      configFile: relayConfig(sshd, closedPort, strangerKey),
      env: { TEST_SSH_PASSWORD: sshd.password, TEST_WRONG_PASSWORD: 'not-the-password-123' },
    }),
  });
});

afterAll(async () => {
  await stack?.stop();
  rmSync(keysDir, { recursive: true, force: true });
});

async function run(host: string, command = 'echo ok'): Promise<{ text: string; isError: boolean }> {
  const result = await stack.call('ssh_exec_command', { host, command, timeout: 20 });
  return { text: textOf(result), isError: result.isError === true };
}

describe('host failures, each a distinct readable error', () => {
  it('needs a host name when several hosts are configured', async () => {
    const result = await stack.call('ssh_exec_command', { command: 'true' });
    expect(textOf(result)).toContain('Error [host_ambiguous]');
  });

  it('runs on a key-authenticated host', async () => {
    expect(await run('good')).toEqual({ text: 'STDOUT:\nok\n\n\nSTDERR: (empty)\n\nEXIT CODE: 0', isError: false });
  });

  it('runs on a password-authenticated host', async () => {
    expect((await run('by-password')).text).toContain('EXIT CODE: 0');
  });

  it('reports an unreachable host', async () => {
    const { text, isError } = await run('closed-port');
    expect(isError).toBe(true);
    expect(text).toMatch(/^Error \[host_unreachable\]: Cannot reach host "closed-port" at 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(text).toContain('Check that the host is up');
  });

  it('reports a refused key as an authentication failure', async () => {
    const { text } = await run('wrong-key');
    expect(text).toContain('Error [auth_failed]: Authentication as "mcpre-test" on host "wrong-key"');
  });

  it('reports a wrong password without revealing it', async () => {
    const { text } = await run('wrong-password');
    expect(text).toContain('Error [auth_failed]');
    expect(text).toContain('the configured password');
    expect(text).not.toContain('not-the-password-123');
  });

  it('refuses an unknown host key and says how to trust it, with the fingerprint', async () => {
    const { text } = await run('unknown-key');
    expect(text).toContain('Error [host_key_unknown]');
    expect(text).toContain(stack.sshd.hostKeyFingerprint);
    // The key the relay saw, as a known_hosts line, appended to the relay's own file.
    expect(text).toContain(`printf '%s\\n' '[127.1]:${stack.sshd.port} ssh-ed25519 `);
    expect(text).toContain(`>> ${join(stack.relay.dir, 'state', 'known_hosts')}`);
  });

  it('refuses a key that differs from the pinned fingerprint', async () => {
    const { text } = await run('changed-key');
    expect(text).toContain('Error [host_key_changed]');
    expect(text).toContain(stack.sshd.hostKeyFingerprint);
    expect(text).toContain(WRONG_FINGERPRINT);
  });

  it('accepts and records a new key when strict checking is off', async () => {
    expect((await run('accept-new')).text).toContain('EXIT CODE: 0');
    const recorded = readFileSync(join(stack.relay.dir, 'state', 'known_hosts'), 'utf8');
    expect(recorded).toMatch(new RegExp(`^\\[localhost\\]:${stack.sshd.port} ssh-ed25519 `, 'm'));
  });

  it('lists every host with whether it is reachable and why not', async () => {
    const result = await stack.call('ssh_list_hosts', {});
    const listing = result.structuredContent as { hosts: Array<{ name: string; reachable: boolean | null; detail?: string }> };
    const byName = new Map(listing.hosts.map((host) => [host.name, host]));
    expect(byName.get('good')?.reachable).toBe(true);
    expect(byName.get('closed-port')).toMatchObject({ reachable: false, detail: expect.stringContaining('[host_unreachable]') });
    expect(byName.get('wrong-key')).toMatchObject({ reachable: false, detail: expect.stringContaining('[auth_failed]') });
    expect(byName.get('unknown-key')).toMatchObject({ reachable: false, detail: expect.stringContaining('[host_key_unknown]') });
  });
});

describe('relay failures', () => {
  it('fails at once with "outcome unknown" when the relay dies mid-command, and never re-runs it', async () => {
    const marker = join(stack.sshd.home, `ran-${Date.now()}`);
    const call = stack.call('ssh_exec_command', { host: 'good', command: `echo run >> ${marker}; sleep 4`, timeout: 30 });
    await waitFor(() => readIfExists(marker) !== '', 5000);
    const killedAt = Date.now();
    stack.relay.process.signal('SIGKILL');
    const result = await call;
    expect(Date.now() - killedAt).toBeLessThan(3000);
    expect(textOf(result)).toContain('Error [relay_disconnected]');
    expect(textOf(result)).toContain('outcome is unknown');

    await stack.restartRelay();
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect(readIfExists(marker)).toBe('run\n');
    rmSync(marker, { force: true });
  });

  it('says no relay is connected when it is stopped', async () => {
    await stack.relay.stop();
    const result = await stack.call('ssh_exec_command', { host: 'good', command: 'true' });
    expect(textOf(result)).toContain('Error [relay_not_connected]');
    const listing = await stack.call('ssh_list_hosts', {});
    expect(listing.structuredContent).toMatchObject({ relays: [{ id: 'failures-relay', connected: false }] });
    expect(textOf(listing)).toContain('NOT connected');
    await stack.restartRelay();
  });

  it('finishes commands in flight before exiting on SIGTERM', async () => {
    const call = stack.call('ssh_exec_command', { host: 'good', command: 'sleep 1; echo drained', timeout: 30 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    stack.relay.process.signal('SIGTERM');
    const result = await call;
    expect(textOf(result)).toContain('drained');
    expect(result.structuredContent).toMatchObject({ stdout: 'drained\n', exit_code: 0 });
    expect(await stack.relay.process.exited).toBe(0);
    await stack.restartRelay();
  });
});

describe('relay start-up', () => {
  it('refuses to start until the risks are accepted', async () => {
    const relay = await startRelay(stack.worker, stack.sshd, { env: { I_ACCEPT_RISKS: '' }, noWait: true });
    expect(await relay.process.exited).toBe(2);
    expect(relay.process.output()).toContain('I_ACCEPT_RISKS=true');
    await relay.stop();
  });

  it('starts with no host configured and says how to add one', async () => {
    const relay = await startRelay(stack.worker, null, { noWait: true });
    await relay.process.waitFor(/No SSH host is configured\. Set HOST, SSH_USERNAME and SSH_KEY/, 10_000);
    await relay.stop();
  });

  it('is refused with a wrong token, before any upgrade, and says so', async () => {
    const relay = await startRelay(stack.worker, stack.sshd, { env: { RELAY_TOKEN: 'wrong-token-wrong-token-wrong' }, noWait: true });
    await relay.process.waitFor(/"msg":"hub refused the WebSocket upgrade","status":401/, 10_000);
    await relay.stop();
  });

  it('names a missing key file at start-up', async () => {
    const relay = await startRelay(stack.worker, stack.sshd, { env: { SSH_KEY: '/nonexistent/key' }, noWait: true });
    expect(await relay.process.exited).toBe(2);
    expect(relay.process.output()).toContain('SSH key file not found: /nonexistent/key');
    await relay.stop();
  });
});

function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
