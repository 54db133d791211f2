/**
 * Where the relay learns its hosts: either the seed's environment variables for one host (HOST,
 * SSH_PORT, SSH_USERNAME, SSH_PASSWORD or SSH_KEY, SSH_STRICT_HOST_KEY_CHECKING, from the
 * environment or a .env file), or a JSON config file listing several. Parsed once, here, with
 * messages that say what to set and where. Secrets are resolved to values here and never logged.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import ssh2 from 'ssh2';
import { z } from 'zod';

export const DEFAULT_SSH_PORT = 22;
/** OpenSSH's default MaxSessions: channels one connection may have open at once. */
export const DEFAULT_MAX_SESSIONS = 10;
export const DEFAULT_MAX_CONNECTIONS = 4;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

import { ConfigError } from './config-error.ts';
import { certificatePathFor, checkCertificateAtLoad } from './ssh-certificate.ts';
import { jumpChain, MAX_JUMP_HOPS, parseProxyJump, resolveJumpSpec, stdioJumpHops } from './jump-hosts.ts';
import { importSshConfig } from './ssh-config-import.ts';
import { checkSudoPassword } from './sudo.ts';
import { COMMAND_CLASSES, type CommandClass } from '../shared/shell/command-class.ts';

export { ConfigError };

/**
 * Stdio mode only: command classes that wait for the local user's confirmation (asked through the
 * client's elicitation), and what happens when the client cannot be asked: `refuse` (the default)
 * or `run`. As in the Worker's command rules, `privileged` also covers `unknown`. The relay daemon
 * ignores it: there the Worker's command rules decide.
 */
export interface ConfirmRule {
  classes: CommandClass[];
  fallback: 'refuse' | 'run';
}

export const CONFIRM_FALLBACKS = ['refuse', 'run'] as const;

/**
 * How the relay logs in to a host. `agent`: the keys of a running ssh-agent, reached through its
 * UNIX socket; the keys never leave the agent, which signs for us.
 */
export type SshAuth =
  | {
      kind: 'key';
      privateKey: Buffer;
      keyPath: string;
      passphrase?: string;
      /** An OpenSSH user certificate for the key, re-read at each connection (relay/ssh-certificate.ts). */
      certificatePath?: string;
    }
  | { kind: 'password'; password: string }
  | { kind: 'agent'; socketPath: string };

export interface HostConfig {
  name: string;
  address: string;
  port: number;
  username: string;
  auth: SshAuth;
  strictHostKeyChecking: boolean;
  hostKeyFingerprints: string[];
  labels: Record<string, string>;
  /** Narrowed here, whatever the Worker's policy says: no commands, no writes. */
  readOnly: boolean;
  /** A Proxmox VE host: the pct/qm tools work on it. */
  proxmox: boolean;
  /**
   * Start the next login shell ahead of each plain command (ssh-pool.ts, a ready shell). Off: every
   * command is its own `sh -c` on a fresh channel, as host-side process accounting (auditd's execve
   * records) shows commands: a ready shell reads its command from stdin, so no argv carries it.
   */
  readyShell: boolean;
  maxSessions: number;
  maxConnections: number;
  connectTimeoutMs: number;
  /** Where background jobs keep their directories on the host (`jobs_dir`); DEFAULT_JOBS_DIR when unset. */
  jobsDir?: string;
  /** Jobs that may run at once on the host (`max_jobs`, stdio JOBS_PER_HOST); DEFAULT_JOBS_PER_HOST when unset. */
  maxJobs?: number;
  /** `sudo: true` on exec feeds sudo this password (`sudo_password_env`/`_file`, stdio SSH_SUDO_PASSWORD); without it, `sudo -n`. Never logged. */
  sudoPassword?: string;
  /** Stdio mode: classes that need the local user's confirmation (`confirm`, `confirm_fallback`; stdio CONFIRM_CLASSES, CONFIRM_FALLBACK). */
  confirm?: ConfirmRule;
  // --- jump hosts and ssh_config (relay/jump-hosts.ts, relay/ssh-config-import.ts) ---
  /** Hosts to connect through, first hop first (`jump`, `proxy_jump`, ssh_config's ProxyJump, stdio SSH_PROXY_JUMP). */
  jump?: HostConfig[];
  /** This host's own known_hosts files (ssh_config's UserKnownHostsFile), read instead of the relay's list. */
  knownHostsFiles?: string[];
}

