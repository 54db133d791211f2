/**
 * Running one command on a host with a timeout that really stops it.
 *
 * Without a pty, closing an SSH channel does not stop the remote command. Two levers reach it:
 * OpenSSH (7.9 and later) turns a channel `signal` request into a signal to the session's whole
 * process group, and, for servers that ignore such requests, the relay opens a second channel
 * and signals the group itself. For that second lever the command runs under a small wrapper:
 * the login shell sshd starts for the channel is a session and process-group leader (sshd calls
 * setsid() for every session), and the wrapper first prints that shell's PID, i.e. the group id,
 * between marker bytes on stdout. The user's command is passed to `eval` as one single-quoted
 * word, so the login shell parses it exactly as `ssh host 'cmd'` would; its stdin is /dev/null.
 * The login shell must be POSIX-like (sh, bash, dash, ash, ksh, zsh).
 */
import type { Client, ClientChannel } from 'ssh2';
import { failure, success, type Outcome } from '../shared/errors.ts';
import { cutAt } from '../shared/exec-output.ts';
import type { ExecOperation, ExecResultFrame } from '../shared/protocol.ts';
import { quoteShellWord } from '../shared/shell-quote.ts';
import type { HostPool } from './ssh-pool.ts';

export type OutputSink = (stream: 'stdout' | 'stderr', text: string) => void;

const MARKER = '\x1emre-pgid=';
const MARKER_END = '\x1e\n';
/** Where the PID marker must appear; a chatty shell startup file may print before it. */
const MARKER_SEARCH_BYTES = 4096;
/** The process group gets this long between TERM and KILL (in steps of 0.1 s on the host). */
const KILL_GRACE_STEPS = 20;
const KILL_GRACE_MS = KILL_GRACE_STEPS * 100;
/** Bound on opening the second channel used to signal the group. */
const KILL_CHANNEL_TIMEOUT_MS = 2_000;
/** After KILL, how long to wait for the channel to close before giving up on confirming. */
const CLOSE_AFTER_KILL_MS = 1_000;

/** printf format that prints the marker around one number (octal escapes: no raw control bytes in the command). */
const MARKER_FORMAT = `${MARKER.replace('\x1e', '\\036')}%s${MARKER_END.replace('\x1e', '\\036').replace('\n', '\\n')}`;

export function wrapCommand(command: string): string {
  return `printf '${MARKER_FORMAT}' "$$"; eval ${quoteShellWord(command)} </dev/null`;
}

/**
 * A command inside a Proxmox container: `pct exec ID -- bash -c SCRIPT`. The container's processes
 * live in their own namespaces, so signalling the SSH session on the host does not reach them.
 * The script therefore runs the command as a background job with job control on (`set -m`),
 * which gives the job its own process group inside the container; the job prints that group's id
 * first, and a stop signals the group from inside the container (containerKillCommand).
 */
export function containerCommand(ctid: string, command: string): string {
  // Job control only while the job starts: left on, bash would also report the job's end on stderr.
  const script = `set -m; ( printf '${MARKER_FORMAT}' "$BASHPID"; eval ${quoteShellWord(command)} ) </dev/null & set +m; wait "$!"`;
  return ['pct', 'exec', ctid, '--', 'bash', '-c', script].map(quoteShellWord).join(' ');
}

export function containerKillCommand(ctid: string, pgid: number): string {
  return ['pct', 'exec', ctid, '--', 'sh', '-c', killGroupCommand(pgid)].map(quoteShellWord).join(' ');
}

export function killGroupCommand(pgid: number): string {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new Error(`refusing to signal process group ${pgid}`);
  return (
    // No "--": dash's kill (sh on Debian, and inside many containers) refuses it; "-PGID" after
    // the signal name is a process group in every POSIX shell.
    `kill -TERM -${pgid} 2>/dev/null || exit 0; ` +
    `n=0; while [ "$n" -lt ${KILL_GRACE_STEPS} ] && kill -0 -${pgid} 2>/dev/null; do sleep 0.1; n=$((n+1)); done; ` +
    `kill -KILL -${pgid} 2>/dev/null; exit 0`
  );
}

/** Keeps the first `maxChars` characters of a stream (decoded as UTF-8), counts the rest. */
class StreamCapture {
  bytes = 0;
  kept = 0;
  truncated = false;
  private readonly decoder = new TextDecoder('utf-8');
  private readonly maxChars: number;
  private readonly emit: (text: string) => void;

  constructor(maxChars: number, emit: (text: string) => void) {
    this.maxChars = maxChars;
    this.emit = emit;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    if (this.kept >= this.maxChars) {
      this.truncated = true;
      return;
    }
    this.keep(this.decoder.decode(chunk, { stream: true }));
  }

  finish(): void {
    if (this.kept < this.maxChars) this.keep(this.decoder.decode());
  }

  private keep(text: string): void {
    if (text.length === 0) return;
    const room = this.maxChars - this.kept;
    let kept = text;
    if (text.length > room) {
      kept = cutAt(text, room);
      this.truncated = true;
    }
    this.kept += kept.length;
    if (kept.length > 0) this.emit(kept);
  }
}

/** Finds and removes the PID marker at the start of stdout, passing everything else through. */
class MarkerFilter {
  pgid: number | null = null;
  private pending: Buffer | null = Buffer.alloc(0);
  private readonly forward: (chunk: Uint8Array) => void;

