/**
 * SSH connections per host, reused across calls. Each host gets up to `maxConnections`
 * connections, opened on demand, each carrying up to `maxSessions - 2` channels at once: OpenSSH
 * refuses channels beyond MaxSessions (default 10), it frees a slot slightly after the client sees
 * a channel close, and a timed-out command needs one spare channel to kill its process group.
 * Callers beyond capacity wait in FIFO order, bounded by their deadline and abort signal.
 *
 * Two protections keep one caller or one bad connection from taking a host away from everyone:
 * - a caller (a user, as the hub names them) holds at most half of a host's channels; their
 *   further work waits for one of their own to finish, while other callers pass them in the queue;
 * - a connection that does not confirm a channel within CHANNEL_OPEN_TIMEOUT_MS has gone silent
 *   (a frozen host, a blackholed path: TCP still looks open). It is dropped at once, so its
 *   commands learn their outcome is unknown and new work goes to a fresh connection instead of
 *   queueing behind it until keepalives notice, 15-20 s later.
 */
import { Client } from 'ssh2';
import type { ClientChannel, ConnectConfig, ExecOptions, ServerHostKeyAlgorithm, SFTPWrapper } from 'ssh2';
import { failure, success, type Outcome, type ToolError } from '../shared/errors.ts';
import type { HostConfig } from './config.ts';
import { decideHostKey, preferredHostKeyAlgorithms, readKnownHostKeys, type HostKeyDecision, type KnownHostKey } from './host-keys.ts';
import { offeredHostKey } from './host-key-scan.ts';
import { log, notice } from './log.ts';
import { connectError, HOST_FINGERPRINTS_COMMAND, hostKeyError, isChannelOpenFailure, trustRefusedKey } from './ssh-errors.ts';
import { JumpConnections, type ConnectAttempt } from './jump-connections.ts';
import { certificateForConnect, certificateLogin, certificateLoginError } from './ssh-certificate.ts';
import { readyShellCommand, readyShellInput, readyWatchFor, watchFits, type ReadyWatch } from './host-stop.ts';
import { pingReadyShell } from './ready-shell-ping.ts';
import { unlessAborted } from '../shared/unless-aborted.ts';
import { DEFAULT_TIMEOUT_SECONDS } from '../shared/limits.ts';

/** ssh2's host key algorithms, most preferred first; reordered per host to favour known key types. */
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];
export const KEEPALIVE_INTERVAL_MS = 5_000;
const KEEPALIVE_COUNT_MAX = 3;
/** A live sshd confirms a channel in milliseconds; this long without an answer means the connection is dead. */
export const CHANNEL_OPEN_TIMEOUT_MS = 5_000;
/** The part of a host's channels one caller may hold at once. */
const CALLER_SHARE = 0.5;
/** Connections with no channel for this long are closed; the next call reconnects. */
export const IDLE_TIMEOUT_MS = 5 * 60_000;
/** sshd may refuse a channel for a moment after another closed; retry this often, this many times. */
const CHANNEL_RETRY_DELAY_MS = 15;
const CHANNEL_RETRY_LIMIT = 40;
/** A ready shell nobody used for this long is closed (and not replaced until the next run asks for one). */
const READY_IDLE_MS = 60_000;
/**
 * A run this soon after its ready shell answered a ping is written without pinging it again:
 * `freshMs` (a second; tests change it). The shell and its connection answered just now, and the
 * second round trip to the host was about a third of what a run cost the relay in the full stack.
 * A run that comes later pings first, so that a shell or connection that went silent while it
 * waited is found before a command is on it, and the run goes to a fresh channel instead.
 */
export const READY_TIMINGS = { freshMs: 1_000 };
/** A ready shell that ended by itself or printed something else means they do not work on this host: none for this long. */
const READY_OFF_MS = 10 * 60_000;
/** A ready shell lost with its connection: a new one waits this long. */
const READY_RETRY_MS = 5_000;
/** After a failed connection attempt, wait this long before opening another while others work. */
const REOPEN_HOLD_OFF_MS = 1_000;
/** The start-up key check gives up on a host that shows no key within this (or its connect timeout, if shorter). */
const KEY_CHECK_TIMEOUT_MS = 10_000;
/** A relay with many hosts opens no more than this many key checks at once when it starts. */
const KEY_CHECKS_AT_ONCE = 8;

export interface KnownHostsSettings {
  files: string[];
  recordFile: string;
}

interface Connection {
  id: number;
  client: Client;
  state: 'connecting' | 'ready' | 'closed';
  /** When the connection attempt began (performance.now()). */
  openedAt: number;
  active: number;
  idleTimer?: ReturnType<typeof setTimeout>;
}

interface Waiter {
  /** Who is waiting (the hub's user id); undefined in stdio mode, where there is one user. */
  caller: string | undefined;
  resolve(outcome: Outcome<Lease>): void;
}

/** The part of a host pool that operations use, bound to one caller (HostPool.forCaller). */
export interface HostChannels {
  readonly host: HostConfig;
  acquire(signal: AbortSignal): Promise<Outcome<Lease>>;
  /**
   * `options` asks for a pseudo-terminal (ssh2's exec options); none by default. `ready`: the same
   * run for a ready shell, for a wrapped run with no terminal: the pool writes it to a ready shell
   * when it has one, and runs `command` otherwise. The answer's `runId` is the id the run is marked
   * with on the host: a ready shell's own, when its watchdog fits the run, or else `ready.runId`.
   */
  exec(command: string, signal: AbortSignal, options?: ExecOptions, ready?: ReadyRun): Promise<Outcome<OpenedRun>>;
  sftp(signal: AbortSignal): Promise<Outcome<{ sftp: SFTPWrapper; end(): void }>>;
  execNow(client: Client, command: string, signal: AbortSignal): Promise<Outcome<{ channel: ClientChannel; exit: ChannelExit }>>;
  whyNoChannel(timeoutMs: number): Outcome<never>;
}

