/**
 * The Worker under `wrangler dev` (real workerd), on a free loopback port, with its own persisted
 * state, a fresh admin password and relay token. Secrets reach wrangler through an env file in
 * the temp dir, never on the command line.
 */
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { wranglerDevEnv } from '../../scripts/wrangler-dev-env.ts';
import { hashPassword, sha256Hex } from '../../worker/auth/password-hash.ts';
import { freePort } from './ports.ts';
import { startManaged, type Managed } from './processes.ts';

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);

export interface TestWorker {
  url: string;
  mcpUrl: string;
  port: number;
  /** workerd's DevTools inspector (CPU profiles of the Worker, e.g. for benchmarks). */
  inspectorPort: number;
  adminUser: string;
  adminPassword: string;
  relayToken: string;
  process: Managed;
  dir: string;
  stop(): Promise<void>;
}

export interface WorkerOptions {
  vars?: Record<string, string>;
  /** More secrets for the env file (e.g. OIDC_CLIENT_SECRET): never on the command line. */
  secrets?: Record<string, string>;
  /** A port chosen in advance (an identity provider must know the callback URL before the Worker starts). */
  port?: number;
  /** Keep an existing state directory (to test restarts). */
  stateDir?: string;
}

export function offlineWranglerEnv(): NodeJS.ProcessEnv {
  return {
    ...wranglerDevEnv(),
    // The banner asks the npm registry for wrangler's latest version: tests reach loopback only.
    WRANGLER_HIDE_BANNER: 'true',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
  };
}

export function randomSecret(bytes = 24): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('base64url');
}

/**
 * Ports are picked free and then handed to wrangler, so another process can take one in between
 * (CI runs several stacks at once). wrangler then says so and the start is retried on new ports.
 */
const START_ATTEMPTS = 4;
const PORT_TAKEN = /Address already in use|EADDRINUSE/;

/** statfs's f_type of a tmpfs (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;

/**
 * Where a local Worker keeps its files and Durable Object state: in RAM (/dev/shm) where the
 * machine has it. workerd's local SQLite syncs each commit to disk, and every Durable Object shares
 * one thread locally, so on a disk-backed /tmp each write (a tool call's audit row, for one) held
 * up every other request for about a millisecond: a cost of the local stand, not of the code or of
 * production storage. The state is thrown away after each run anyway.
 */
export function localStateRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return statfsSync('/dev/shm').type === TMPFS_MAGIC ? '/dev/shm' : tmpdir();
  } catch {
    return tmpdir();
  }
}

export async function startWorker(options: WorkerOptions = {}): Promise<TestWorker> {
  const dir = mkdtempSync(join(localStateRoot(), 'mre-worker-'));
  try {
    for (let attempt = 1; ; attempt += 1) {
      const started = await startWrangler(dir, options);
      if (started !== 'port taken') return started;
      // A port chosen by the caller is part of its setup (a callback URL): it cannot be changed here.
      if (options.port !== undefined || attempt === START_ATTEMPTS) throw new Error(`wrangler dev could not listen: a port was taken (${attempt} attempts)`);
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function startWrangler(dir: string, options: WorkerOptions): Promise<TestWorker | 'port taken'> {
  const port = options.port ?? (await freePort());
  const inspectorPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const adminPassword = randomSecret();
  const relayToken = randomSecret(32);
  const envFile = join(dir, 'secrets.env');
  const extraSecrets = Object.entries(options.secrets ?? {})
    .map(([key, value]) => `${key}=${value}\n`)
    .join('');
  writeFileSync(envFile, `ADMIN_PASSWORD_HASH=${await hashPassword(adminPassword)}\nRELAY_TOKEN_HASH=${await sha256Hex(relayToken)}\n${extraSecrets}`);
  chmodSync(envFile, 0o600);
  const vars = { PUBLIC_URL: url, ...options.vars };
  // The package's exports hide bin/; resolve it next to package.json.
  const wrangler = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
  const args = [
    wrangler,
    'dev',
    '--config',
    join(PROJECT_ROOT, 'wrangler.toml'),
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    String(inspectorPort),
    '--persist-to',
    options.stateDir ?? join(dir, 'state'),
    '--env-file',
    envFile,
    '--show-interactive-dev-session=false',
    ...Object.entries(vars).flatMap(([key, value]) => ['--var', `${key}:${value}`]),
  ];
  const managed = startManaged(process.execPath, args, { cwd: PROJECT_ROOT, env: offlineWranglerEnv() });
  try {
    const line = await managed.waitFor(new RegExp(`Ready on http|${PORT_TAKEN.source}`), 90_000);
    if (PORT_TAKEN.test(line)) {
      await managed.stop();
      return 'port taken';
    }
    await waitForHttp(`${url}/healthz`, 30_000);
  } catch (error) {
    await managed.stop();
    throw error;
  }
  return {
    url,
    mcpUrl: `${url}/mcp`,
    port,
    inspectorPort,
    adminUser: 'admin',
    adminPassword,
    relayToken,
    process: managed,
    dir,
    async stop() {
      await managed.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  let lastError = '';
  while (performance.now() < until) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
      lastError = `HTTP ${response.status}`;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${lastError})`);
}