  constructor(forward: (chunk: Uint8Array) => void) {
    this.forward = forward;
  }

  push(chunk: Buffer): void {
    if (this.pending === null) {
      this.forward(chunk);
      return;
    }
    const buffered = Buffer.concat([this.pending, chunk]);
    const start = buffered.indexOf(MARKER, 0, 'latin1');
    if (start >= 0) {
      const end = buffered.indexOf(MARKER_END, start + MARKER.length, 'latin1');
      if (end >= 0) {
        const digits = buffered.subarray(start + MARKER.length, end).toString('latin1');
        if (/^[0-9]{1,10}$/.test(digits)) this.pgid = Number(digits);
        this.pending = null;
        if (start > 0) this.forward(buffered.subarray(0, start));
        this.forward(buffered.subarray(end + MARKER_END.length));
        return;
      }
    }
    if (buffered.length > MARKER_SEARCH_BYTES) {
      // No marker (a startup file printed too much first): output still flows, and stopping
      // relies on the channel signal alone.
      this.pending = null;
      this.forward(buffered);
      return;
    }
    this.pending = buffered;
  }

  flush(): void {
    if (this.pending && this.pending.length > 0) this.forward(this.pending);
    this.pending = null;
  }
}

/**
 * Stop a running command: TERM to its process group through both levers, KILL after the grace
 * period if the channel is still open. Resolves true when the channel closed, i.e. the login
 * shell (the group leader) is gone; false when that could not be confirmed.
 */
async function stopProcessGroup(
  pool: HostPool,
  client: Client,
  pgid: number | null,
  channel: ClientChannel,
  closed: Promise<void>,
  killCommand: (pgid: number) => string,
): Promise<boolean> {
  const waitClosed = (ms: number): Promise<boolean> =>
    Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
  channel.signal('TERM');
  if (pgid !== null) {
    // The script escalates to KILL on the host by itself; its channel just needs draining to close.
    void pool.execNow(client, killCommand(pgid), AbortSignal.timeout(KILL_CHANNEL_TIMEOUT_MS)).then((killer) => {
      if (!killer.ok) return;
      killer.value.channel.resume();
      killer.value.channel.stderr.resume();
    });
  }
  if (await waitClosed(KILL_GRACE_MS + 500)) return true;
  channel.signal('KILL');
  return waitClosed(CLOSE_AFTER_KILL_MS);
}

export async function runExec(pool: HostPool, op: ExecOperation, onOutput: OutputSink, signal: AbortSignal): Promise<Outcome<ExecResultFrame>> {
  const started = performance.now();
  const deadline = AbortSignal.timeout(op.timeoutMs);
  const stopSignal = AbortSignal.any([signal, deadline]);
  const ctid = op.guest?.kind === 'lxc' ? op.guest.id : null;
  const opened = await pool.exec(ctid ? containerCommand(ctid, op.command) : wrapCommand(op.command), stopSignal);
  if (!opened.ok) {
    if (deadline.aborted) {
      return failure('host_busy', `No SSH channel to host "${pool.host.name}" became free within the ${op.timeoutMs / 1000} s timeout; the command did not start.`);
    }
    return opened;
  }
  const { channel, exit, lease } = opened.value;
  const stdout = new StreamCapture(op.maxChars, (text) => onOutput('stdout', text));
  const stderr = new StreamCapture(op.maxChars, (text) => onOutput('stderr', text));
  const marker = new MarkerFilter((chunk) => stdout.push(chunk));
  channel.on('data', (chunk: Buffer) => marker.push(chunk));
  channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  // stdin stays open (the wrapper gives the command /dev/null): ssh2 drops signal requests on a
  // channel whose input has been ended.

  let channelClosed = false;
  const closed = new Promise<void>((resolve) =>
    channel.once('close', () => {
      channelClosed = true;
      resolve();
    }),
  );
  const stopRequested = new Promise<void>((resolve) => {
    if (stopSignal.aborted) resolve();
    else stopSignal.addEventListener('abort', () => resolve(), { once: true });
  });
  await Promise.race([closed, stopRequested]);
  let stopping: 'timeout' | 'cancel' | null = null;
  let stopConfirmed = true;
  // A command that finished in the same instant as its deadline has finished: report its exit.
  if (!channelClosed) {
    stopping = deadline.aborted ? 'timeout' : 'cancel';
    stopConfirmed = await stopProcessGroup(pool, lease.client, marker.pgid, channel, closed, ctid ? (pgid) => containerKillCommand(ctid, pgid) : killGroupCommand);
    if (!channelClosed) channel.close();
  }
  marker.flush();
  stdout.finish();
  stderr.finish();

  if (stopping === null && !exit.exited) {
    return failure(
      'host_unreachable',
      `The connection to host "${pool.host.name}" was lost while the command was running; whether it finished is unknown.`,
    );
  }
  return success({
    op: 'exec',
    exitCode: stopping === null ? exit.code : null,
    signal: stopping === null ? exit.signal : null,
    timedOut: stopping === 'timeout',
    cancelled: stopping === 'cancel',
    stopConfirmed,
    stdoutBytes: stdout.bytes,
    stderrBytes: stderr.bytes,
    stdoutTruncated: stdout.truncated,
    stderrTruncated: stderr.truncated,
    durationMs: performance.now() - started,
  });
}
