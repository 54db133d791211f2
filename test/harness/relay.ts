/**
 * The real relay daemon (`node relay/main.ts`) as a child process, pointed at a test Worker and a
 * test sshd. It runs in an empty temp directory so no developer .env leaks in.
 */
import { testHostConfig } from './host-config.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostConfig } from '../../relay/config.ts';
import { RelayOperations } from '../../relay/operations.ts';
import type { TestSshd } from './sshd.ts';
import { startManaged, type Managed } from './processes.ts';
import { CLI } from './stdio.ts';
import type { TestWorker } from './worker.ts';

export interface TestRelay {
  process: Managed;
  dir: string;
  /** Resolves when the relay has (re)connected and been welcomed `count` times in total. */
  connected(count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface RelayOptions {
  /** Extra or overriding environment variables. */
  env?: Record<string, string>;
  /** A relay config file's content (JSON); written to the temp dir and passed with --config. */
  configFile?: unknown;
  /** Start without waiting for the hub's welcome. */
  noWait?: boolean;
  /** An installed `mcp-remote-exec` executable to run (as a user's PATH would); default: this checkout's build. */
  command?: string;
}

/** The seed's single-host variables for the test sshd. */
export function seedHostEnv(sshd: TestSshd): Record<string, string> {
  return {
    HOST: '127.0.0.1',
    HOST_NAME: 'testhost',
    SSH_PORT: String(sshd.port),
    SSH_USERNAME: sshd.user,
    SSH_KEY: sshd.privateKeyPath,
    SSH_KNOWN_HOSTS: sshd.knownHostsPath,
  };
}

export async function startRelay(worker: TestWorker, sshd: TestSshd | null, options: RelayOptions = {}): Promise<TestRelay> {
  const dir = mkdtempSync(join(tmpdir(), 'mre-relay-'));
  // The built CLI, as users run it (`mcp-remote-exec relay`): tests and benchmarks see the shipped
  // bundle, and its memory figures are not inflated by TypeScript stripping at load.
  const args = options.command === undefined ? [CLI, 'relay'] : ['relay'];
  if (options.configFile !== undefined) {
    const path = join(dir, 'relay.config.json');
    writeFileSync(path, JSON.stringify(options.configFile, null, 2));
    args.push('--config', path);
  }
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    I_ACCEPT_RISKS: 'true',
    RELAY_URL: worker.url,
    RELAY_TOKEN: worker.relayToken,
    RELAY_ID: 'test-relay',
    MCP_REMOTE_EXEC_STATE_DIR: join(dir, 'state'),
    LOG_LEVEL: 'info',
    ...(sshd ? seedHostEnv(sshd) : {}),
    ...options.env,
  };
  const managed = startManaged(options.command ?? process.execPath, args, { cwd: dir, env });
  const relay: TestRelay = {
    process: managed,
    dir,
    async connected(count = 1, timeoutMs = 20_000) {
      const pattern = new RegExp(`(?:"msg":"connected to hub"[\\s\\S]*){${count}}`);
      await managed.waitFor(pattern, timeoutMs);
    },
    async stop() {
      await managed.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (!options.noWait) {
    try {
      await relay.connected();
    } catch (error) {
      await relay.stop();
      throw error;
    }
  }
  return relay;
}

/**
 * The Worker's own watch over running jobs (a JobBook alarm asks the relay for their status, then
 * cleans up): these come on the Worker's schedule, not from the call a test makes, and a job
 * started by an earlier test may be watched at any moment.
 */
const BACKGROUND_OPS = new Set(['job_status', 'job_cleanup']);

/** Requests the relay finished while `action` ran, read from its own log, the Worker's job watch aside. */
export async function relayRequestsDuring(relay: TestRelay, action: () => Promise<unknown>): Promise<number> {
  // The relay logs a request before its answer leaves; a turn of the event loop takes in what it
  // already wrote, so a request answered before the action is not counted as one of the action's.
  await new Promise((resolve) => setImmediate(resolve));
  const mark = relay.process.mark();
  await action();
  // Give a request that did reach the relay time to finish and be logged.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const done = relay.process.outputSince(mark).match(/"msg":"request done"[^\n]*/g) ?? [];
  return done.filter((line) => !BACKGROUND_OPS.has(/"op":"([a-z_]+)"/.exec(line)?.[1] ?? '')).length;
}

/** A host entry of the relay's config for the test sshd, key login, for tests that drive RelayOperations directly. */
export function sshdHostConfig(sshd: TestSshd, name: string, extra: Partial<HostConfig> = {}): HostConfig {
  return testHostConfig({
    name,
    address: sshd.host,
    port: sshd.port,
    username: sshd.user,
    auth: { kind: 'key', privateKey: sshd.privateKey, keyPath: sshd.privateKeyPath },
    ...extra,
  });
}

/** The relay's operations over `hosts` of the test sshd, trusting its key, with state (and recorded keys) in `stateDir`. */
export function sshdOperations(sshd: TestSshd, hosts: HostConfig[], stateDir: string): RelayOperations {
  return new RelayOperations({
    relayId: 'test',
    relayIdExplicit: true,
    hosts,
    knownHostsFiles: [sshd.knownHostsPath],
    recordKnownHostsFile: join(stateDir, 'known_hosts'),
    stateDir,
    source: 'test',
  });
}
