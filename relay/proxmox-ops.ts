/**
 * Proxmox VE on a host marked `proxmox` in the relay config: fixed `pct` / `qm` commands
 * (list, status, start, stop, shutdown) and commands inside a VM through its guest agent
 * (`qm guest exec`). Every word is quoted; the only word from a caller is the id, and the protocol
 * has already checked it is digits only. Commands inside containers go through runExec (exec.ts),
 * which knows how to stop them.
 */
import { failure, success, type Outcome } from '../shared/errors.ts';
import { guestExecAnswer, guestExecDeadlineMs, pveArgv, pveDeadlineMs } from '../shared/proxmox.ts';
import type { ExecOperation, ExecResultFrame, PveOperation, PveResultFrame } from '../shared/protocol.ts';
import { quoteShellWord } from '../shared/shell-quote.ts';
import { runExec, type OutputSink } from './exec.ts';
import type { HostChannels } from './ssh-pool.ts';
import { formatCount } from '../shared/format-count.ts';

/** Characters of pct/qm output kept per stream: their answers are short. */
export const PVE_OUTPUT_CHARS = 64 * 1024;

export interface ArgvRun {
  frame: ExecResultFrame;
  exitCode: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** Run argv (every word quoted) on the host, keeping its output (bounded) and exit code. */
export async function runArgv(pool: HostChannels, argv: string[], timeoutMs: number, maxChars: number, signal: AbortSignal): Promise<Outcome<ArgvRun>> {
  const output = { stdout: '', stderr: '' };
  const sink: OutputSink = (stream, text) => {
    output[stream] += text;
  };
  const ran = await runExec(pool, { op: 'exec', host: pool.host.name, command: argv.map(quoteShellWord).join(' '), timeoutMs, maxChars }, sink, signal);
  if (!ran.ok) return ran;
  if (ran.value.cancelled)
    return failure('cancelled', `${argv.slice(0, 3).join(' ')} was cancelled${ran.value.stopConfirmed ? '' : '; it may still be running'}.`);
  return success({ frame: ran.value, exitCode: ran.value.exitCode, timedOut: ran.value.timedOut, ...output });
}

export async function runPve(pool: HostChannels, op: PveOperation, signal: AbortSignal): Promise<Outcome<PveResultFrame>> {
  const argv = pveArgv(op.kind, op.action, op.id, {
    ...(op.verbose !== undefined ? { verbose: op.verbose } : {}),
    ...(op.timeoutSeconds !== undefined ? { timeoutSeconds: op.timeoutSeconds } : {}),
  });
  const ran = await runArgv(pool, argv, pveDeadlineMs(op.action, op.timeoutSeconds), PVE_OUTPUT_CHARS, signal);
  if (!ran.ok) return ran;
  const { frame, stdout, stderr } = ran.value;
  return success({ op: 'pve', exitCode: frame.exitCode, timedOut: frame.timedOut, stdout, stderr, durationMs: frame.durationMs });
}

function flag(value: 0 | 1 | boolean | undefined): boolean {
  return value === 1 || value === true;
}

/**
 * A command inside a VM through the QEMU guest agent. qm waits up to the timeout and prints the
 * agent's answer as JSON. The agent has no way to stop a command, so after a timeout it may still
 * be running in the guest: that is reported (stopConfirmed false), never hidden.
 */
export async function runGuestExec(
  pool: HostChannels,
  op: ExecOperation & { guest: { kind: 'qemu'; id: string } },
  onOutput: OutputSink,
  signal: AbortSignal,
): Promise<Outcome<ExecResultFrame>> {
  const seconds = Math.max(1, Math.ceil(op.timeoutMs / 1000));
  const argv = ['qm', 'guest', 'exec', op.guest.id, '--timeout', String(seconds), '--', 'bash', '-c', op.command];
  // The answer carries the output JSON-escaped: keep room for it. A cancel is reported as such.
  const output = { stdout: '', stderr: '' };
  const executed = await runExec(
    pool,
    {
      op: 'exec',
      host: op.host,
      command: argv.map(quoteShellWord).join(' '),
      timeoutMs: guestExecDeadlineMs('qemu', op.timeoutMs),
      maxChars: Math.min(op.maxChars * 7 + PVE_OUTPUT_CHARS, 50_000_000),
    },
    (stream, text) => {
      output[stream] += text;
    },
    signal,
  );
  if (!executed.ok) return executed;
  const ran = { value: { frame: executed.value, ...output } };
  const { frame, stdout, stderr } = ran.value;
  const start = stdout.indexOf('{');
  let answer: ReturnType<typeof guestExecAnswer.safeParse> | null = null;
  if (start >= 0) {
    try {
      answer = guestExecAnswer.safeParse(JSON.parse(stdout.slice(start)));
    } catch {
      answer = null;
    }
  }
  if (!answer?.success && frame.stdoutTruncated) {
    // Cut off, the JSON cannot be read, so neither can the exit code: say so rather than guess.
    return failure(
      'guest_error',
      `The guest agent's answer was larger than the relay keeps (${formatCount(frame.stdoutBytes)} bytes), so the command's exit code is unknown. Narrow the command's output (head, tail, grep).`,
    );
  }
  if (!answer?.success) {
    // qm refused (no agent, VM stopped, bad id…): its own words and exit code are the result.
    onOutput('stderr', (stderr || stdout).slice(0, op.maxChars));
    return success({
      ...frame,
      stdoutBytes: 0,
      stderrBytes: Buffer.byteLength(stderr || stdout),
      stdoutTruncated: false,
      stderrTruncated: (stderr || stdout).length > op.maxChars,
    });
  }
  const data = answer.data;
  const out = data['out-data'] ?? '';
  const err = data['err-data'] ?? '';
  if (out) onOutput('stdout', out.slice(0, op.maxChars));
  if (err) onOutput('stderr', err.slice(0, op.maxChars));
  const exited = flag(data.exited);
  return success({
    op: 'exec',
    exitCode: exited ? (data.exitcode ?? null) : null,
    signal: exited && data.signal !== undefined ? String(data.signal) : null,
    timedOut: !exited && !frame.cancelled,
    cancelled: frame.cancelled,
    // Nothing can stop a guest-agent command once started.
    stopConfirmed: exited,
    stdoutBytes: Buffer.byteLength(out),
    stderrBytes: Buffer.byteLength(err),
    stdoutTruncated: out.length > op.maxChars || flag(data['out-truncated']),
    stderrTruncated: err.length > op.maxChars || flag(data['err-truncated']),
    durationMs: frame.durationMs,
  });
}
