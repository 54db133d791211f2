// Test fixture: a real OpenSSH sshd on 127.0.0.1 with per-run keys and config.
//
// The e2e tests exercise the relay against a genuine sshd rather than a mock so
// that channel limits, signal delivery and auth behaviour are OpenSSH's own.
// Everything per-run (host key, client key, config, pid file, authorized_keys)
// lives in one temp dir; the only machine-wide state is the dedicated
// `mcpre-test` account, created once and reused.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './wait.ts';

export interface TestSshd {
  host: '127.0.0.1';
  port: number;
  /** The dedicated test account. */
  user: string;
  /** Its home directory. */
  home: string;
  /** ed25519 client key (no passphrase) authorised for `user`. */
  privateKeyPath: string;
  privateKey: Buffer;
  /** The test account's password (PasswordAuthentication yes). */
  password: string;
  /** "SHA256:..." of the ed25519 host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** 'ssh-ed25519' */
  hostKeyType: string;
  /** known_hosts holding exactly this server's key as "[127.0.0.1]:PORT ssh-ed25519 AAAA...". */
  knownHostsPath: string;
  /** Temp dir holding everything. */
  dir: string;
  pid: number;
  /** SIGTERM the sshd (and its per-connection children), wait (bounded, then SIGKILL), remove `dir`. */
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** sshd MaxSessions (channels per connection). OpenSSH's default (10) when omitted. */
  maxSessions?: number;
  /**
   * Extra sshd_config lines. sshd keeps the FIRST value it reads for most
   * keywords, so these are written before the fixture's defaults and can
   * override them. A `Match` line and everything after it go at the end,
   * because Match blocks extend to the end of the file.
   */
  extraConfig?: string[];
  /** The umask sshd runs with, and so its sessions and SFTP server (e.g. 0o027); the test process's when omitted. */
  umask?: number;
  /**
   * Run sshd in this network namespace (a /proc/PID/ns/net path, see test/harness/netns.ts): its
   * 127.0.0.1 is then not the test's, so only something inside the namespace can reach it.
   */
  netns?: string;
}

export const SSHD_PATH = '/usr/sbin/sshd';
export const TEST_USER = 'mcpre-test';
export const TEST_HOME = '/home/mcpre-test';
export const TEST_PASSWORD = 'mcpre-test-password-7f3a9c';
// SHA-512 crypt of TEST_PASSWORD with a fixed salt (`openssl passwd -6 -salt
// mcpreTestSalt01 ...`). A fixed hash lets us check /etc/shadow by string
// equality and only rewrite it when it differs, so parallel test files don't
// race on chpasswd every run. libxcrypt (used by sshd with UsePAM no) accepts $6$.
const TEST_PASSWORD_HASH = '$6$mcpreTestSalt01$mzewe0WR0GbFgHiy6yS7iB0pNQ6QB57ESK9VjGBA6L5UkVSV2HOGrRActOxndqFovPSn..PCcVJHOLoPKLdhr0';

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const START_ATTEMPTS = 5;
const STDERR_LIMIT = 64 * 1024;

export function requireSshd(): string {
  if (!existsSync(SSHD_PATH)) {
    throw new Error(`OpenSSH sshd not found at ${SSHD_PATH}. Install it: apt-get install -y openssh-server`);
  }
  return SSHD_PATH;
}

// ---------------------------------------------------------------------------
// Test account

interface PasswdEntry {
  uid: number;
  home: string;
}

function lookupUser(user: string): PasswdEntry | undefined {
  // /etc/passwd rather than `getent` keeps this synchronous and dependency-free;
  // the test account is always a local account.
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f[2] !== undefined && f[5] !== undefined) {
      return { uid: Number(f[2]), home: f[5] };
    }
  }
  return undefined;
}

function shadowHash(user: string): string | undefined {
  for (const line of readFileSync('/etc/shadow', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === user) return f[1] ?? '';
  }
  return undefined;
}

