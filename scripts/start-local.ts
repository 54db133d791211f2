/**
 * `npm start`: the local mode on one machine. Runs the Worker under `wrangler dev` (Durable
 * Objects and KV persisted in .local/state) and the relay connected to it, both on loopback.
 * On first start it creates the admin account and prints its password once.
 *
 * Settings: PORT (default 8787); LOCAL_STATE_DIR (default .local: the secrets in
 * .local/secrets.env and .local/relay-token, the Worker's persisted state in .local/state); hosts
 * for the relay as in relay/relay-command.ts (HOST, SSH_* in the environment or .env, or
 * MCP_REMOTE_EXEC_CONFIG=relay.config.json); I_ACCEPT_RISKS=true. The relay keeps its own state
 * (its known_hosts) where it always does, ~/.local/state/mcp-remote-exec (MCP_REMOTE_EXEC_STATE_DIR).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { loadEnvironment } from '../relay/config.ts';
import { risksAccepted, RISK_NOTICE } from '../relay/risk.ts';
import { ensureLocalSecrets } from './local-secrets.ts';
import { wranglerDevEnv } from './wrangler-dev-env.ts';

const root = resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const env = loadEnvironment(process.env, join(root, '.env'));
const port = Number(env.PORT ?? 8787);
const stateDir = resolve(root, env.LOCAL_STATE_DIR ?? '.local');
const publicUrl = `http://127.0.0.1:${port}`;
const children: ChildProcess[] = [];

function prefixed(child: ChildProcess, label: string, onLine?: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        process.stderr.write(`[${label}] ${line}\n`);
        onLine?.(line);
      }
    });
  }
}

function stopAll(code: number): void {
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
  }
  setTimeout(() => process.exit(code), 3000).unref();
  Promise.all(children.map((child) => new Promise((done) => (child.exitCode !== null ? done(null) : child.once('exit', done))))).then(() => process.exit(code));
}

async function main(): Promise<void> {
  const secrets = await ensureLocalSecrets(stateDir);
  const wrangler = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
  const worker = spawn(
    process.execPath,
    [
      wrangler,
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--persist-to',
      join(stateDir, 'state'),
      '--env-file',
      secrets.envFile,
      '--var',
      `PUBLIC_URL:${publicUrl}`,
      '--show-interactive-dev-session=false',
    ],
    {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: wranglerDevEnv(),
    },
  );
  children.push(worker);
  worker.once('exit', (code) => {
    process.stderr.write(`[start] the Worker exited (${code ?? 'signal'}).\n`);
    stopAll(code ?? 1);
  });
  const ready = new Promise<void>((done) => prefixed(worker, 'worker', (line) => line.includes('Ready on') && done()));
  await ready;

  let relayNote: string;
  if (!risksAccepted(env)) {
    relayNote = `The relay was NOT started. ${RISK_NOTICE}`;
  } else {
    const relay = spawn(process.execPath, [join(root, 'relay', 'main.ts')], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...env, RELAY_URL: publicUrl, RELAY_TOKEN_FILE: secrets.relayTokenFile, RELAY_TOKEN: '' },
    });
    children.push(relay);
    prefixed(relay, 'relay');
    relay.once('exit', (code) => process.stderr.write(`[start] the relay exited (${code ?? 'signal'}); the Worker keeps running.\n`));
    relayNote = 'The relay is connecting (see [relay] lines).';
  }

  const signIn = secrets.newAdminPassword
    ? `Sign in as "admin" with the password ${secrets.newAdminPassword}\n  (shown only this once; only its hash is stored. To make a new one, delete ${join(stateDir, 'secrets.env')} and restart.)`
    : `Sign in as "admin" with the password printed on the first start (delete ${join(stateDir, 'secrets.env')} and restart for a new one).`;
  process.stdout.write(
    `\nmcp-remote-exec is running locally.\n\n` +
      `  MCP URL:      ${publicUrl}/mcp\n` +
      `  ${signIn}\n` +
      `  Claude Code:  claude mcp add --transport http mcp-remote-exec ${publicUrl}/mcp\n` +
      `  Team members: MCP_REMOTE_EXEC_ADMIN_PASSWORD=… npx mcp-remote-exec admin --url ${publicUrl} users add NAME\n` +
      `                (then grant them a role: README, "Team access")\n` +
      `  ${relayNote}\n\nPress Ctrl+C to stop.\n\n`,
  );
}

process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));
main().catch((error: unknown) => {
  process.stderr.write(`[start] ${error instanceof Error ? error.message : String(error)}\n`);
  stopAll(1);
});
