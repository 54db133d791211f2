/**
 * Running one command on a host with a timeout that really stops it.
 *
 * Without a pty, closing an SSH channel does not stop the remote command. Two levers reach it:
 * OpenSSH (7.9 and later) turns a channel `signal` request into a signal to the session's whole
 * process group, and the relay opens a second channel that runs a stop script on the host. The
 * command runs under a wrapper (host-stop.ts) that prints the group id and output pipe first, marks
 * everything it starts with a per-run environment variable, and starts a host-side watchdog that
 * enforces the deadline if the relay is gone. The stop script stops the group, the marked
 * processes (setsid / nohup children included), whatever still writes to the command's output,
 * and their descendants, and reports any it saw survive; the answer carries them.
 * The login shell must be POSIX-like (sh, bash, dash, ash, ksh, zsh).
 */
import type { Client, ClientChannel, PseudoTtyOptions } from 'ssh2';
import { failure, success, type Outcome } from '../shared/errors.ts';
import { cutAt } from '../shared/exec-output.ts';
import type { ExecOperation, ExecResultFrame } from '../shared/protocol.ts';
import {
  containerCommand,
  containerStopCommand,
  DEFAULT_STOP,
  wrapCommand,
  MARKER,
  MARKER_END,
  newRunId,
  parseLeft,
  parseMarker,
  readyShellInput,
  stopCommand,
  sudoStopCommand,
  TERM_SENT,
  type RunIdentity,
} from './host-stop.ts';
import { CHANNEL_OPEN_TIMEOUT_MS, type ChannelExit, type HostChannels } from './ssh-pool.ts';
import { SudoStderrFilter, sudoRefused, type SudoMode } from './sudo.ts';

export type OutputSink = (stream: 'stdout' | 'stderr', text: string) => void;

const MARKER_END_CRLF = MARKER_END.replace('\n', '\r\n');
/** Where the PID marker must appear; a chatty shell startup file may print before it. */
const MARKER_SEARCH_BYTES = 4096;
/** The run gets this long between TERM and KILL (the stop script's grace on the host). */
const KILL_GRACE_MS = DEFAULT_STOP.graceSteps * 100;
/** Bound on opening the second channel used to stop the run. */
const KILL_CHANNEL_TIMEOUT_MS = 2_000;
/** How long the channel's own TERM waits for the stop script to have sent its TERM first. */
const SCRIPT_TERM_WAIT_MS = 1_000;
/** After KILL, how long to wait for the channel to close before giving up on confirming. */
const CLOSE_AFTER_KILL_MS = 1_000;
/** The stop script's report (one line per process left) is read up to this many bytes. */
const STOP_REPORT_BYTES = 8 * 1024;
/** A run longer than this opens a channel of its own: a ready shell would read it a byte at a time. */
const READY_INPUT_MAX_BYTES = 2048;
/** Bound on the stop script as a whole: grace, a rescan, KILL and the report. */
const STOP_SCRIPT_MS = KILL_GRACE_MS + 5_000;

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
  identity: RunIdentity | null = null;
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
      // A terminal that translates LF to CRLF (a pty whose host ignored ONLCR off) ends it with "\x1e\r\n".
      let end = buffered.indexOf(MARKER_END, start + MARKER.length, 'latin1');
      let endLength = MARKER_END.length;
      if (end < 0) {
        end = buffered.indexOf(MARKER_END_CRLF, start + MARKER.length, 'latin1');
        endLength = MARKER_END_CRLF.length;
      }
      if (end >= 0) {
        this.identity = parseMarker(buffered.subarray(start + MARKER.length, end).toString('latin1'));
        this.pending = null;
        if (start > 0) this.forward(buffered.subarray(0, start));
        this.forward(buffered.subarray(end + endLength));
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

/** What runs on the stop channel, and what the relay writes on its stdin (a sudo password line). */
interface StopCommand {
  command: string;
  stdin?: string;
}

interface Stopped {
  /** The channel closed: the login shell and everything holding the command's output are gone. */
  confirmed: boolean;
  /** Processes of the run the stop script saw alive after KILL ("PID (command)"). */
  left: string[];
  /** The stop script ran to its end (its report is complete). */
  swept: boolean;
}

/** Run the stop script on a second channel and read its report (bounded in bytes and time). */
async function runStopScript(pool: HostChannels, client: Client, stop: StopCommand, onTermSent: () => void): Promise<{ swept: boolean; left: string[] }> {
  const killer = await pool.execNow(client, stop.command, AbortSignal.timeout(KILL_CHANNEL_TIMEOUT_MS));
  if (!killer.ok) {
    onTermSent();
    return { swept: false, left: [] };
  }
  const { channel } = killer.value;
  // A stop under sudo: the password line for the stop's own reader (sudo.ts), as data, never argv.
  if (stop.stdin !== undefined) channel.write(stop.stdin);
  let report = '';
  channel.on('data', (chunk: Buffer) => {
    if (report.length < STOP_REPORT_BYTES) report += chunk.toString('utf8').slice(0, STOP_REPORT_BYTES - report.length);
    if (report.includes(`${TERM_SENT}\n`)) onTermSent();
  });
  channel.once('close', onTermSent);
  channel.stderr.resume();
  const finished = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), STOP_SCRIPT_MS);
    timer.unref();
    channel.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (!finished) channel.close();
  return { swept: finished && killer.value.exit.code === 0, left: parseLeft(report) };
}

