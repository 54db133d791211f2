/**
 * Peer MCP servers for the comparison benchmark: two SSH MCP servers from npm, installed into
 * bench/.peers (git-ignored) and configured to reach one loopback sshd with key auth, so they
 * can be driven exactly like ours (official SDK client over stdio, one "run a shell command"
 * tool call at a time).
 *
 *   ssh-mcp          (tufantunc/ssh-mcp)          tool `run-command`  { command }
 *   mcp-ssh-manager  (bvisible/mcp-ssh-manager)   tool `ssh_execute`  { server, command }
 *
 * Both are started with `process.execPath` on their JS entry point rather than through the npm
 * bin shims, whose `#!/usr/bin/env node` would pick whatever `node` is first on PATH (Node 20
 * on this machine). Each gets its own HOME (and XDG dirs) under bench/.peers, so neither reads
 * a config of the machine's user nor writes logs, audit trails or known_hosts outside .peers.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PeerServer {
  name: string;
  version: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  execTool: string;
  execArgs(command: string): Record<string, unknown>;
}

export interface PeerSshd {
  port: number;
  user: string;
  privateKeyPath: string;
  password: string;
}

export const PEERS_DIR = join(dirname(fileURLToPath(import.meta.url)), '.peers');

/** Pinned versions (latest on npm when written: `npm view ssh-mcp version` / `npm view mcp-ssh-manager version`). */
export const SSH_MCP_VERSION = '2.11.0';
export const MCP_SSH_MANAGER_VERSION = '3.8.5';

const PINNED: ReadonlyArray<readonly [name: string, version: string]> = [
  ['ssh-mcp', SSH_MCP_VERSION],
  ['mcp-ssh-manager', MCP_SSH_MANAGER_VERSION],
];

/** Name mcp-ssh-manager knows the sshd by (SSH_SERVER_<NAME>_*; the tool takes it lowercased). */
const MANAGER_SERVER_NAME = 'bench';

function packageDir(name: string): string {
  return join(PEERS_DIR, 'node_modules', name);
}

function installedVersion(name: string): string | undefined {
  const manifest = join(packageDir(name), 'package.json');
  if (!existsSync(manifest)) return undefined;
  const parsed: unknown = JSON.parse(readFileSync(manifest, 'utf8'));
  if (typeof parsed === 'object' && parsed !== null && 'version' in parsed && typeof parsed.version === 'string') {
    return parsed.version;
  }
  return undefined;
}