export interface RelayHostsConfig {
  relayId: string;
  /** Whether relayId was set (RELAY_ID or relay_id) rather than taken from the machine's name. */
  relayIdExplicit: boolean;
  hosts: HostConfig[];
  /** known_hosts files read when verifying host keys, in order. */
  knownHostsFiles: string[];
  /** Where accept-new (SSH_STRICT_HOST_KEY_CHECKING=false) records newly seen keys. */
  recordKnownHostsFile: string;
  /** The relay's own state: recorded host keys, unfinished writes. */
  stateDir: string;
  /** Describes where the hosts came from, for the startup log. */
  source: string;
  /** Said once at startup: ssh_config directives the relay does not use, and the like. */
  notices?: string[];
}

const hostName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'host names use letters, digits, ".", "_" and "-"');

const hostEntry = z
  .object({
    name: hostName,
    address: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(DEFAULT_SSH_PORT),
    user: z.string().min(1),
    key_path: z.string().min(1).optional(),
    key_passphrase_env: z.string().min(1).optional(),
    /** An OpenSSH user certificate for key_path; default: key_path + "-cert.pub" when that file exists. */
    certificate_path: z.string().min(1).max(4096).optional(),
    password_env: z.string().min(1).optional(),
    password_file: z.string().min(1).optional(),
    /** true: the agent at the relay's SSH_AUTH_SOCK; a string: the agent's socket path. */
    agent: z.union([z.boolean(), z.string().min(1).max(4096)]).optional(),
    sudo_password_env: z.string().min(1).optional(),
    sudo_password_file: z.string().min(1).optional(),
    strict_host_key_checking: z.boolean().default(true),
    host_key_fingerprints: z
      .array(z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'fingerprints look like SHA256:<43 base64 characters>, as ssh-keygen -lf prints'))
      .default([]),
    labels: z.record(z.string().max(64), z.string().max(256)).default({}),
    read_only: z.boolean().default(false),
    proxmox: z.boolean().default(false),
    ready_shell: z.boolean().default(true),
    max_sessions: z.number().int().min(2).max(100).default(DEFAULT_MAX_SESSIONS),
    max_connections: z.number().int().min(1).max(32).default(DEFAULT_MAX_CONNECTIONS),
    connect_timeout_seconds: z
      .number()
      .positive()
      .max(120)
      .default(DEFAULT_CONNECT_TIMEOUT_MS / 1000),
    jobs_dir: z
      .string()
      .max(1024)
      .refine(isJobsDir, 'jobs_dir is an absolute path or one under ~/, without blanks or ".." (default ~/.mcp-remote-exec/jobs)')
      .optional(),
    max_jobs: z.number().int().min(1).max(10_000).optional(),
    confirm: z.array(z.enum(COMMAND_CLASSES)).max(COMMAND_CLASSES.length).optional(),
    confirm_fallback: z.enum(CONFIRM_FALLBACKS).optional(),
    // --- jump hosts and ssh_config (relay/jump-hosts.ts) ---
    /** Names of other hosts in this config to connect through, first hop first. */
    jump: z.array(hostName).min(1).max(MAX_JUMP_HOPS).optional(),
    /** The same in OpenSSH's syntax: "user@host:port,host2"; each hop must be a host in this config. */
    proxy_jump: z.string().min(1).max(4096).optional(),
    /** Only a hop for other hosts: not offered for commands. */
    jump_only: z.boolean().default(false),
    /** This host's own known_hosts files, read instead of the relay's list (the relay's record file is still read). */
    known_hosts: z.array(z.string().min(1).max(4096)).min(1).max(16).optional(),
  })
  .strict();