/** Whether the channel closed (`closed` settled) within `ms`. */
function closedWithin(closed: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
}

/**
 * Stop a running command: TERM to its process group through the channel, and the stop script on
 * a second channel (group, marker and output-pipe holders, TERM then KILL, and a report of what is
 * left). KILL through the channel too if it is still open after the grace period.
 */
async function stopRun(
  pool: HostChannels,
  client: Client,
  identity: RunIdentity | null,
  channel: ClientChannel,
  closed: Promise<void>,
  command: ((identity: RunIdentity) => StopCommand) | null,
): Promise<Stopped> {
  // Where the wrapper could not name the run's output pipe (a kernel whose fdinfo has no inode), the
  // stop script reads it off the login shell, which the channel's TERM would kill first: then the
  // channel's TERM waits until the script has sent its own (or could not start). It is the lever
  // for hosts where a second channel cannot run.
  let termSent: () => void = () => undefined;
  const scriptTermSent = new Promise<void>((resolve) => {
    termSent = resolve;
  });
  const sweep = identity && command ? runStopScript(pool, client, command(identity), termSent) : Promise.resolve({ swept: false, left: [] });
  if (!identity || !command || identity.output !== null) termSent();
  await Promise.race([scriptTermSent, new Promise<void>((resolve) => setTimeout(resolve, SCRIPT_TERM_WAIT_MS).unref())]);
  channel.signal('TERM');
  let confirmed = await closedWithin(closed, KILL_GRACE_MS + 500);
  if (!confirmed) {
    channel.signal('KILL');
    confirmed = await closedWithin(closed, CLOSE_AFTER_KILL_MS);
  }
  const { swept, left } = await sweep;
  return { confirmed, left, swept };
}

/**
 * The terminal a pty run gets: TERM=dumb (programs keep to plain text) and ONLCR off, so the
 * terminal does not turn each LF the program writes into CRLF: line ends arrive as written, and a
 * bare CR (a progress bar redrawing its line) stays a CR, shown escaped in text results.
 */
function ptyOptions(size: { rows: number; cols: number }): PseudoTtyOptions {
  return { term: 'dumb', rows: size.rows, cols: size.cols, modes: { ONLCR: 0 } };
}

/**
 * The bound on a run written to a ready shell unpinged (ssh-pool.ts OpenedRun.unpinged): anything
 * from the host within CHANNEL_OPEN_TIMEOUT_MS shows it read the run; nothing means the pool gives
 * up on the shell (KILL, and the connection dropped when nothing else runs on it).
 */