function runNpm(args: string[]): Promise<void> {
  // npm's own shebang is `#!/usr/bin/env node`: putting this Node's folder first on PATH makes
  // npm (and any lifecycle script it runs) use Node 24 rather than the system Node.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
  return new Promise((resolve, reject) => {
    execFile('npm', args, { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`npm ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
        return;
      }
      resolve();
    });
  });
}

/** Install the pinned peers into bench/.peers unless exactly those versions are already there. */
export async function installPeers(): Promise<void> {
  if (PINNED.every(([name, version]) => installedVersion(name) === version)) return;
  mkdirSync(PEERS_DIR, { recursive: true });
  await runNpm(['install', '--prefix', PEERS_DIR, '--no-audit', '--no-fund', ...PINNED.map(([name, version]) => `${name}@${version}`)]);
  for (const [name, version] of PINNED) {
    const got = installedVersion(name);
    if (got !== version) throw new Error(`${name}: expected ${version} in ${PEERS_DIR}, found ${got ?? 'nothing'}`);
  }
}

function ensureDir(path: string, mode = 0o700): string {
  mkdirSync(path, { recursive: true, mode });
  return path;
}

/**
 * ssh-mcp 2.x, "quick start" mode: the whole profile comes from flags (--host/--port/--user/--key),
 * so no config file is needed. Notes:
 * - It first looks for $XDG_CONFIG_HOME/ssh-mcp/config.toml and, if one exists, ignores the
 *   flags; XDG_CONFIG_HOME points at an empty dir under .peers so that never happens.
 * - --group=dev: without it a quick-start profile lands on the `prod` policy tier. `true` and
 *   `echo` classify as read-only, allowed (and never sent for approval) on every tier, so this
 *   only keeps the profile honest about what the host is.
 * - Host keys: its default is trust-on-first-use held in memory for the life of the process,
 *   which accepts a fresh loopback sshd; nothing to configure.
 * - The audit log (on by default, one JSONL record per call) goes to $XDG_DATA_HOME/ssh-mcp.
 */
function sshMcp(sshd: PeerSshd): PeerServer {
  const base = ensureDir(join(PEERS_DIR, 'ssh-mcp'));
  return {
    name: 'ssh-mcp',
    version: installedVersion('ssh-mcp') ?? SSH_MCP_VERSION,
    command: process.execPath,
    args: [
      join(packageDir('ssh-mcp'), 'build', 'index.js'),
      '--host=127.0.0.1',
      `--port=${sshd.port}`,
      `--user=${sshd.user}`,
      `--key=${sshd.privateKeyPath}`,
      '--group=dev',
    ],
    env: {
      HOME: ensureDir(join(base, 'home')),
      XDG_CONFIG_HOME: ensureDir(join(base, 'config')),
      XDG_DATA_HOME: ensureDir(join(base, 'data')),
    },
    execTool: 'run-command',
    execArgs: (command) => ({ command }),
  };
}

/**
 * mcp-ssh-manager 3.8.x: servers come from a dotenv file (SSH_SERVER_<NAME>_HOST/_PORT/_USER/
 * _KEYPATH); SSH_ENV_PATH names it explicitly (otherwise it searches ~/.ssh-manager, the cwd,
 * ~ and its own package dir). One file per sshd port, so concurrent preparations against
 * different sshds do not overwrite each other's. Notes:
 * - Every tool call names the server: `ssh_execute` takes { server, command }.
 * - Host keys: its ssh2 hostVerifier accepts any key (known or not), so nothing to configure;
 *   HOME under .peers keeps it away from the real ~/.ssh/known_hosts.
 * - SSH_LOG_FILE moves its log out of its package dir (it still writes a command history
 *   file, .ssh-command-history.json, into the package dir under .peers).
 */
function mcpSshManager(sshd: PeerSshd): PeerServer {
  const base = ensureDir(join(PEERS_DIR, 'mcp-ssh-manager'));
  const upper = MANAGER_SERVER_NAME.toUpperCase();
  const envPath = join(base, `servers-${sshd.port}.env`);
  writeFileSync(
    envPath,
    [
      '# Generated by bench/peers.ts for the loopback test sshd.',
      `SSH_SERVER_${upper}_HOST=127.0.0.1`,
      `SSH_SERVER_${upper}_PORT=${sshd.port}`,
      `SSH_SERVER_${upper}_USER=${sshd.user}`,
      `SSH_SERVER_${upper}_KEYPATH=${sshd.privateKeyPath}`,
      `SSH_SERVER_${upper}_DESCRIPTION="loopback benchmark sshd"`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return {
    name: 'mcp-ssh-manager',
    version: installedVersion('mcp-ssh-manager') ?? MCP_SSH_MANAGER_VERSION,
    command: process.execPath,
    args: [join(packageDir('mcp-ssh-manager'), 'src', 'index.js')],
    env: {
      HOME: ensureDir(join(base, 'home')),
      SSH_ENV_PATH: envPath,
      SSH_LOG_FILE: join(base, 'ssh-manager.log'),
    },
    execTool: 'ssh_execute',
    execArgs: (command) => ({ server: MANAGER_SERVER_NAME, command }),
  };
}

/**
 * Install the peers (idempotent) and describe how to start each over stdio against `sshd`.
 * Spawn with the SDK's StdioClientTransport({ command, args, env }): it merges `env` over its
 * safe default environment, which carries no SSH_AUTH_SOCK, so both peers use the key file
 * (both would prefer an agent if one were visible).
 */
export async function preparePeers(sshd: PeerSshd): Promise<PeerServer[]> {
  await installPeers();
  return [sshMcp(sshd), mcpSshManager(sshd)];
}