export type HostEntry = z.input<typeof hostEntry>;

const configFile = z
  .object({
    relay_id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .optional(),
    known_hosts: z.array(z.string()).optional(),
    /** For every host that does not set its own (stdio mode). */
    confirm: z.array(z.enum(COMMAND_CLASSES)).max(COMMAND_CLASSES.length).optional(),
    confirm_fallback: z.enum(CONFIRM_FALLBACKS).optional(),
    hosts: z.array(hostEntry).default([]),
    // --- ssh_config import (relay/ssh-config-import.ts) ---
    /** An OpenSSH client config file to take hosts from (e.g. "~/.ssh/config"). */
    ssh_config: z.string().min(1).max(4096).optional(),
    /** Which of its Host aliases become relay hosts: names, or patterns with * and ?. */
    hosts_from_ssh_config: z.array(z.string().min(1).max(256)).min(1).max(256).optional(),
  })
  .strict();

export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return path;
}

/** The relay's own state (recorded host keys). */
export function stateDir(env: NodeJS.ProcessEnv): string {
  const explicit = env.MCP_REMOTE_EXEC_STATE_DIR;
  if (explicit) return resolve(expandHome(explicit));
  const xdg = env.XDG_STATE_HOME;
  return join(xdg ? xdg : join(homedir(), '.local', 'state'), 'mcp-remote-exec');
}

/**
 * Merge a .env file under the process environment (real environment variables win, as with
 * dotenv). A missing file is fine; the seed treated .env as optional too.
 */
export function loadEnvironment(env: NodeJS.ProcessEnv, envFile: string): NodeJS.ProcessEnv {
  if (!existsSync(envFile)) return env;
  const fromFile = parseEnv(readFileSync(envFile, 'utf8'));
  return { ...fromFile, ...env };
}

function readKey(path: string, where: string): Buffer {
  const full = resolve(expandHome(path));
  if (!existsSync(full)) {
    throw new ConfigError(
      `SSH key file not found: ${full} (${where}). Point it at an existing private key file (absolute path, or relative to ${process.cwd()}).`,
    );
  }
  try {
    return readFileSync(full);
  } catch (error) {
    throw new ConfigError(
      `SSH key file ${full} cannot be read (${where}): ${error instanceof Error ? error.message : String(error)}. Check its permissions (typically 600, owned by the relay's user).`,
    );
  }
}

/**
 * The agent's socket, checked now so a stopped agent or a wrong path is a startup error naming it.
 * Only the path is used and reported: nothing is read from the socket here.
 */
function agentSocket(path: string, where: string): string {
  const full = resolve(expandHome(path));
  let isSocket: boolean;
  try {
    isSocket = statSync(full).isSocket();
  } catch {
    throw new ConfigError(
      `ssh-agent socket not found: ${full} (${where}). Start the agent (eval "$(ssh-agent)", then ssh-add) or point it at the agent's socket.`,
    );
  }
  if (!isSocket) throw new ConfigError(`${full} (${where}) is not a UNIX socket, so not an ssh-agent's socket.`);
  return full;
}

/** PEM marks encryption in its header; OpenSSH's format names its KDF ("bcrypt") inside the base64 body. */
function looksEncrypted(key: Buffer): boolean {
  const text = key.toString('latin1');
  if (/ENCRYPTED/.test(text)) return true;
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END/.exec(text)?.[1];
  return body !== undefined && Buffer.from(body.replace(/\s+/g, ''), 'base64').subarray(0, 64).includes('bcrypt');
}

/**
 * Load the key now, so a wrong format or a missing passphrase is a startup error that names the
 * file, not a failure on the first command.
 */