/** A run as a ready shell can take it: the command (run as host-stop.ts readyShellInput sends it), its run id and its timeout. */
export interface ReadyRun {
  command: string;
  runId: string;
  timeoutMs: number;
}

/**
 * A channel running a command; `runId` is the run's marker on the host when it went through `ready`.
 * `unpinged`: the run was written to a ready shell that answered a ping moments before, with no ping
 * of its own. The host shows it read the run (its marker comes first) as fast as it would answer a
 * ping, so the caller gives it CHANNEL_OPEN_TIMEOUT_MS to show anything, and otherwise calls
 * `giveUp` (the shell or its connection went silent since: HostPool.giveUpUnpinged).
 */
export interface OpenedRun {
  channel: ClientChannel;
  lease: Lease;
  exit: ChannelExit;
  runId?: string;
  unpinged?: { giveUp(): void };
}

/** Filled in by the channel's 'exit' event, which may fire before the caller gets the channel. */
export interface ChannelExit {
  exited: boolean;
  code: number | null;
  signal: string | null;
}

export interface Lease {
  client: Client;
  /** Give the channel slot back. Safe to call more than once. */
  release(): void;
  /** The connection did not answer in time: drop it, so nothing more waits on it. */
  abandon(why: string): void;
}

/** A lease the pool took for itself (a ready shell's) and hands to a caller later. */
interface ClaimableLease extends Lease {
  /** Count the slot against `caller` from now on (undefined: against nobody again). */
  claim(caller: string | undefined): void;
}

/** A login shell started ahead of its run on a channel of its own (host-stop.ts readyShellCommand). */
interface ReadyShell {
  channel: ClientChannel;
  /** Listens while it waits: a shell that prints between pings is one whose startup prints. */
  early: () => void;
  /** When it last answered a ping: performance.now(), and Date.now() (which goes on while the machine sleeps). */
  answeredAt: number;
  answeredWall: number;
  exit: ChannelExit;
  lease: ClaimableLease;
  idle: ReturnType<typeof setTimeout>;
  connection: Connection;
  /** The run id and seconds its watchdog was started for. */
  watch: ReadyWatch;
}

let nextConnectionId = 1;

/** What a channel open that got no answer in time fails with (its connection is then dropped). */
function silentConnection(): { ok: false; error: ToolError } {
  return failure('host_unreachable', `The SSH connection did not answer a channel request within ${CHANNEL_OPEN_TIMEOUT_MS / 1000} s and was dropped.`);
}

/**
 * One exec channel on `client`. The exit listener is attached in the callback itself: a short
 * command's exit status can arrive in the same read as the channel confirmation, and ssh2 emits
 * 'exit' once, before an awaiting caller resumes. A channel that opens after `signal` aborted is
 * closed at once.
 */
function openExecChannel(
  client: Client,
  command: string,
  signal: AbortSignal,
  onSilent: () => void,
  options: ExecOptions = {},
): Promise<Outcome<{ channel: ClientChannel; exit: ChannelExit }>> {
  const exit: ChannelExit = { exited: false, code: null, signal: null };
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: Outcome<{ channel: ClientChannel; exit: ChannelExit }>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(silence);
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const silence = setTimeout(() => {
      settle(silentConnection());
      onSilent();
    }, CHANNEL_OPEN_TIMEOUT_MS);
    const onAbort = (): void => settle(failure('cancelled', 'Stopped while the SSH channel was opening.'));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      client.exec(command, options, (error, channel) => {
        if (error) {
          settle(failure(isChannelOpenFailure(error) ? 'ssh_error' : 'host_unreachable', error.message));
          return;
        }
        channel.once('exit', (code: number | null, signalName?: string) => {
          exit.exited = true;
          exit.code = typeof code === 'number' ? code : null;
          exit.signal = typeof signalName === 'string' ? signalName.replace(/^SIG/, '') : null;
        });
        if (settled) {
          channel.close();
          return;
        }
        settle(success({ channel, exit }));
      });
    } catch (error) {
      // ssh2 throws synchronously when the connection is no longer writable.
      settle(failure('host_unreachable', error instanceof Error ? error.message : String(error)));
    }
  });
}

/** The credentials part of ssh2's connect options: exactly the one way configured for the host. */
function authOptions(host: HostConfig): Pick<ConnectConfig, 'privateKey' | 'passphrase' | 'password' | 'agent'> {
  switch (host.auth.kind) {
    case 'key':
      return { privateKey: host.auth.privateKey, ...(host.auth.passphrase ? { passphrase: host.auth.passphrase } : {}) };
    case 'password':
      return { password: host.auth.password };
    case 'agent':
      // ssh2 asks the agent for its keys and has it sign; nothing of the agent's is logged.
      return { agent: host.auth.socketPath };
  }
}

function isHostKeyAlgorithm(name: string): name is ServerHostKeyAlgorithm {
  return (HOST_KEY_ALGORITHMS as string[]).includes(name);
}