function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(input === undefined ? {} : { input }),
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Create `mcpre-test` once per machine and make sure its password is the known one. */
function ensureTestUser(): PasswdEntry {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) {
    throw new Error(
      `The e2e tests must run as root (CI does): sshd has to switch to the test account ` +
        `"${TEST_USER}" and the fixture creates that account (useradd/chpasswd) if it does not exist.`,
    );
  }

  let entry = lookupUser(TEST_USER);
  if (entry === undefined) {
    try {
      run('useradd', ['-m', '-s', '/bin/bash', TEST_USER]);
    } catch (err) {
      // Another test worker may have created it between our check and useradd.
      if (lookupUser(TEST_USER) === undefined) throw err;
    }
    entry = lookupUser(TEST_USER);
    if (entry === undefined) throw new Error(`useradd reported success but ${TEST_USER} is missing`);
  }

  // With UsePAM no, sshd rejects every auth method (even keys) for an account
  // whose password field starts with '!', which is what useradd leaves. So the
  // hash must be set before the first login, not only for password tests.
  for (let attempt = 1; shadowHash(TEST_USER) !== TEST_PASSWORD_HASH; attempt++) {
    try {
      run('chpasswd', ['-e'], `${TEST_USER}:${TEST_PASSWORD_HASH}\n`);
    } catch (err) {
      // chpasswd fails if another worker holds the shadow lock; retry briefly.
      if (attempt >= 5) throw err;
      sleepSync(200 * attempt);
    }
  }

  if (!existsSync(entry.home)) {
    // Account created elsewhere without -m: sshd needs a home to chdir into.
    mkdirSync(entry.home, { recursive: true, mode: 0o755 });
    run('chown', [`${TEST_USER}:`, entry.home]);
  }
  return entry;
}

// ---------------------------------------------------------------------------
// sshd

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      const { port } = addr;
      srv.close(() => resolve(port));
    });
  });
}

/** Keeps only the last STDERR_LIMIT bytes: enough for a failure message, bounded for chatty sshds. */
class StderrBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > STDERR_LIMIT && this.chunks.length > 1) {
      const dropped = this.chunks.shift();
      this.size -= dropped?.length ?? 0;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - STDERR_LIMIT)).toString('utf8');
  }
}

/** Whether `pid` holds the LISTEN socket for 127.0.0.1:`port` (via the inodes of its own namespace's /proc/PID/net/tcp). */
function ownsListener(pid: number, port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let inode: string | undefined;
  let table: string;
  try {
    table = readFileSync(`/proc/${pid}/net/tcp`, 'utf8');
  } catch {
    return false;
  }
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // f[1] local address, f[3] state (0A = LISTEN), f[9] inode.
    if (f[1] === local && f[3] === '0A') inode = f[9];
  }
  if (inode === undefined) return false;
  const want = `socket:[${inode}]`;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === want;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/**
 * Resolves once the port answers with an SSH banner; a refused connection is retried until the
 * deadline. In another network namespace the test cannot connect: there, sshd's own listening
 * socket is the sign it is ready.
 */