function checkKey(key: Buffer, passphrase: string | undefined, path: string, where: string): void {
  const parsed = ssh2.utils.parseKey(key, passphrase);
  if (parsed instanceof Error) {
    const hint =
      looksEncrypted(key) && !passphrase
        ? 'The key is protected by a passphrase: give it in SSH_KEY_PASSPHRASE (or key_passphrase_env in the config file).'
        : 'Supported: OpenSSH ("BEGIN OPENSSH PRIVATE KEY") and PEM private keys of type Ed25519, ECDSA (P-256/384/521) and RSA. Check it with: ssh-keygen -y -f ' +
          path;
    throw new ConfigError(`SSH key ${path} (${where}) could not be loaded: ${parsed.message}. ${hint}`);
  }
}

/** A key login with its certificate (the given one, or `<key>-cert.pub` beside the key), checked now. */
function withCertificate(auth: Extract<SshAuth, { kind: 'key' }>, explicit: string | undefined, where: string): SshAuth {
  const certificatePath = certificatePathFor(resolve(expandHome(auth.keyPath)), explicit);
  if (certificatePath === undefined) return auth;
  checkCertificateAtLoad(certificatePath, auth.privateKey, auth.passphrase, where);
  return { ...auth, certificatePath };
}

function parseBoolean(value: string | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  const lowered = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(lowered)) return true;
  if (['false', '0', 'no', 'off'].includes(lowered)) return false;
  throw new ConfigError(`${name} must be true or false, not "${value}".`);
}

function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_SSH_PORT;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`SSH_PORT must be a port number (1-65535), not "${value}".`);
  return port;
}

function knownHostsDefaults(env: NodeJS.ProcessEnv, extra: string[] = []): { read: string[]; record: string } {
  const record = join(stateDir(env), 'known_hosts');
  const fromEnv = env.SSH_KNOWN_HOSTS ? env.SSH_KNOWN_HOSTS.split(':').filter(Boolean) : [join(homedir(), '.ssh', 'known_hosts')];
  const read = [...fromEnv, ...extra].map((path) => resolve(expandHome(path)));
  return { read: [...read, record], record };
}

/** One host from the seed's variables. Returns null when HOST is not set. */
function hostFromSeedVariables(env: NodeJS.ProcessEnv): HostConfig | null {
  const address = env.HOST?.trim();
  if (!address) return null;
  const username = env.SSH_USERNAME?.trim();
  if (!username) throw new ConfigError('HOST is set but SSH_USERNAME is not. Set SSH_USERNAME to the user to log in as.');
  let auth: SshAuth;
  if (env.SSH_KEY) {
    const passphrase = env.SSH_KEY_PASSPHRASE || undefined;
    const privateKey = readKey(env.SSH_KEY, 'SSH_KEY');
    checkKey(privateKey, passphrase, env.SSH_KEY, 'SSH_KEY');
    auth = withCertificate(
      { kind: 'key', privateKey, keyPath: env.SSH_KEY, ...(passphrase ? { passphrase } : {}) },
      env.SSH_CERT ? resolve(expandHome(env.SSH_CERT)) : undefined,
      `host "${env.HOST_NAME?.trim() || address}" (SSH_KEY${env.SSH_CERT ? ', SSH_CERT' : ''})`,
    );
  } else if (env.SSH_CERT) {
    throw new ConfigError('SSH_CERT is set but SSH_KEY is not. A certificate logs in together with its private key: set SSH_KEY to the key.');
  } else if (env.SSH_PASSWORD) {
    auth = { kind: 'password', password: env.SSH_PASSWORD };
  } else if (env.SSH_AUTH_SOCK) {
    // As with ssh: with no key or password given, a running agent's keys are used.
    auth = { kind: 'agent', socketPath: agentSocket(env.SSH_AUTH_SOCK, 'SSH_AUTH_SOCK') };
  } else {
    throw new ConfigError(
      'HOST is set but neither SSH_KEY (path to a private key) nor SSH_PASSWORD is, and no ssh-agent is running (SSH_AUTH_SOCK is not set). Set one of them.',
    );
  }
  const host: HostConfig = {
    name: env.HOST_NAME?.trim() || address,
    address,
    port: parsePort(env.SSH_PORT),
    username,
    auth,
    strictHostKeyChecking: parseBoolean(env.SSH_STRICT_HOST_KEY_CHECKING, 'SSH_STRICT_HOST_KEY_CHECKING', true),
    hostKeyFingerprints: env.SSH_HOST_KEY_FINGERPRINT ? [env.SSH_HOST_KEY_FINGERPRINT.trim()] : [],
    labels: {},
    readOnly: false,
    // As in the seed: ENABLE_PROXMOX=true says the one host is a Proxmox VE server.
    proxmox: parseBoolean(env.ENABLE_PROXMOX, 'ENABLE_PROXMOX', false),
    readyShell: parseBoolean(env.SSH_READY_SHELL, 'SSH_READY_SHELL', true),
    maxSessions: DEFAULT_MAX_SESSIONS,
    maxConnections: DEFAULT_MAX_CONNECTIONS,
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    ...jobSettingsFromEnv(env),
    ...confirmFromEnv(env),
    ...sudoPasswordSetting(env.SSH_SUDO_PASSWORD || undefined, 'SSH_SUDO_PASSWORD'),
  };
  // The stdio mode's one host may sit behind jump hosts, reached with the same credentials.
  const jumps = env.SSH_PROXY_JUMP?.trim();
  if (jumps) {
    const hops = stdioJumpHops(jumps, host);
    if (hops.length > 0) host.jump = hops;
  }
  return host;
}

