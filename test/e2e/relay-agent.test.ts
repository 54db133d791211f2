/**
 * Logging in through a real OpenSSH ssh-agent: the relay's operations (as the relay daemon and the
 * stdio mode run them) against the test sshd, with hosts that have no key file, only the agent's
 * socket. The agents are started here (`ssh-agent -D -a SOCKET`) and stopped by PID.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relayExec } from '../harness/relay-exec.ts';
import type { Outcome } from '../../shared/errors.ts';
import type { OperationResult } from '../../shared/protocol.ts';
import { loadHostsConfig, type HostConfig, type RelayHostsConfig } from '../../relay/config.ts';
import { RelayOperations } from '../../relay/operations.ts';
import { startManaged, type Managed } from '../harness/processes.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { sshdHostConfig } from '../harness/relay.ts';

let sshd: TestSshd;
let dir: string;
/** Holds the test key. */
let agent: Managed;
let agentSocket: string;
/** Holds no key at all. */
let emptyAgent: Managed;
let emptySocket: string;
const opened: RelayOperations[] = [];

async function startAgent(socket: string): Promise<Managed> {
  const started = startManaged('ssh-agent', ['-D', '-a', socket], {});
  // -D prints the socket's variable and its pid once the socket is listening.
  try {
    await started.waitFor(/Agent pid \d+/, 10_000);
  } catch (error) {
    await started.stop(5_000);
    throw error;
  }
  return started;
}

function host(name: string, socketPath: string): HostConfig {
  return sshdHostConfig(sshd, name, { auth: { kind: 'agent', socketPath }, maxConnections: 2 });
}

function operations(hosts: HostConfig[]): RelayOperations {
  const config: RelayHostsConfig = {
    relayId: 'agent-test',
    relayIdExplicit: true,
    hosts,
    knownHostsFiles: [sshd.knownHostsPath],
    recordKnownHostsFile: join(dir, 'recorded_known_hosts'),
    stateDir: join(dir, 'state'),
    source: 'test',
  };
  const ops = new RelayOperations(config);
  opened.push(ops);
  return ops;
}

/** Run `command` on `hostName`, collecting stdout. */
async function exec(ops: RelayOperations, hostName: string, command: string): Promise<{ outcome: Outcome<OperationResult>; stdout: string }> {
  return relayExec(ops, hostName, command);
}

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'mre-agent-'));
  agentSocket = join(dir, 'agent.sock');
  emptySocket = join(dir, 'empty-agent.sock');
  agent = await startAgent(agentSocket);
  emptyAgent = await startAgent(emptySocket);
  execFileSync('ssh-add', ['-q', sshd.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket }, stdio: ['ignore', 'pipe', 'pipe'] });
});

afterAll(async () => {
  for (const ops of opened) ops.close();
  await agent?.stop(5_000);
  await emptyAgent?.stop(5_000);
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('ssh-agent authentication', () => {
  it('logs in to a host that has no key file, with the key held by the agent, and runs a command', async () => {
    const ops = operations([host('by-agent', agentSocket)]);
    const { outcome, stdout } = await exec(ops, 'by-agent', 'id -un');
    expect(outcome.ok && outcome.value.op === 'exec' && outcome.value.exitCode).toBe(0);
    expect(stdout.trim()).toBe(sshd.user);
  });

  it('stdio mode: with SSH_AUTH_SOCK and no SSH_KEY or SSH_PASSWORD, the agent is used', async () => {
    const config = loadHostsConfig({
      HOST: sshd.host,
      HOST_NAME: 'from-env',
      SSH_PORT: String(sshd.port),
      SSH_USERNAME: sshd.user,
      SSH_AUTH_SOCK: agentSocket,
      SSH_KNOWN_HOSTS: sshd.knownHostsPath,
      MCP_REMOTE_EXEC_STATE_DIR: join(dir, 'state'),
    });
    const [fromEnv] = config.hosts;
    expect(fromEnv?.auth).toEqual({ kind: 'agent', socketPath: agentSocket });
    const ops = operations(config.hosts);
    const { outcome, stdout } = await exec(ops, 'from-env', 'id -un');
    expect(outcome.ok && outcome.value.op === 'exec' && outcome.value.exitCode).toBe(0);
    expect(stdout.trim()).toBe(sshd.user);
  });

  it('says the agent holds no key the host accepts', async () => {
    const ops = operations([host('empty-agent', emptySocket)]);
    const { outcome } = await exec(ops, 'empty-agent', 'id -un');
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.code).toBe('auth_failed');
    expect(outcome.error.message).toContain(`the keys of the ssh-agent at ${emptySocket}`);
  });

  it('says the agent cannot be reached once it has died (stale socket) or stopped (socket removed)', async () => {
    // The last test: it ends the agent holding the key. Killed outright, it leaves its socket behind.
    agent.signal('SIGKILL');
    await agent.exited;
    expect(existsSync(agentSocket)).toBe(true);
    const stale = await exec(operations([host('agent-dead', agentSocket)]), 'agent-dead', 'id -un');
    expect(stale.outcome.ok ? null : stale.outcome.error).toMatchObject({ code: 'auth_failed' });
    expect(stale.outcome.ok ? '' : stale.outcome.error.message).toContain(`Cannot use the ssh-agent at ${agentSocket} to log in as "${sshd.user}"`);
    expect(stale.outcome.ok ? '' : stale.outcome.error.message).toContain('nothing answers on its socket');
    rmSync(agentSocket);
    const gone = await exec(operations([host('agent-gone', agentSocket)]), 'agent-gone', 'id -un');
    expect(gone.outcome.ok ? null : gone.outcome.error).toMatchObject({ code: 'auth_failed' });
    expect(gone.outcome.ok ? '' : gone.outcome.error.message).toContain(
      'its socket no longer exists (the agent has stopped). Is the agent running (ssh-add -l)?',
    );
  });
});