async function waitForBanner(port: number, deadline: number, exited: () => boolean, pid: number, probe = true): Promise<void> {
  let lastError = 'no attempt made';
  while (performance.now() < deadline) {
    if (exited()) throw new Error(`sshd exited before accepting connections (${lastError})`);
    // If another process grabbed the port between freePort() and sshd's bind,
    // a banner could come from *that* listener (e.g. a parallel test's sshd),
    // so first insist the listening socket is ours.
    if (!ownsListener(pid, port)) {
      lastError = `pid ${pid} is not listening on 127.0.0.1:${port} yet`;
      await new Promise((r) => setTimeout(r, 25));
      continue;
    }
    if (!probe) return;
    const remaining = deadline - performance.now();
    const result = await new Promise<string | null>((resolve) => {
      let data = '';
      const sock = createConnection({ host: '127.0.0.1', port });
      const timer = setTimeout(() => {
        sock.destroy();
        resolve('timed out waiting for banner');
      }, remaining);
      const finish = (r: string | null): void => {
        clearTimeout(timer);
        sock.destroy();
        resolve(r);
      };
      sock.on('data', (chunk: Buffer) => {
        data += chunk.toString('latin1');
        if (data.includes('SSH-2.0-')) finish(null);
      });
      sock.on('error', (err) => finish(err.message));
      sock.on('close', () => finish(`connection closed after ${JSON.stringify(data)}`));
    });
    if (result === null) return;
    lastError = result;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd not ready within ${READY_TIMEOUT_MS} ms (${lastError})`);
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * The fields of /proc/PID/stat from the state on (field 3 is index 0), or undefined once the process
 * is gone: the command name (field 2) may hold spaces and parentheses, the fields after its last ')' are fixed.
 */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** PIDs whose parent is `ppid` (from /proc/PID/stat): for the listening sshd, one per SSH connection. */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    // A process that exited while we were scanning has no fields.
    if (/^\d+$/.test(name) && Number(statFields(Number(name))?.[1]) === ppid) out.push(Number(name));
  }
  return out;
}

function buildConfig(o: {
  port: number;
  hostKeyPath: string;
  pidFile: string;
  authorizedKeys: string;
  maxSessions: number | undefined;
  extraConfig: string[];
}): string {
  const matchAt = o.extraConfig.findIndex((l) => /^\s*match\s/i.test(l));
  const extraHead = matchAt === -1 ? o.extraConfig : o.extraConfig.slice(0, matchAt);
  const extraTail = matchAt === -1 ? [] : o.extraConfig.slice(matchAt);
  return [
    '# Generated by test/harness/sshd.ts',
    ...extraHead,
    `Port ${o.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${o.hostKeyPath}`,
    `PidFile ${o.pidFile}`,
    'UsePAM no',
    'Subsystem sftp internal-sftp',
    // The temp dir is root-owned; StrictModes would reject authorized_keys in it.
    'StrictModes no',
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication yes',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin no',
    `AllowUsers ${TEST_USER}`,
    'PrintMotd no',
    'PrintLastLog no',
    'UseDNS no',
    ...(o.maxSessions === undefined ? [] : [`MaxSessions ${o.maxSessions}`]),
    ...extraTail,
    '',
  ].join('\n');
}

// sshds not yet stopped. One shared 'exit' hook (rather than one per sshd, which
// would trip the max-listeners warning) SIGKILLs them so a test process that dies
// without stop() doesn't leave a root sshd listening (or its keys on disk).
const running = new Map<ChildProcess, string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [child, dir] of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
      // Synchronous, so it can still run here; sshd never writes after SIGKILL.
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

export async function startSshd(options: SshdOptions = {}): Promise<TestSshd> {
  const sshd = requireSshd();
  const account = ensureTestUser();

  // sshd refuses to start without its privilege-separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = mkdtempSync(join(tmpdir(), 'mcpre-sshd-'));
  try {
    // sshd reads AuthorizedKeysFile with the user's uid, so the user must be able
    // to traverse the (root-owned, 0700 by default) temp dir. Private keys stay 0600.
    chmodSync(dir, 0o755);

    const hostKeyPath = join(dir, 'ssh_host_ed25519_key');
    const privateKeyPath = join(dir, 'client_ed25519');
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mcpre-test-host', '-f', hostKeyPath]);
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'mcpre-test-client', '-f', privateKeyPath]);

    const authorizedKeys = join(dir, 'authorized_keys');
    writeFileSync(authorizedKeys, readFileSync(`${privateKeyPath}.pub`), { mode: 0o644 });

    const hostPub = readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(/\s+/);
    const hostKeyType = hostPub[0] ?? '';
    const hostKeyBlob = hostPub[1] ?? '';
    // "256 SHA256:xxxx comment (ED25519)"
    const fingerprint = run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKeyPath}.pub`]).split(/\s+/)[1] ?? '';
    const computed = 'SHA256:' + createHash('sha256').update(Buffer.from(hostKeyBlob, 'base64')).digest('base64').replace(/=+$/, '');
    if (hostKeyType !== 'ssh-ed25519' || fingerprint !== computed) {
      throw new Error(`unexpected host key: type ${hostKeyType}, ssh-keygen ${fingerprint}, computed ${computed}`);
    }

    const pidFile = join(dir, 'sshd.pid');
    const configPath = join(dir, 'sshd_config');
    const privateKey = readFileSync(privateKeyPath);

    let lastFailure = '';
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = await freePort();
      writeFileSync(
        configPath,
        buildConfig({
          port,
          hostKeyPath,
          pidFile,
          authorizedKeys,
          maxSessions: options.maxSessions,
          extraConfig: options.extraConfig ?? [],
        }),
      );

      const stderr = new StderrBuffer();
      // Absolute path is required: sshd re-execs itself for every connection.
      // The child inherits the umask at spawn; only sshd gets it, not the files written above.
      const previousUmask = options.umask === undefined ? undefined : process.umask(options.umask);
      // nsenter execs sshd in place, so the child's PID is sshd's.
      const [command, args] =
        options.netns === undefined ? [sshd, ['-D', '-e', '-f', configPath]] : ['nsenter', [`--net=${options.netns}`, sshd, '-D', '-e', '-f', configPath]];
      const child = spawn(command, args, {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      if (previousUmask !== undefined) process.umask(previousUmask);
      child.stderr?.on('data', (c: Buffer) => stderr.push(c));
      // A forgotten stop() must not keep the test worker alive; the shared
      // 'exit' hook still kills the sshd when the worker ends.
      child.unref();
      (child.stderr as { unref?: () => void } | null)?.unref?.();
      const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
      let exited = false;
      child.once('exit', () => {
        exited = true;
      });

      running.set(child, dir);
      installExitHook();

      const ready = await Promise.race([
        waitForBanner(port, performance.now() + READY_TIMEOUT_MS, () => exited, child.pid ?? -1, options.netns === undefined).then(
          () => null,
          (err: Error) => err.message,
        ),
        spawnError.then((err) => `spawn failed: ${err.message}`),
      ]);

      if (ready === null && child.pid !== undefined) {
        const pid = child.pid;
        let stopped = false;
        const knownHostsPath = join(dir, 'known_hosts');
        writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${hostKeyType} ${hostKeyBlob}\n`);
        return {
          host: '127.0.0.1',
          port,
          user: TEST_USER,
          home: account.home,
          privateKeyPath,
          privateKey,
          password: TEST_PASSWORD,
          hostKeyFingerprint: fingerprint,
          hostKeyType,
          knownHostsPath,
          dir,
          pid,
          async stop(): Promise<void> {
            if (stopped) return;
            stopped = true;
            // The listener does not take its per-connection children (each its
            // own session, via setsid) down with it; end them too so a stopped
            // fixture really drops its clients. They are our own descendants,
            // found by parent PID, never by name.
            const connections = childrenOf(pid);
            child.kill('SIGTERM');
            for (const c of connections) {
              try {
                process.kill(c, 'SIGTERM');
              } catch {
                // Already exited.
              }
            }
            if (!(await waitExit(child, STOP_TIMEOUT_MS))) {
              child.kill('SIGKILL');
              if (!(await waitExit(child, STOP_TIMEOUT_MS))) {
                throw new Error(`sshd pid ${pid} did not exit after SIGKILL`);
              }
            }
            running.delete(child);
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }

      // Failed: make sure this attempt's sshd is gone before retrying or throwing.
      child.kill('SIGKILL');
      await waitExit(child, STOP_TIMEOUT_MS);
      running.delete(child);
      const log = stderr.text();
      lastFailure = `${ready ?? 'no pid'}\n--- sshd stderr ---\n${log}`;
      // Only a lost race for the port is worth retrying; anything else is a real failure.
      if (!/Address already in use|Cannot bind any address/i.test(log)) break;
    }
    throw new Error(`could not start test sshd: ${lastFailure}`);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Remote process inspection (the "remote" host is this machine)

/**
 * PIDs of `user`'s processes whose full command line contains `pattern`
 * (plain substring, not a regex). Reads /proc directly so the search itself
 * never shows up as a match the way `pgrep -f` inside a shell can.
 */
export function remoteProcesses(pattern: string, user: string): number[] {
  const entry = lookupUser(user);
  if (entry === undefined) throw new Error(`no such user: ${user}`);
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
      if (uid === undefined || Number(uid) !== entry.uid) continue;
      // Zombies have an empty cmdline, so an exited-but-unreaped command is "gone".
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmdline.includes(pattern)) out.push(pid);
    } catch {
      // The process exited while we were scanning.
    }
  }
  return out;
}

/**
 * `user`'s processes matching `pattern` once at least `count` of them were seen in one look, or
 * the last look at the deadline. The look that satisfied the wait is returned, not a later one: a
 * job's own timeout may thin them out a moment after.
 */
export async function waitForProcesses(pattern: string, user: string, count: number, timeoutMs: number): Promise<number[]> {
  const end = performance.now() + timeoutMs;
  let seen = remoteProcesses(pattern, user);
  while (seen.length < count && performance.now() < end) {
    await sleep(50);
    seen = remoteProcesses(pattern, user);
  }
  return seen;
}

/** A process's start time (clock ticks since boot), or null once it is gone or a zombie. */
function liveSince(pid: number): string | null {
  const fields = statFields(pid);
  return !fields || fields[0] === 'Z' ? null : (fields[19] ?? null);
}

/**
 * `user`'s processes matching `pattern` once none are left, or those left at the deadline. A
 * process seen once is followed by its PID (and start time, against reuse) until it ends, not by its
 * command line: that reads empty for a moment while the process execs (a shell that runs its last
 * command in its own place, setsid handing over to its command), and a later look in that moment must
 * not count as "none left". Only what some look saw is followed: call it once the processes were seen
 * running (as every caller does after starting them), not while they may all be mid-exec.
 */
export async function waitForNoProcesses(pattern: string, user: string, timeoutMs: number): Promise<number[]> {
  const end = performance.now() + timeoutMs;
  const followed = new Map<number, string>();
  const left = (): number[] => {
    for (const pid of remoteProcesses(pattern, user)) {
      const since = liveSince(pid);
      if (since !== null && !followed.has(pid)) followed.set(pid, since);
    }
    for (const [pid, since] of followed) if (liveSince(pid) !== since) followed.delete(pid);
    return [...followed.keys()];
  };
  let seen = left();
  while (seen.length > 0 && performance.now() < end) {
    await sleep(100);
    seen = left();
  }
  return seen;
}

/** Every process under the listening sshd: connection monitors, sessions, and what they run. */
export function processesUnder(sshd: { pid: number }): number[] {
  const found: number[] = [];
  const queue = [...childrenOf(sshd.pid)];
  for (let index = 0; index < queue.length && index < 1000; index += 1) {
    const pid = queue[index] as number;
    found.push(pid);
    queue.push(...childrenOf(pid));
  }
  return found;
}

/** A process's command line, arguments joined by spaces ('' once it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Process group and session of `pid`, from /proc (for tests about signal delivery). */
export function processIds(pid: number): { ppid: number; pgid: number; sid: number } | undefined {
  const rest = statFields(pid);
  return rest && { ppid: Number(rest[1]), pgid: Number(rest[2]), sid: Number(rest[3]) };
}

/** The user's processes whose command line is exactly `command` (not a shell whose script mentions it). */
export function processesRunning(command: string, user: string): number[] {
  return remoteProcesses(command, user).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() === command;
    } catch {
      return false;
    }
  });
}