/** A sudo password, checked so the wrapper can carry it as one line (relay/sudo.ts). */
function sudoPasswordSetting(password: string | undefined, where: string): Pick<HostConfig, 'sudoPassword'> {
  if (password === undefined) return {};
  const problem = checkSudoPassword(password);
  if (problem) throw new ConfigError(`The sudo password (${where}) ${problem}.`);
  return { sudoPassword: password };
}

function sudoPasswordOf(entry: z.infer<typeof hostEntry>, env: NodeJS.ProcessEnv, where: string): Pick<HostConfig, 'sudoPassword'> {
  if (entry.sudo_password_env !== undefined && entry.sudo_password_file !== undefined)
    throw new ConfigError(`${where}: give at most one of sudo_password_env or sudo_password_file.`);
  if (entry.sudo_password_env !== undefined) {
    const password = env[entry.sudo_password_env];
    if (!password) throw new ConfigError(`${where}: sudo_password_env names ${entry.sudo_password_env}, which is not set.`);
    return sudoPasswordSetting(password, `${where}, sudo_password_env`);
  }
  if (entry.sudo_password_file !== undefined) {
    const path = resolve(expandHome(entry.sudo_password_file));
    if (!existsSync(path)) throw new ConfigError(`${where}: sudo_password_file ${path} does not exist.`);
    return sudoPasswordSetting(readFileSync(path, 'utf8').replace(/\r?\n$/, ''), `${where}, sudo_password_file`);
  }
  return {};
}

/** CONFIRM_CLASSES (comma-separated classes) and CONFIRM_FALLBACK, as the config file's confirm and confirm_fallback. */
function confirmFromEnv(env: NodeJS.ProcessEnv): Pick<HostConfig, 'confirm'> {
  const listed = env.CONFIRM_CLASSES?.trim();
  const fallback = env.CONFIRM_FALLBACK?.trim();
  const classes = listed ? listed.split(',').map((entry) => entry.trim().toLowerCase()) : [];
  const unknown = classes.filter((entry) => !(COMMAND_CLASSES as readonly string[]).includes(entry));
  if (unknown.length > 0) throw new ConfigError(`CONFIRM_CLASSES lists ${unknown.join(', ')}; use a comma-separated list of ${COMMAND_CLASSES.join(', ')}.`);
  if (fallback && !(CONFIRM_FALLBACKS as readonly string[]).includes(fallback))
    throw new ConfigError(`CONFIRM_FALLBACK must be ${CONFIRM_FALLBACKS.join(' or ')}, not "${fallback}".`);
  return confirmRule(classes as CommandClass[], fallback as ConfirmRule['fallback'] | undefined);
}

