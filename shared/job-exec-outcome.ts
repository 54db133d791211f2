/**
 * An ended job seen as the command a synchronous exec would have run: the ExecOutcome that
 * formatExecResult turns into the tool result, so an exec tool called as an MCP task completes
 * with the same answer the synchronous call gives. Like the relay's StreamCapture (relay/exec.ts),
 * each stream keeps its first `maxChars` characters decoded as UTF-8, and is marked truncated when
 * more followed.
 */
import type { Outcome } from './errors.ts';
import { cutAt, type ExecOutcome } from './exec-output.ts';
import type { JobExecutor, JobStream, JobView } from './jobs.ts';
import { MAX_JOB_PAGE_BYTES } from './limits.ts';

/** UTF-8 needs at most 4 bytes a character; one more page covers a character split at the end. */
const MAX_BYTES_PER_CHAR = 4;

interface StreamHead {
  text: string;
  truncated: boolean;
}

/** The first `maxChars` characters of a stream, read page by page with jobOutput. */
export async function readStreamHead(
  executor: Pick<JobExecutor, 'jobOutput'>,
  jobId: string,
  stream: JobStream,
  maxChars: number,
  signal: AbortSignal,
): Promise<Outcome<StreamHead>> {
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let offset = 0;
  let truncated = false;
  // Bounded: every page but the last moves the offset forward by at least one byte (an executor
  // may answer with less than asked), and (maxChars + 1) * 4 bytes always hold more than maxChars
  // characters, which ends the loop.
  const maxPages = (maxChars + 1) * MAX_BYTES_PER_CHAR + 2;
  for (let page = 0; page < maxPages; page += 1) {
    const read = await executor.jobOutput({ jobId, stream, offset, limit: MAX_JOB_PAGE_BYTES }, signal);
    if (!read.ok) return read;
    const { data, size, dropped } = read.value;
    // Output the host no longer keeps (beyond its cap) cannot be shown: start at what it has.
    if (offset < dropped) {
      truncated = true;
      offset = dropped;
      continue;
    }
    offset += data.length;
    const end = offset >= size || data.length === 0;
    text += decoder.decode(data, { stream: !end });
    if (text.length > maxChars) return { ok: true, value: { text: cutAt(text, maxChars), truncated: true } };
    if (end) return { ok: true, value: { text, truncated } };
  }
  return { ok: true, value: { text: cutAt(text, maxChars), truncated: true } };
}

function elapsedMs(view: JobView): number {
  if (view.startedAt === null || view.endedAt === null) return 0;
  return Math.max(0, Date.parse(view.endedAt) - Date.parse(view.startedAt));
}

/** The outcome of an ended job (exited, killed, timed_out or cancelled), with the head of each stream. */
export async function jobExecOutcome(
  executor: Pick<JobExecutor, 'jobOutput'>,
  view: JobView,
  maxChars: number,
  signal: AbortSignal,
): Promise<Outcome<ExecOutcome>> {
  const stdout = await readStreamHead(executor, view.jobId, 'stdout', maxChars, signal);
  if (!stdout.ok) return stdout;
  const stderr = await readStreamHead(executor, view.jobId, 'stderr', maxChars, signal);
  if (!stderr.ok) return stderr;
  return {
    ok: true,
    value: {
      host: view.host,
      exitCode: view.exitCode,
      signal: view.signal,
      timedOut: view.state === 'timed_out',
      cancelled: view.state === 'cancelled',
      stopConfirmed: view.stopConfirmed === true,
      processesLeft: view.processesLeft,
      stdout: stdout.value.text,
      stderr: stderr.value.text,
      stdoutBytes: view.stdoutBytes,
      stderrBytes: view.stderrBytes,
      stdoutTruncated: stdout.value.truncated,
      stderrTruncated: stderr.value.truncated,
      durationMs: elapsedMs(view),
      timeoutMs: view.timeoutMs,
    },
  };
}
