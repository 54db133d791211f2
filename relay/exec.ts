/**
 * Running one command on a host with a timeout that really stops it.
 *
 * Without a pty, closing an SSH channel does not stop the remote command, and ssh2's signal()
 * is ignored by OpenSSH. So the command runs under a small wrapper: the login shell that sshd
 * starts for the channel is a session and process-group leader (sshd calls setsid() for every
 * session), and the wrapper first prints that shell's PID, i.e. the process-group id, between
 * marker bytes on stdout. On timeout or cancel the relay opens a second channel and signals the
 * whole group (TERM, then KILL after a grace period). The user's command itself is passed to
 * `eval` as one single-quoted word, so the login shell parses it exactly as `ssh host 'cmd'` would.
 */
import type { ClientChannel } from 'ssh2';
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
/** Seconds the process group gets between TERM and KILL. */
const KILL_GRACE_STEPS = 20; // × 0.1 s
/** How long to wait for the channel to close once the group was signalled. */
const CLOSE_WAIT_MS = 4_000;

export function wrapCommand(command: string): string {
  return `printf '${MARKER.replace('\x1e', '\\036')}%s${MARKER_END.replace('\x1e', '\\036').replace('\n', '\\n')}' "$$"; eval ${quoteShellWord(command)}`;
}

export function killGroupCommand(pgid: number): string {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new Error(`refusing to signal process group ${pgid}`);
  return (
    `kill -TERM -- -${pgid} 2>/dev/null || exit 0; ` +
    `n=0; while [ "$n" -lt ${KILL_GRACE_STEPS} ] && kill -0 -- -${pgid} 2>/dev/null; do sleep 0.1; n=$((n+1)); done; ` +
    `kill -KILL -- -${pgid} 2>/dev/null; exit 0`
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
      // No marker: the login shell is not POSIX-like. Output still flows; only killing is weaker.
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
 * Signal the command's process group from a second channel. Returns once the signal is on its way;
 * the escalation to KILL runs on the host, so the caller does not wait out the grace period.
 */
async function killProcessGroup(pool: HostPool, pgid: number | null, channel: ClientChannel): Promise<void> {
  if (pgid !== null) {
    const killer = await pool.exec(killGroupCommand(pgid), AbortSignal.timeout(CLOSE_WAIT_MS));
    if (killer.ok) {
      const { channel: killChannel } = killer.value;
      // Drain it so it can close (ssh2 emits close only once its streams are consumed).
      killChannel.resume();
      killChannel.stderr.resume();
      killChannel.end();
      return;
    }
  }
  // The only lever left when no PID was seen; harmless otherwise.
  channel.signal('KILL');
}

export async function runExec(pool: HostPool, op: ExecOperation, onOutput: OutputSink, signal: AbortSignal): Promise<Outcome<ExecResultFrame>> {
  const started = performance.now();
  const deadline = AbortSignal.timeout(op.timeoutMs);
  const stopSignal = AbortSignal.any([signal, deadline]);
  const opened = await pool.exec(wrapCommand(op.command), stopSignal);
  if (!opened.ok) {
    if (deadline.aborted) {
      return failure('host_unreachable', `No SSH channel to host "${pool.host.name}" became available within the ${op.timeoutMs / 1000} s timeout.`);
    }
    return opened;
  }
  const { channel, exit } = opened.value;
  const stdout = new StreamCapture(op.maxChars, (text) => onOutput('stdout', text));
  const stderr = new StreamCapture(op.maxChars, (text) => onOutput('stderr', text));
  const marker = new MarkerFilter((chunk) => stdout.push(chunk));
  let stopping: 'timeout' | 'cancel' | null = null;

  channel.on('data', (chunk: Buffer) => marker.push(chunk));
  channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  // No stdin: a command that reads it sees end-of-file at once, as with `ssh host cmd </dev/null`.
  channel.end();

  const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  const stopped = new Promise<'timeout' | 'cancel'>((resolve) => {
    if (stopSignal.aborted) resolve(deadline.aborted ? 'timeout' : 'cancel');
    else stopSignal.addEventListener('abort', () => resolve(deadline.aborted ? 'timeout' : 'cancel'), { once: true });
  });
  const first = await Promise.race([closed.then(() => null), stopped]);
  if (first !== null) {
    stopping = first;
    await killProcessGroup(pool, marker.pgid, channel);
    const timer = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref());
    await Promise.race([closed, timer]);
    channel.close();
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
    stdoutBytes: stdout.bytes,
    stderrBytes: stderr.bytes,
    stdoutTruncated: stdout.truncated,
    stderrTruncated: stderr.truncated,
    durationMs: performance.now() - started,
  });
}