function confirmRule(classes: CommandClass[] | undefined, fallback: ConfirmRule['fallback'] | undefined): Pick<HostConfig, 'confirm'> {
  if (!classes || classes.length === 0) return {};
  return { confirm: { classes: [...new Set(classes)], fallback: fallback ?? 'refuse' } };
}

/** Same rule as relay/host-jobs.ts checkJobsDir (kept here so config parsing needs no shell code). */
function isJobsDir(dir: string): boolean {
  return /^(~|~\/[^\s]*|\/[^\s]*)$/.test(dir) && !/(^|\/)\.\.(\/|$)/.test(dir);
}

/** The stdio mode's job settings: JOBS_PER_HOST and JOBS_DIR, as the config file's max_jobs and jobs_dir. */
function jobSettingsFromEnv(env: NodeJS.ProcessEnv): Pick<HostConfig, 'jobsDir' | 'maxJobs'> {
  const settings: Pick<HostConfig, 'jobsDir' | 'maxJobs'> = {};
  const max = env.JOBS_PER_HOST?.trim();
  if (max) {
    const value = Number(max);
    if (!Number.isInteger(value) || value < 1 || value > 10_000) throw new ConfigError(`JOBS_PER_HOST must be a whole number from 1 to 10000, not "${max}".`);
    settings.maxJobs = value;
  }
  const dir = env.JOBS_DIR?.trim();
  if (dir) {
    if (!isJobsDir(dir)) throw new ConfigError(`JOBS_DIR must be an absolute path or one under ~/, without blanks or "..", not "${dir}".`);
    settings.jobsDir = dir;
  }
  return settings;
}