class ShownWatch {
  given = false;
  readonly gaveUp: Promise<void>;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(unpinged: { giveUp(): void }) {
    this.gaveUp = new Promise((resolve) => {
      this.timer = setTimeout(() => {
        this.given = true;
        unpinged.giveUp();
        resolve();
      }, CHANNEL_OPEN_TIMEOUT_MS);
    });
  }

  seen(): void {
    clearTimeout(this.timer);
  }
}

/** How long a shell sent KILL gets to close its channel before the relay closes it and reports anyway. */
const CLOSE_AFTER_GIVE_UP_MS = 2_000;

/**
 * The answer for a run the host showed nothing of in time. It did not run only when that is known:
 * the channel closed with the shell killed and no marker (the shell prints it before it runs
 * anything, and sshd forwards output before the exit). Otherwise (the KILL not honoured, the
 * connection silent, or the marker late) whether it ran is unknown, and the answer says so.
 */
async function notShownStarting(
  host: string,
  channel: ClientChannel,
  closed: Promise<void>,
  exit: ChannelExit,
  markerCame: boolean,
): Promise<Outcome<ExecResultFrame>> {
  const closedInTime = await closedWithin(closed, CLOSE_AFTER_GIVE_UP_MS);
  if (!closedInTime) channel.close();
  const waited = `Host "${host}" showed nothing of the command within ${CHANNEL_OPEN_TIMEOUT_MS / 1000} s (its shell or connection stopped answering)`;
  if (closedInTime && !markerCame && exit.exited && exit.signal === 'KILL') {
    return failure('host_unreachable', `${waited}, so the relay killed the shell before it started the command: it did not run.`);
  }
  return failure('host_unreachable', `${waited}, so the relay stopped waiting and killed the shell where it could: whether the command ran is unknown.`);
}

