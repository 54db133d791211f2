/**
 * Turning a finished command into what the model reads. Two formats, as in the seed: `text`
 * (sections for stdout, stderr and the exit code) and `json` (one JSON object, also returned as
 * structuredContent). Truncation never removes the exit code: the limit applies to the output
 * streams only, and the status lines are written after them.
 */
import { z } from 'zod';
import type { ExecResultFrame } from './protocol.ts';
import { formatCount } from './format-count.ts';

export interface ExecOutcome {
  host: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  cancelled: boolean;
  /** For a stopped command: whether it was seen to end after being signalled. */
  stopConfirmed: boolean;
  /** Processes of a stopped command seen alive after KILL ("PID (command)"); empty when none. */
  processesLeft: string[];
  /** The part of each stream the relay kept (at most the character limit), decoded as UTF-8. */
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  durationMs: number;
  timeoutMs: number;
}

/** Combine the relay's exec result with the output it streamed. */
export function execOutcomeFrom(host: string, frame: ExecResultFrame, stdout: string, stderr: string, timeoutMs: number): ExecOutcome {
  return {
    host,
    exitCode: frame.exitCode,
    signal: frame.signal,
    timedOut: frame.timedOut,
    cancelled: frame.cancelled,
    stopConfirmed: frame.stopConfirmed,
    processesLeft: frame.processesLeft ?? [],
    stdout,
    stderr,
    stdoutBytes: frame.stdoutBytes,
    stderrBytes: frame.stderrBytes,
    stdoutTruncated: frame.stdoutTruncated,
    stderrTruncated: frame.stderrTruncated,
    durationMs: frame.durationMs,
    timeoutMs,
  };
}

export const execStructuredOutput = z.object({
  host: z.string(),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  timed_out: z.boolean(),
  stdout: z.string(),
  stderr: z.string(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  stdout_total_bytes: z.number().int(),
  stderr_total_bytes: z.number().int(),
  duration_ms: z.number().int(),
  /** Present when a stopped command left processes that may still run ("PID (command)"). */
  processes_may_still_run: z.array(z.string()).optional(),
});
export type ExecStructuredOutput = z.infer<typeof execStructuredOutput>;

export interface FormattedResult {
  text: string;
  structured: ExecStructuredOutput;
  /** A command that did not finish (timed out) is reported as an error; a non-zero exit is not. */
  isError: boolean;
}

/** Cut `text` to at most `max` UTF-16 units without splitting a surrogate pair. */
export function cutAt(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max);
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

/**
 * Split one character budget between two streams: each gets half, and whatever one does not need
 * goes to the other, so a short stderr is never squeezed out by a long stdout.
 */
export function shareBudget(first: number, second: number, budget: number): [number, number] {
  if (first + second <= budget) return [first, second];
  const half = Math.floor(budget / 2);
  if (second <= half) return [budget - second, second];
  if (first <= half) return [first, budget - first];
  return [half, budget - half];
}

function truncationNote(stream: string, shown: number, totalBytes: number): string {
  return `[${stream} truncated: showing the first ${formatCount(shown)} characters of ${formatCount(totalBytes)} bytes. Narrow the command (head, tail, grep, sed -n) to read other parts.]`;
}

function statusLines(outcome: ExecOutcome): string[] {
  const lines: string[] = [];
  const how = outcome.stopConfirmed
    ? 'was stopped (its process group and every process it started were sent TERM, then KILL)'
    : 'was signalled to stop (TERM, then KILL) but could not be confirmed to have ended: check the host, e.g. with ps';
  if (outcome.timedOut) {
    lines.push(`TIMED OUT: the command was still running after ${outcome.timeoutMs / 1000} s and ${how}. Output up to that point is shown above.`);
  }
  if (outcome.cancelled) lines.push(`CANCELLED: at the caller's request the command ${how}.`);
  if (outcome.processesLeft.length > 0) lines.push(`SOME PROCESSES MAY STILL RUN on the host: ${outcome.processesLeft.join(', ')}.`);
  if (outcome.exitCode !== null) lines.push(`EXIT CODE: ${outcome.exitCode}`);
  else if (outcome.signal) lines.push(`EXIT CODE: none (terminated by signal ${outcome.signal})`);
  else lines.push('EXIT CODE: none (the command did not finish)');
  return lines;
}

export function formatExecResult(outcome: ExecOutcome, format: 'text' | 'json', characterLimit: number): FormattedResult {
  const [stdoutBudget, stderrBudget] = shareBudget(outcome.stdout.length, outcome.stderr.length, characterLimit);
  const stdout = cutAt(outcome.stdout, stdoutBudget);
  const stderr = cutAt(outcome.stderr, stderrBudget);
  const stdoutTruncated = outcome.stdoutTruncated || stdout.length < outcome.stdout.length;
  const stderrTruncated = outcome.stderrTruncated || stderr.length < outcome.stderr.length;

  const structured: ExecStructuredOutput = {
    host: outcome.host,
    exit_code: outcome.exitCode,
    signal: outcome.signal,
    timed_out: outcome.timedOut,
    stdout,
    stderr,
    stdout_truncated: stdoutTruncated,
    stderr_truncated: stderrTruncated,
    stdout_total_bytes: outcome.stdoutBytes,
    stderr_total_bytes: outcome.stderrBytes,
    duration_ms: Math.round(outcome.durationMs),
    ...(outcome.processesLeft.length > 0 ? { processes_may_still_run: outcome.processesLeft } : {}),
  };
  const isError = outcome.timedOut || outcome.cancelled;
  if (format === 'json') return { text: JSON.stringify(structured, null, 2), structured, isError };

  const sections: string[] = [];
  sections.push(stdout.length > 0 ? `STDOUT:\n${stdout}` : 'STDOUT: (empty)');
  if (stdoutTruncated) sections.push(truncationNote('stdout', stdout.length, outcome.stdoutBytes));
  sections.push(stderr.length > 0 ? `STDERR:\n${stderr}` : 'STDERR: (empty)');
  if (stderrTruncated) sections.push(truncationNote('stderr', stderr.length, outcome.stderrBytes));
  sections.push(statusLines(outcome).join('\n'));
  return { text: sections.join('\n\n'), structured, isError };
}