function hostFromEntry(
  entry: z.infer<typeof hostEntry>,
  env: NodeJS.ProcessEnv,
  file: string,
  global: Pick<z.infer<typeof configFile>, 'confirm' | 'confirm_fallback'>,
): HostConfig {
  const where = `host "${entry.name}" in ${file}`;
  const agent = entry.agent === false ? undefined : entry.agent;
  const sources = [entry.key_path, entry.password_env, entry.password_file, agent].filter((value) => value !== undefined);
  if (sources.length !== 1) {
    throw new ConfigError(`${where}: give exactly one way to log in: key_path, password_env, password_file or agent.`);
  }
  if (entry.certificate_path !== undefined && entry.key_path === undefined) {
    throw new ConfigError(`${where}: certificate_path is for key_path: a certificate logs in together with its private key.`);
  }
  if (entry.key_passphrase_env !== undefined && entry.key_path === undefined) {
    throw new ConfigError(`${where}: key_passphrase_env is for key_path; it does nothing with ${agent !== undefined ? 'agent' : 'a password'}.`);
  }
  let auth: SshAuth;
  if (agent === true) {
    const socket = env.SSH_AUTH_SOCK;
    if (!socket)
      throw new ConfigError(
        `${where}: agent is true but SSH_AUTH_SOCK is not set in the relay's environment. Start an ssh-agent, or give the socket's path as agent.`,
      );
    auth = { kind: 'agent', socketPath: agentSocket(socket, `${where}, from SSH_AUTH_SOCK`) };
  } else if (agent !== undefined) {
    auth = { kind: 'agent', socketPath: agentSocket(isAbsolute(expandHome(agent)) ? agent : resolve(file, '..', agent), where) };
  } else if (entry.key_path !== undefined) {
    const passphrase = entry.key_passphrase_env ? env[entry.key_passphrase_env] : undefined;
    if (entry.key_passphrase_env && !passphrase) throw new ConfigError(`${where}: key_passphrase_env names ${entry.key_passphrase_env}, which is not set.`);
    const keyPath = isAbsolute(expandHome(entry.key_path)) ? entry.key_path : resolve(file, '..', entry.key_path);
    const privateKey = readKey(keyPath, where);
    checkKey(privateKey, passphrase, keyPath, where);
    const certificate =
      entry.certificate_path &&
      (isAbsolute(expandHome(entry.certificate_path)) ? resolve(expandHome(entry.certificate_path)) : resolve(file, '..', entry.certificate_path));
    auth = withCertificate({ kind: 'key', privateKey, keyPath, ...(passphrase ? { passphrase } : {}) }, certificate, where);
  } else if (entry.password_env !== undefined) {
    const password = env[entry.password_env];
    if (!password) throw new ConfigError(`${where}: password_env names ${entry.password_env}, which is not set.`);
    auth = { kind: 'password', password };
  } else {
    const path = resolve(expandHome(entry.password_file ?? ''));
    if (!existsSync(path)) throw new ConfigError(`${where}: password_file ${path} does not exist.`);
    auth = { kind: 'password', password: readFileSync(path, 'utf8').replace(/\r?\n$/, '') };
  }
  return {
    name: entry.name,
    address: entry.address,
    port: entry.port,
    username: entry.user,
    auth,
    strictHostKeyChecking: entry.strict_host_key_checking,
    hostKeyFingerprints: entry.host_key_fingerprints,
    labels: entry.labels,
    readOnly: entry.read_only,
    proxmox: entry.proxmox,
    readyShell: entry.ready_shell,
    maxSessions: entry.max_sessions,
    maxConnections: entry.max_connections,
    connectTimeoutMs: entry.connect_timeout_seconds * 1000,
    ...(entry.jobs_dir !== undefined ? { jobsDir: entry.jobs_dir } : {}),
    ...(entry.max_jobs !== undefined ? { maxJobs: entry.max_jobs } : {}),
    ...(entry.known_hosts !== undefined
      ? { knownHostsFiles: entry.known_hosts.map((path) => (isAbsolute(expandHome(path)) ? resolve(expandHome(path)) : resolve(file, '..', path))) }
      : {}),
    // A host's own list replaces the global one (an empty list: nothing to confirm on this host).
    ...confirmRule(entry.confirm ?? global.confirm, entry.confirm_fallback ?? global.confirm_fallback),
    ...sudoPasswordOf(entry, env, where),
  };
}

/**
 * Resolve every host's `jump` or `proxy_jump` to its chain of hop hosts (relay/jump-hosts.ts).
 * Jump-only hosts stay in the list returned, marked by their entry, for the caller to leave out.
 */
function withJumps<T extends { entry: z.infer<typeof hostEntry>; file: string; host: HostConfig }>(all: T[]): T[] {
  const byName = new Map(all.map(({ host }) => [host.name, host] as const));
  const where = (name: string): string => {
    const found = all.find(({ host }) => host.name === name);
    return `host "${name}" in ${found?.file ?? 'the config'}`;
  };
  const jumpNames = new Map<string, string[]>();
  for (const { entry } of all) {
    if (entry.jump !== undefined && entry.proxy_jump !== undefined) throw new ConfigError(`${where(entry.name)}: give jump or proxy_jump, not both.`);
    if (entry.jump !== undefined) jumpNames.set(entry.name, entry.jump);
    if (entry.proxy_jump !== undefined) {
      const specs = parseProxyJump(entry.proxy_jump, `${where(entry.name)}, proxy_jump`);
      jumpNames.set(
        entry.name,
        specs.map((spec) => resolveJumpSpec(spec, byName, `${where(entry.name)}, proxy_jump`)),
      );
    }
  }
  const chains = new Map(all.map(({ host }) => [host.name, jumpChain(host.name, jumpNames, byName, where)] as const));
  for (const { host } of all) {
    const chain = chains.get(host.name) ?? [];
    if (chain.length > 0) host.jump = chain;
  }
  return all;
}

/**
 * Load hosts from `configPath` when given (or MCP_REMOTE_EXEC_CONFIG), else from the seed's
 * variables. No host at all is not an error: the relay starts and says how to add one.
 */