/** Offer the key types known for this host first, as OpenSSH does, so a host with several keys shows the one we trust. */
function hostKeyAlgorithmsFor(known: KnownHostKey[]): ServerHostKeyAlgorithm[] {
  return preferredHostKeyAlgorithms(known, HOST_KEY_ALGORITHMS).filter(isHostKeyAlgorithm);
}

/** The known_hosts files for `host`: its own (from ssh_config's UserKnownHostsFile) before the relay's record file, else the relay's. */
function knownHostsFor(host: HostConfig, knownHosts: KnownHostsSettings): string[] {
  return host.knownHostsFiles ? [...host.knownHostsFiles, knownHosts.recordFile] : knownHosts.files;
}

/**
 * ssh2's options for one connection to `host`, its host key checked against the pinned
 * fingerprints or known_hosts. The same for a host reached directly and for a jump host.
 */
export function connectAttempt(host: HostConfig, knownHosts: KnownHostsSettings): Outcome<ConnectAttempt> {
  let decision: HostKeyDecision | undefined;
  const pinned = host.hostKeyFingerprints;
  const files = knownHostsFor(host, knownHosts);
  let known: KnownHostKey[] = [];
  try {
    known = pinned.length > 0 ? [] : readKnownHostKeys(files, host.address, host.port);
  } catch (error) {
    return failure('ssh_error', `Cannot read the known_hosts files (${files.join(', ')}): ${error instanceof Error ? error.message : String(error)}`);
  }
  // A certificate is read again for each connection: a renewed one is used, an expired one is not tried.
  const current =
    host.auth.kind === 'key' && host.auth.certificatePath !== undefined
      ? certificateForConnect(host.name, host.auth.certificatePath, host.auth.privateKey, host.auth.passphrase)
      : undefined;
  if (current !== undefined && !current.ok) return current;
  const certificate = current?.value;
  const withCertificate = certificate ? certificateLogin(certificate) : undefined;
  const config: ConnectConfig = {
    host: host.address,
    port: host.port,
    username: host.username,
    readyTimeout: host.connectTimeoutMs,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    algorithms: { serverHostKey: hostKeyAlgorithmsFor(known) },
    hostVerifier: (key: Buffer): boolean => {
      decision = decideHostKey(
        {
          host: host.address,
          port: host.port,
          strict: host.strictHostKeyChecking,
          knownHostsFiles: files,
          recordFile: knownHosts.recordFile,
          pinnedFingerprints: pinned,
        },
        key,
      );
      if (decision.ok && decision.recorded) {
        log('warn', 'recorded a new host key (SSH_STRICT_HOST_KEY_CHECKING=false)', { host: host.name, file: knownHosts.recordFile });
      }
      return decision.ok;
    },
    ...authOptions(host),
    ...(withCertificate ? { authHandler: withCertificate.authHandler } : {}),
  };
  return success({
    config,
    recordFile: knownHosts.recordFile,
    refusal: () => (decision !== undefined && !decision.ok ? decision : undefined),
    start: (client, sock) => {
      client.connect(sock ? { ...config, sock } : config);
      try {
        withCertificate?.install(client);
      } catch (error) {
        // The certificate login could not be set up on a connection already under way: drop it.
        client.destroy();
        throw error;
      }
    },
    explain: (error) => (certificate && error.code === 'auth_failed' ? certificateLoginError(error, certificate, host.username) : error),
  });
}