export async function runExec(pool: HostChannels, op: ExecOperation, onOutput: OutputSink, signal: AbortSignal): Promise<Outcome<ExecResultFrame>> {
  const started = performance.now();
  const deadline = AbortSignal.timeout(op.timeoutMs);
  const stopSignal = AbortSignal.any([signal, deadline]);
  const ctid = op.guest?.kind === 'lxc' ? op.guest.id : null;
  const runId = newRunId();
  // A pty never comes with sudo (operations.ts refuses the pair): sudo's stderr must stay apart.
  const sudoPassword = op.sudo ? pool.host.sudoPassword : undefined;
  const sudo: SudoMode | null = op.sudo ? (sudoPassword !== undefined ? 'password' : 'no-password') : null;
  const command = ctid
    ? containerCommand(ctid, op.command, runId, op.timeoutMs)
    : wrapCommand(op.command, runId, op.timeoutMs, DEFAULT_STOP, op.pty ? 'terminal' : 'empty', sudo);
  // A plain run (no terminal, no sudo, on the host itself) may go to a ready shell, when it is short
  // enough to read quickly there (a shell reads its input a byte at a time).
  const ready =
    op.pty || sudo || ctid || Buffer.byteLength(readyShellInput(op.command, runId, op.timeoutMs)) > READY_INPUT_MAX_BYTES
      ? undefined
      : { command: op.command, runId, timeoutMs: op.timeoutMs };
  const opened = await pool.exec(command, stopSignal, op.pty && !ctid ? { pty: ptyOptions(op.pty) } : {}, ready);
  if (!opened.ok) {
    if (deadline.aborted) return pool.whyNoChannel(op.timeoutMs);
    return opened;
  }
  const { channel, exit, lease } = opened.value;
  // A ready shell may mark the run with its own id (its watchdog was waiting under it): stops look for that one.
  const markedAs = opened.value.runId ?? runId;
  // Data on the channel, read by the wrapper's password reader only (relay/sudo.ts); never a word of a command.
  if (sudoPassword !== undefined) channel.write(`${sudoPassword}\n`);
  const stdout = new StreamCapture(op.maxChars, (text) => onOutput('stdout', text));
  const stderr = new StreamCapture(op.maxChars, (text) => onOutput('stderr', text));
  const marker = new MarkerFilter((chunk) => stdout.push(chunk));
  const sudoFilter = sudo ? new SudoStderrFilter((chunk) => stderr.push(chunk)) : null;
  const shown = opened.value.unpinged ? new ShownWatch(opened.value.unpinged) : null;
  channel.on('data', (chunk: Buffer) => {
    shown?.seen();
    marker.push(chunk);
  });
  channel.stderr.on('data', (chunk: Buffer) => {
    shown?.seen();
    if (sudoFilter) sudoFilter.push(chunk);
    else stderr.push(chunk);
  });
  // stdin stays open (the wrapper gives the command /dev/null, or with a pty the terminal, to which
  // nothing is written): ssh2 drops signal requests on a channel whose input has been ended. With a
  // pty, sshd sends stderr through the terminal too: it arrives merged into stdout.

  let channelClosed = false;
  const closed = new Promise<void>((resolve) =>
    channel.once('close', () => {
      channelClosed = true;
      shown?.seen();
      resolve();
    }),
  );
  const stopRequested = new Promise<void>((resolve) => {
    if (stopSignal.aborted) resolve();
    else stopSignal.addEventListener('abort', () => resolve(), { once: true });
  });
  await Promise.race([closed, stopRequested, ...(shown ? [shown.gaveUp] : [])]);
  if (shown?.given) return notShownStarting(pool.host.name, channel, closed, exit, marker.identity !== null);
  // Once root's shell has started (its marker came), only root can stop what it runs: the stop goes
  // through sudo as the run did. Before that, the SSH user's stop reaches sudo itself (same real uid).
  const stopFor = (): ((identity: RunIdentity) => StopCommand) => {
    if (ctid) return (identity) => ({ command: containerStopCommand(ctid, identity, runId) });
    if (sudo && sudoFilter?.started)
      return (identity) => ({ command: sudoStopCommand(identity, runId, sudo), ...(sudoPassword !== undefined ? { stdin: `${sudoPassword}\n` } : {}) });
    return (identity) => ({ command: stopCommand(identity, markedAs) });
  };
  let stopping: 'timeout' | 'cancel' | null = null;
  let stopConfirmed = true;
  let processesLeft: string[] = [];
  // A command that finished in the same instant as its deadline has finished: report its exit.
  if (!channelClosed) {
    stopping = deadline.aborted ? 'timeout' : 'cancel';
    const stopped = await stopRun(pool, lease.client, marker.identity, channel, closed, stopFor());
    stopConfirmed = stopped.confirmed && stopped.swept && stopped.left.length === 0;
    processesLeft = stopped.left;
    if (!channelClosed) channel.close();
  }
  marker.flush();
  stdout.finish();
  stderr.finish();

  if (stopping === null && !exit.exited) {
    return failure('host_unreachable', `The connection to host "${pool.host.name}" was lost while the command was running; whether it finished is unknown.`);
  }
  // sudo never started the command (its marker did not come): sudo refused, and said why on stderr.
  if (sudo && sudoFilter && !sudoFilter.started && stopping === null && exit.code !== 0) {
    return sudoRefused(pool.host.name, sudo, sudoFilter.sudoText(sudoPassword), exit.code);
  }
  return success({
    op: 'exec',
    exitCode: stopping === null ? exit.code : null,
    signal: stopping === null ? exit.signal : null,
    timedOut: stopping === 'timeout',
    cancelled: stopping === 'cancel',
    stopConfirmed,
    ...(processesLeft.length > 0 ? { processesLeft } : {}),
    stdoutBytes: stdout.bytes,
    stderrBytes: stderr.bytes,
    stdoutTruncated: stdout.truncated,
    stderrTruncated: stderr.truncated,
    durationMs: performance.now() - started,
  });
}