export function loadHostsConfig(env: NodeJS.ProcessEnv, configPath?: string): RelayHostsConfig {
  const explicitRelayId = env.RELAY_ID?.trim() || undefined;
  const defaultRelayId = explicitRelayId ?? (hostname().split('.')[0] || 'relay');
  const path = configPath ?? env.MCP_REMOTE_EXEC_CONFIG;
  if (path) {
    const full = resolve(expandHome(path));
    if (!existsSync(full)) throw new ConfigError(`Relay config file not found: ${full}.`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(full, 'utf8'));
    } catch (error) {
      throw new ConfigError(`Relay config file ${full} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    const parsed = configFile.safeParse(raw);
    if (!parsed.success) throw new ConfigError(`Relay config file ${full} is invalid:\n${z.prettifyError(parsed.error)}`);
    const names = new Set<string>();
    for (const entry of parsed.data.hosts) {
      if (names.has(entry.name)) throw new ConfigError(`Relay config file ${full}: host name "${entry.name}" appears twice.`);
      names.add(entry.name);
    }
    const sources = parsed.data.hosts.map((entry) => ({ entry, file: full }));
    const notices: string[] = [];
    if ((parsed.data.ssh_config === undefined) !== (parsed.data.hosts_from_ssh_config === undefined)) {
      throw new ConfigError(`Relay config file ${full}: ssh_config and hosts_from_ssh_config go together (the file, and which of its hosts to use).`);
    }
    if (parsed.data.ssh_config !== undefined && parsed.data.hosts_from_ssh_config !== undefined) {
      const path = isAbsolute(expandHome(parsed.data.ssh_config)) ? resolve(expandHome(parsed.data.ssh_config)) : resolve(full, '..', parsed.data.ssh_config);
      const imported = importSshConfig(path, parsed.data.hosts_from_ssh_config, env, names);
      notices.push(...imported.notices);
      for (const raw of imported.entries) {
        const entry = hostEntry.safeParse(raw);
        if (!entry.success) throw new ConfigError(`Host "${raw.name}" from ${path} cannot be used:\n${z.prettifyError(entry.error)}`);
        sources.push({ entry: entry.data, file: path });
      }
    }
    const known = knownHostsDefaults(env, parsed.data.known_hosts ?? []);
    const all = withJumps(sources.map(({ entry, file }) => ({ entry, file, host: hostFromEntry(entry, env, file, parsed.data) })));
    return {
      relayId: parsed.data.relay_id ?? defaultRelayId,
      relayIdExplicit: parsed.data.relay_id !== undefined || explicitRelayId !== undefined,
      hosts: all.filter(({ entry }) => !entry.jump_only).map(({ host }) => host),
      knownHostsFiles: known.read,
      recordKnownHostsFile: known.record,
      stateDir: stateDir(env),
      source: full,
      notices,
    };
  }
  const host = hostFromSeedVariables(env);
  const known = knownHostsDefaults(env);
  return {
    relayId: defaultRelayId,
    relayIdExplicit: explicitRelayId !== undefined,
    hosts: host ? [host] : [],
    knownHostsFiles: known.read,
    recordKnownHostsFile: known.record,
    stateDir: stateDir(env),
    source: 'environment (HOST, SSH_USERNAME, …)',
    ...(host?.jump && host.auth.kind === 'password'
      ? {
          notices: [
            'SSH_PROXY_JUMP with SSH_PASSWORD: every jump host is sent the same password as the host. Prefer SSH_KEY or an ssh-agent, which give a jump host no secret.',
          ],
        }
      : {}),
  };
}

export const NO_HOSTS_HINT =
  'No SSH host is configured. Set HOST, SSH_USERNAME and SSH_KEY (or SSH_PASSWORD, or run an ssh-agent) in the environment or in .env, ' +
  'or pass --config relay.config.json listing hosts (see relay.config.example.json), then restart.';