export class HostPool {
  readonly host: HostConfig;
  private readonly knownHosts: KnownHostsSettings;
  private readonly connections: Connection[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly perConnection: number;
  private closed = false;
  private lastFailureAt = 0;
  /** Why the last connection attempt failed; cleared when one succeeds. */
  private lastConnectError: ToolError | null = null;
  /** The connect failure last logged (code and message); the same one again is not logged again until a connection works. */
  private loggedFailure: string | undefined;
  private reopenTimer: ReturnType<typeof setTimeout> | undefined;
  /** Channels each caller holds now. */
  private readonly held = new Map<string, number>();
  /** The most channels one caller may hold at once. */
  readonly callerShare: number;
  /** At most one ready shell per host, kept while runs keep asking for one (runs are what it saves time on). */
  private ready: ReadyShell | null = null;
  /** A ready shell being started: a run that finds none ready waits for this one rather than open its own (which would take longer). */
  private readyOpening: Promise<void> | null = null;
  private wantsReady = false;
  /** The timeout of the last run that asked for a ready shell: the next one's watchdog is started for it. */
  private readyTimeoutMs = DEFAULT_TIMEOUT_SECONDS * 1000;
  /** No ready shell before this time (Date.now()): one misbehaved or was lost. */
  private readyOffUntil = 0;

  /** Shared connections to jump hosts; `jumps` of a pool with no hops is never used. */
  private readonly jumps: JumpConnections;
  /** Whether `jumps` is this pool's own (a pool made alone), to close with it. */
  private readonly ownJumps: boolean;

  constructor(host: HostConfig, knownHosts: KnownHostsSettings, jumps?: JumpConnections) {
    this.host = host;
    this.knownHosts = knownHosts;
    this.ownJumps = jumps === undefined;
    this.jumps = jumps ?? new JumpConnections((hop) => connectAttempt(hop, knownHosts), IDLE_TIMEOUT_MS);
    this.perConnection = Math.max(1, host.maxSessions - 2);
    this.callerShare = Math.max(1, Math.floor(host.maxConnections * this.perConnection * CALLER_SHARE));
  }

  /**
   * This pool as one caller uses it: their work counts against their share. Always this wrapper,
   * also with no caller (stdio mode): the pool's own `exec` takes the caller before `ready`, so the
   * pool itself is not a HostChannels (TypeScript refuses it since `ready` is an object).
   */
  forCaller(caller: string | undefined): HostChannels {
    return {
      host: this.host,
      acquire: (signal) => this.acquire(signal, caller),
      exec: (command, signal, options, ready) => this.exec(command, signal, options, caller, ready),
      sftp: (signal) => this.sftp(signal, caller),
      execNow: (client, command, signal) => this.execNow(client, command, signal),
      whyNoChannel: (timeoutMs) => this.whyNoChannel(timeoutMs, caller),
    };
  }

  /** Wait for a channel slot on a ready connection, opening one if the pool has room. */
  acquire(signal: AbortSignal, caller?: string): Promise<Outcome<Lease>> {
    if (this.closed) return Promise.resolve(failure('relay_shutting_down', 'The relay is shutting down.'));
    if (signal.aborted) return Promise.resolve(failure('cancelled', 'Cancelled before an SSH channel was available.'));
    return new Promise((resolve) => {
      const waiter: Waiter = {
        caller,
        resolve: (outcome) => {
          signal.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        waiter.resolve(failure('cancelled', 'Cancelled while waiting for an SSH channel.'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.dispatch();
    });
  }

  /**
   * Open an exec channel, retrying while sshd refuses it for lack of sessions. The lease is
   * released when the channel closes. Waiting for a slot and for the channel both end when
   * `signal` aborts.
   */
  async exec(command: string, signal: AbortSignal, options?: ExecOptions, caller?: string, ready?: ReadyRun): Promise<Outcome<OpenedRun>> {
    if (ready !== undefined && !options?.pty && this.host.readyShell) {
      this.wantsReady = true;
      // The next ready shell's watchdog is started for this run's timeout: runs tend to repeat theirs.
      this.readyTimeoutMs = ready.timeoutMs;
      const onReady = await this.runOnReadyShell(ready, signal, caller);
      if (onReady !== null) return onReady;
    }
    for (let attempt = 0; ; attempt += 1) {
      const acquired = await this.acquire(signal, caller);
      if (!acquired.ok) return acquired;
      const lease = acquired.value;
      let silent = false;
      const opened = await openExecChannel(
        lease.client,
        command,
        signal,
        () => {
          silent = true;
          lease.abandon('it did not answer a channel request');
        },
        options,
      );
      if (opened.ok) {
        opened.value.channel.once('close', () => lease.release());
        return success({ ...opened.value, lease });
      }
      lease.release();
      // A silent connection was dropped: the next attempt gets a fresh one.
      const retryable = (opened.error.code === 'ssh_error' || silent) && attempt < CHANNEL_RETRY_LIMIT;
      if (!retryable || signal.aborted) {
        return failure(opened.error.code, `Could not open an SSH channel on host "${this.host.name}": ${opened.error.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, CHANNEL_RETRY_DELAY_MS * Math.min(attempt + 1, 4)));
    }
  }

  /**
   * Hand the ready shell to this run: ping it, then write the run. Null when there is none to use
   * (or it did not answer): the run then opens a channel of its own, as it would have anyway. A
   * caller never passes others waiting in the queue, nor goes over their share, this way.
   */
  private async runOnReadyShell(ready: ReadyRun, signal: AbortSignal, caller: string | undefined): Promise<Outcome<OpenedRun> | null> {
    if (!this.ready && this.readyOpening) await unlessAborted(this.readyOpening, signal);
    const shell = this.ready;
    if (!shell || signal.aborted || this.waiters.length > 0 || !this.withinShare(caller)) return null;
    this.ready = null;
    clearTimeout(shell.idle);
    shell.channel.off('data', shell.early);
    shell.lease.claim(caller);
    // Both clocks: the monotonic one stops while the machine sleeps, and a connection may not survive that.
    const fresh = performance.now() - shell.answeredAt <= READY_TIMINGS.freshMs && Date.now() - shell.answeredWall <= READY_TIMINGS.freshMs;
    const answer = fresh ? 'answered' : await pingReadyShell(shell.channel, CHANNEL_OPEN_TIMEOUT_MS, signal);
    // A shell that will not run this command is not the caller's: it no longer counts against their share.
    if (answer !== 'answered') shell.lease.claim(undefined);
    switch (answer) {
      case 'answered': {
        // Under the shell's own run id its waiting watchdog takes the run; under the caller's it starts one.
        const runId = watchFits(shell.watch, ready.timeoutMs) ? shell.watch.runId : ready.runId;
        shell.channel.write(readyShellInput(ready.command, runId, ready.timeoutMs));
        const unpinged = fresh ? { giveUp: () => this.giveUpUnpinged(shell) } : undefined;
        return success({ channel: shell.channel, lease: shell.lease, exit: shell.exit, runId, ...(unpinged ? { unpinged } : {}) });
      }
      case 'cancelled':
        this.retireReady(shell);
        return failure('cancelled', 'Stopped while the SSH channel was opening.');
      case 'silent':
        this.readyUnanswered(shell);
        return null;
      case 'odd':
        this.readyPrinted(shell);
        return null;
      case 'closed':
        this.readyEnded(shell);
        return null;
    }
  }

  /**
   * An unpinged run whose host showed nothing in time: its shell or connection went silent since it
   * answered. The shell is sent KILL (which ends a stopped process too, so the run cannot start
   * later), the connection is dropped when nothing else runs on it (as for an unanswered ping), and
   * ready shells go off for this host, so the next runs are pinged or open their own channels.
   */
  private giveUpUnpinged(shell: ReadyShell): void {
    this.readyOffUntil = Date.now() + READY_OFF_MS;
    log('warn', 'a ready shell showed nothing of its run in time: it was sent KILL, and ready shells are off for this host', {
      host: this.host.name,
      connection: shell.connection.id,
    });
    try {
      shell.channel.signal('KILL');
    } catch {
      // The channel is already going.
    }
    if (shell.connection.active <= 1) shell.lease.abandon('a ready shell showed nothing of its run in time');
  }

  /** A ready shell printed before its run (a login that prints, or a shell that cannot run readyShellCommand). */
  private readyPrinted(shell: ReadyShell): void {
    this.readyOffUntil = Date.now() + READY_OFF_MS;
    log('info', 'ready shells are off for this host: a shell printed something before its run', { host: this.host.name });
    this.retireReady(shell);
  }

  /**
   * A ready shell did not answer its ping in time; nothing was sent, and the run goes to a fresh
   * channel. The silence may be the connection's (dead) or only the shell's: a login slower than the
   * bound, a loaded host. So the connection is dropped only when nothing else runs on it; beside
   * other commands, the run's own channel open tells (and drops a dead connection then), and those
   * commands are not cut on a live one. Slow shells would make every run wait here: none for a while.
   */
  private readyUnanswered(shell: ReadyShell): void {
    this.readyOffUntil = Date.now() + READY_OFF_MS;
    log('info', 'ready shells are off for this host: a shell did not answer its ping in time', { host: this.host.name });
    if (shell.connection.active > 1) this.retireReady(shell);
    else shell.lease.abandon('it did not answer a ready shell');
  }

  /** A ready shell ended before its run, by itself (a shell that cannot wait this way) or with its connection. */
  private readyEnded(shell: ReadyShell): void {
    const lost = shell.connection.state === 'closed';
    this.readyOffUntil = Date.now() + (lost ? READY_RETRY_MS : READY_OFF_MS);
    if (!lost) log('info', 'ready shells are off for this host: a shell ended before its run', { host: this.host.name, exitCode: shell.exit.code });
  }

  /** Start a ready shell when runs want one and a slot is free that nobody is waiting for. */
  private refillReady(): void {
    if (!this.wantsReady || this.ready || this.readyOpening || this.closed || this.waiters.length > 0 || Date.now() < this.readyOffUntil) return;
    const connection = this.connections.find((c) => c.state === 'ready' && c.active < this.perConnection);
    if (!connection) return;
    const lease = this.lease(connection, undefined);
    const watch = readyWatchFor(this.readyTimeoutMs);
    this.readyOpening = openExecChannel(lease.client, readyShellCommand(watch), new AbortController().signal, () =>
      lease.abandon('it did not answer a channel request'),
    ).then(async (opened) => {
      if (!opened.ok) {
        this.readyOpening = null;
        this.readyOffUntil = Date.now() + READY_RETRY_MS;
        lease.release();
        return;
      }
      const { channel, exit } = opened.value;
      const shell: ReadyShell = {
        channel,
        exit,
        lease,
        connection,
        idle: setTimeout(() => this.retireReady(shell, false), READY_IDLE_MS),
        early: () => this.readyPrinted(shell),
        answeredAt: 0,
        answeredWall: 0,
        watch,
      };
      shell.idle.unref();
      channel.once('close', () => {
        clearTimeout(shell.idle);
        if (this.ready === shell) {
          this.ready = null;
          this.readyEnded(shell);
        }
        lease.release();
      });
      // Its first ping as it starts, off any run's path: a run soon after needs none of its own. From
      // its answer on (in the same turn: nothing it prints next can go unread), a shell that prints
      // is one whose startup prints, and its end is seen when it comes.
      const answer = await pingReadyShell(channel, CHANNEL_OPEN_TIMEOUT_MS, new AbortController().signal, () => {
        shell.answeredAt = performance.now();
        shell.answeredWall = Date.now();
        channel.on('data', shell.early);
      });
      this.readyOpening = null;
      if (answer !== 'answered') {
        if (answer === 'odd') this.readyPrinted(shell);
        else if (answer === 'silent') this.readyUnanswered(shell);
        else this.readyEnded(shell);
        return;
      }
      if (this.closed || this.waiters.length > 0) this.retireReady(shell);
      else this.ready = shell;
    });
  }

  /** Close a ready shell (its end of input runs nothing); `refill` false keeps it from being replaced until a run asks. */
  private retireReady(shell: ReadyShell, refill = true): void {
    if (this.ready === shell) this.ready = null;
    if (!refill) this.wantsReady = false;
    clearTimeout(shell.idle);
    // Nobody reads it: let its streams end, or ssh2 holds back 'close' (and so the slot) until something else stirs.
    shell.channel.resume();
    shell.channel.stderr.resume();
    shell.channel.close();
  }

  /**
   * An SFTP session on a pooled connection (it takes one channel slot until `end()`), retrying
   * while sshd refuses the channel for lack of sessions. No shell is involved in file work.
   */
  async sftp(signal: AbortSignal, caller?: string): Promise<Outcome<{ sftp: SFTPWrapper; end(): void }>> {
    for (let attempt = 0; ; attempt += 1) {
      const acquired = await this.acquire(signal, caller);
      if (!acquired.ok) return acquired;
      const lease = acquired.value;
      let silent = false;
      const opened = await new Promise<Outcome<SFTPWrapper>>((resolve) => {
        let settled = false;
        const settle = (outcome: Outcome<SFTPWrapper>): void => {
          if (settled) {
            // Opened after it was given up on: close it, nobody will use it.
            if (outcome.ok) outcome.value.end();
            return;
          }
          settled = true;
          clearTimeout(silence);
          resolve(outcome);
        };
        const silence = setTimeout(() => {
          silent = true;
          settle(silentConnection());
          lease.abandon('it did not answer an SFTP request');
        }, CHANNEL_OPEN_TIMEOUT_MS);
        try {
          lease.client.sftp((error, sftp) => {
            if (error) settle(failure(isChannelOpenFailure(error) ? 'ssh_error' : 'host_unreachable', error.message));
            else settle(success(sftp));
          });
        } catch (error) {
          settle(failure('host_unreachable', error instanceof Error ? error.message : String(error)));
        }
      });
      if (opened.ok) {
        const sftp = opened.value;
        sftp.once('close', () => lease.release());
        return success({ sftp, end: () => sftp.end() });
      }
      lease.release();
      if ((opened.error.code !== 'ssh_error' && !silent) || signal.aborted || attempt >= CHANNEL_RETRY_LIMIT) {
        return failure(opened.error.code, `Could not open an SFTP session on host "${this.host.name}": ${opened.error.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, CHANNEL_RETRY_DELAY_MS * Math.min(attempt + 1, 4)));
    }
  }

  /**
   * Open a channel on a given connection without queueing: used to stop a command, which must
   * not wait behind the very work it is freeing room for. It uses the headroom the pool keeps
   * below MaxSessions, and retries briefly if sshd has not yet freed a slot.
   */
  async execNow(client: Client, command: string, signal: AbortSignal): Promise<Outcome<{ channel: ClientChannel; exit: ChannelExit }>> {
    for (let attempt = 0; ; attempt += 1) {
      // Its caller already holds this connection and bounds the wait; a silent one is dropped by then.
      const opened = await openExecChannel(client, command, signal, () => undefined);
      if (opened.ok || opened.error.code !== 'ssh_error' || signal.aborted || attempt >= CHANNEL_RETRY_LIMIT) return opened;
      await new Promise((resolve) => setTimeout(resolve, CHANNEL_RETRY_DELAY_MS));
    }
  }

  /**
   * Why a caller whose deadline passed got no channel, in the pool's own terms: still connecting
   * (the connect deadline is longer than the caller's), the last attempt failed, or every channel
   * of working connections is taken.
   */
  whyNoChannel(timeoutMs: number, caller?: string): Outcome<never> {
    const name = this.host.name;
    const seconds = timeoutMs / 1000;
    const mine = caller === undefined ? 0 : (this.held.get(caller) ?? 0);
    if (mine >= this.callerShare) {
      return failure(
        'host_busy',
        `You already have ${mine} commands or file operations running on host "${name}", the most one user may hold there (half of its ${this.host.maxConnections * this.perConnection} SSH channels). This one waited its whole ${seconds} s timeout for one of yours to finish and did not start; other users are not held up.`,
      );
    }
    if (!this.connections.some((c) => c.state === 'ready')) {
      const connecting = this.connections.filter((c) => c.state === 'connecting');
      if (connecting.length > 0) {
        const since = Math.round((performance.now() - Math.min(...connecting.map((c) => c.openedAt))) / 1000);
        return failure(
          'host_unreachable',
          `Still connecting to host "${name}" (${this.host.address}:${this.host.port}) after ${since} s, so the command did not start within its ${seconds} s timeout. The host may be unreachable; the connection attempt gives up after ${this.host.connectTimeoutMs / 1000} s.`,
        );
      }
      if (this.lastConnectError) return { ok: false, error: this.lastConnectError };
    }
    return failure(
      'host_busy',
      `No SSH channel to host "${name}" became free within the ${seconds} s timeout (too many commands are running on this host); the command did not start.`,
    );
  }

  close(): void {
    this.closed = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    if (this.ready) this.retireReady(this.ready);
    for (const waiter of this.waiters.splice(0)) waiter.resolve(failure('relay_shutting_down', 'The relay is shutting down.'));
    for (const connection of this.connections.splice(0)) this.end(connection);
    if (this.ownJumps) this.jumps.close();
  }

  /** Whether a waiter may take a channel now: within their share (stdio's single user has none). */
  private eligible(waiter: Waiter): boolean {
    return this.withinShare(waiter.caller);
  }

  private withinShare(caller: string | undefined): boolean {
    return caller === undefined || (this.held.get(caller) ?? 0) < this.callerShare;
  }

  private dispatch(): void {
    for (;;) {
      const connection = this.connections.find((c) => c.state === 'ready' && c.active < this.perConnection);
      if (!connection) {
        // Its slot goes to whoever waits (when the channel has closed, its release dispatches again).
        if (this.ready && this.waiters.some((waiter) => this.eligible(waiter))) this.retireReady(this.ready);
        break;
      }
      // FIFO among those within their share: a caller at their share is passed, not blocking others.
      const index = this.waiters.findIndex((waiter) => this.eligible(waiter));
      if (index < 0) break;
      const [waiter] = this.waiters.splice(index, 1);
      if (waiter) waiter.resolve(success(this.lease(connection, waiter.caller)));
    }
    const wanting = this.waiters.filter((waiter) => this.eligible(waiter)).length;
    if (wanting === 0) this.refillReady();
    if (wanting === 0 || this.closed) return;
    const connecting = this.connections.filter((c) => c.state === 'connecting').length;
    if (wanting <= connecting * this.perConnection || this.connections.length >= this.host.maxConnections) return;
    // After a failed open, do not hammer a host that still has working connections: queued
    // callers wait for their slots, and more connections are tried again a moment later.
    const sinceFailure = Date.now() - this.lastFailureAt;
    if (this.connections.length > 0 && sinceFailure < REOPEN_HOLD_OFF_MS) {
      this.reopenTimer ??= setTimeout(() => {
        this.reopenTimer = undefined;
        this.dispatch();
      }, REOPEN_HOLD_OFF_MS - sinceFailure);
      return;
    }
    this.open();
  }

  private lease(connection: Connection, caller: string | undefined): ClaimableLease {
    connection.active += 1;
    let owner = caller;
    if (owner !== undefined) this.held.set(owner, (this.held.get(owner) ?? 0) + 1);
    if (connection.idleTimer) clearTimeout(connection.idleTimer);
    connection.idleTimer = undefined;
    let released = false;
    const letGo = (): void => {
      if (owner === undefined) return;
      const left = (this.held.get(owner) ?? 1) - 1;
      if (left > 0) this.held.set(owner, left);
      else this.held.delete(owner);
      owner = undefined;
    };
    return {
      client: connection.client,
      claim: (next) => {
        if (released || next === owner) return;
        letGo();
        owner = next;
        if (owner !== undefined) this.held.set(owner, (this.held.get(owner) ?? 0) + 1);
      },
      release: () => {
        if (released) return;
        released = true;
        connection.active -= 1;
        letGo();
        if (connection.active === 0 && connection.state === 'ready') this.startIdleTimer(connection);
        this.dispatch();
      },
      abandon: (why) => this.abandon(connection, why),
    };
  }

  /**
   * Drop a connection that stopped answering. Destroying the socket ends its channels at once, so
   * the commands on it report that their outcome is unknown instead of waiting for keepalives.
   */
  private abandon(connection: Connection, why: string): void {
    if (connection.state === 'closed') return;
    log('warn', 'dropped a silent ssh connection', { host: this.host.name, connection: connection.id, why });
    this.remove(connection);
    connection.client.destroy();
    this.dispatch();
  }

  private open(): void {
    const host = this.host;
    const client = new Client();
    const connection: Connection = { id: nextConnectionId++, client, state: 'connecting', openedAt: performance.now(), active: 0 };
    this.connections.push(connection);
    const fail = (error: ToolError, fields: Record<string, unknown> = {}): void => {
      this.lastFailureAt = Date.now();
      this.lastConnectError = error;
      this.logFailure(error, fields);
      this.remove(connection);
      // Only give up on waiters when nothing else could serve them; otherwise they keep waiting.
      const alive = this.connections.some((c) => c.state !== 'closed');
      if (!alive) for (const waiter of this.waiters.splice(0)) waiter.resolve({ ok: false, error });
      else this.dispatch();
    };
    const attempt = connectAttempt(host, this.knownHosts);
    if (!attempt.ok) {
      fail(attempt.error);
      return;
    }
    // Behind jump hosts, the target's errors say which way it was reached.
    const via = host.jump && host.jump.length > 0 ? ` (reached through jump host ${host.jump.map((hop) => `"${hop.name}"`).join(', ')})` : '';

    client.on('connect', () => {
      // ssh2 never sets TCP_NODELAY; without it every small exchange waits out Nagle + delayed ACK (~40 ms).
      client.setNoDelay(true);
    });
    client.on('ready', () => {
      connection.state = 'ready';
      this.lastConnectError = null;
      this.loggedFailure = undefined;
      log('debug', 'ssh connection ready', { host: host.name, connection: connection.id });
      this.dispatch();
      // Opened for waiters that have since given up: let it idle out like any other.
      if (connection.active === 0) this.startIdleTimer(connection);
    });
    client.on('error', (error: Error) => {
      if (connection.state === 'connecting') {
        const refused = attempt.value.refusal();
        // The trust command in a host key error appends the very key the relay was shown, so it works for a target behind a jump too.
        const toolError = refused ? hostKeyError(host, refused, this.knownHosts.recordFile) : attempt.value.explain(connectError(error, host));
        const fields = refused ? { fingerprint: refused.fingerprint, knownHosts: this.knownHosts.recordFile } : {};
        fail({ code: toolError.code, message: toolError.message + via }, fields);
      } else {
        log('warn', 'ssh connection error', { host: host.name, connection: connection.id, error: error.message });
      }
    });
    client.on('close', () => {
      if (connection.state === 'connecting') {
        fail({ code: 'host_unreachable', message: `Host "${host.name}" closed the connection during the SSH handshake${via}.` });
        return;
      }
      log('debug', 'ssh connection closed', { host: host.name, connection: connection.id });
      this.remove(connection);
      this.dispatch();
    });
    const start = (sock?: ClientChannel): void => {
      try {
        attempt.value.start(client, sock);
      } catch (error) {
        // ssh2 throws synchronously for unusable options such as a key it cannot parse.
        fail({
          code: 'auth_failed',
          message: `Cannot use the credentials configured for host "${host.name}": ${error instanceof Error ? error.message : String(error)}`,
        });
      }
    };
    if (!host.jump || host.jump.length === 0) {
      start();
      return;
    }
    void this.jumps.tunnel(host.jump, host).then((tunnel) => {
      if (connection.state === 'closed') {
        // The pool was closed (or gave up on this attempt) while the hops were connecting.
        if (tunnel.ok) tunnel.value.destroy();
        return;
      }
      if (!tunnel.ok) {
        fail(tunnel.error, { through: host.jump?.map((hop) => hop.name) });
        return;
      }
      start(tunnel.value);
    });
  }

  /**
   * A host that fails the same way on every call would otherwise log the same line per call: log
   * a failure when it differs from the last one logged, and the repeats at debug level only.
   */
  private logFailure(error: ToolError, fields: Record<string, unknown>): void {
    const key = `${error.code}\n${error.message}`;
    const repeat = key === this.loggedFailure;
    this.loggedFailure = key;
    log(repeat ? 'debug' : 'warn', repeat ? 'ssh connect failed again' : 'ssh connect failed', { host: this.host.name, code: error.code, ...fields });
  }

  /**
   * At start, before any call, for a strict host with no trusted key yet: read the key it offers
   * (no login) and say so once, with its fingerprint and the command that trusts it. Bounded by
   * KEY_CHECK_TIMEOUT_MS; a host that does not answer is left to the first call to report. A host
   * behind jump hosts is not reachable from here: its first call reports its key.
   */
  async checkHostKey(): Promise<void> {
    const host = this.host;
    // Pinned, or accept-new (which records an unknown key on first use): nothing to ask of the operator.
    if (host.hostKeyFingerprints.length > 0 || !host.strictHostKeyChecking || (host.jump?.length ?? 0) > 0) return;
    const files = knownHostsFor(host, this.knownHosts);
    let known: KnownHostKey[];
    try {
      known = readKnownHostKeys(files, host.address, host.port);
    } catch {
      return; // The first call reports an unreadable known_hosts file.
    }
    // A host with a trusted key is not contacted: no handshake per host in its logs on every start.
    // Should its key have changed, the first call says so (and it is logged once).
    if (known.some((key) => key.marker === undefined)) return;
    const blob = await offeredHostKey({
      address: host.address,
      port: host.port,
      username: host.username,
      algorithms: hostKeyAlgorithmsFor(known),
      timeoutMs: Math.min(host.connectTimeoutMs, KEY_CHECK_TIMEOUT_MS),
    });
    if (blob === undefined || this.closed) return;
    const policy = { host: host.address, port: host.port, strict: true, knownHostsFiles: files, recordFile: this.knownHosts.recordFile };
    const decision = decideHostKey(policy, blob);
    if (decision.ok) return;
    const error = hostKeyError(host, decision, this.knownHosts.recordFile);
    // Logged as a connect failure would be, so the first call that fails the same way adds no line.
    this.logFailure(error, { fingerprint: decision.fingerprint, knownHosts: this.knownHosts.recordFile });
    const command = trustRefusedKey(decision, this.knownHosts.recordFile);
    if (decision.reason !== 'unknown' || command === undefined) {
      notice(error.message);
      return;
    }
    notice(
      [
        `Host "${host.name}" (${host.address}:${host.port}) offers a ${decision.keyType} host key that this relay does not trust yet; calls to it fail with host_key_unknown.`,
        `  Fingerprint: ${decision.fingerprint}`,
        `  Check it out of band, on the host itself (its console, or a session you already trust): ${HOST_FINGERPRINTS_COMMAND}`,
        `  If it matches, trust it (run as the user the relay runs as; no restart needed):`,
        `    ${command}`,
      ].join('\n'),
    );
  }

  private startIdleTimer(connection: Connection): void {
    if (connection.idleTimer) clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => this.retire(connection), IDLE_TIMEOUT_MS);
    connection.idleTimer.unref();
  }

  private retire(connection: Connection): void {
    if (connection.active > 0) return;
    this.remove(connection);
    this.end(connection);
  }

  private remove(connection: Connection): void {
    connection.state = 'closed';
    if (connection.idleTimer) clearTimeout(connection.idleTimer);
    const index = this.connections.indexOf(connection);
    if (index >= 0) this.connections.splice(index, 1);
  }

  private end(connection: Connection): void {
    connection.state = 'closed';
    if (connection.idleTimer) clearTimeout(connection.idleTimer);
    connection.client.end();
  }
}

export class SshPools {
  private readonly pools = new Map<string, HostPool>();
  /** One connection per jump host, shared by all the hosts behind it. */
  private readonly jumps: JumpConnections;

  constructor(hosts: HostConfig[], knownHosts: KnownHostsSettings) {
    this.jumps = new JumpConnections((hop) => connectAttempt(hop, knownHosts), IDLE_TIMEOUT_MS);
    for (const host of hosts) this.pools.set(host.name, new HostPool(host, knownHosts, this.jumps));
  }

  get(name: string): HostPool | undefined {
    return this.pools.get(name);
  }

  names(): string[] {
    return [...this.pools.keys()];
  }

  /** Every host's start-up key check, KEY_CHECKS_AT_ONCE at a time; resolves when all are done (each is bounded). */
  async checkHostKeys(): Promise<void> {
    const queue = [...this.pools.values()];
    const worker = async (): Promise<void> => {
      for (let pool = queue.shift(); pool !== undefined; pool = queue.shift()) await pool.checkHostKey();
    };
    await Promise.all(Array.from({ length: Math.min(KEY_CHECKS_AT_ONCE, queue.length) }, worker));
  }

  closeAll(): void {
    for (const pool of this.pools.values()) pool.close();
    this.jumps.close();
  }
}
