/**
 * The job_* operations: each runs one short script of host-jobs.ts on its own SSH channel from the
 * host's pool and answers from what the host printed. A job never holds a channel: it runs
 * detached on the host, and the relay keeps nothing about it (any relay answers for (host, jobId)).
 *
 * What a failed job_start means for whoever records jobs:
 * - invalid_argument, already_exists, job_limit, host_read_only, host_not_configured, and any
 *   failure to get a channel (host_busy, host_unreachable before the channel opened, cancelled
 *   while waiting): nothing was started;
 * - a failure after the channel opened (the connection lost, no answer in time, an unreadable
 *   answer) says "outcome unknown": the job may be running. A job_status of the same id settles it
 *   (absent: it never started).
 */
import { createHash } from 'node:crypto';
import { failure, success, type Outcome, type ToolError } from '../shared/errors.ts';
import { GUEST_EXEC_MARGIN_MS } from '../shared/proxmox.ts';
import { DEFAULT_JOBS_PER_HOST, JOB_TAIL_BYTES } from '../shared/limits.ts';
import type {
  JobCancelOperation,
  JobCleanupOperation,
  JobOutputOperation,
  JobReport,
  JobStartOperation,
  JobStatusOperation,
  OperationResult,
} from '../shared/protocol.ts';
import {
  cancelJobArgs,
  cleanupJobArgs,
  DEFAULT_JOB_TIMINGS,
  DEFAULT_JOBS_DIR,
  jobCommandLine,
  jobReportFrom,
  pageJobArgs,
  parseCleanup,
  parseJobFrame,
  parsePage,
  parseStartRefusal,
  startJobArgs,
  statusJobArgs,
  type JobTimings,
} from './host-jobs.ts';
import { newRunId } from './host-stop.ts';
import type { HostChannels } from './ssh-pool.ts';
import { readVmAnswer, vmAnswerBytes, vmJobCommandLine } from './vm-jobs.ts';

/** Bounds on each script: the start waits up to 5 s for the runner's pid; a cancel includes the stop's grace. */
const START_MS = 20_000;
const READ_MS = 15_000;
const PAGE_MS = 30_000;
const CLEANUP_MS = 30_000;
const CANCEL_EXTRA_MS = 15_000;
/** A state frame: a few short lines and two tails. */
const FRAME_BYTES = 2 * JOB_TAIL_BYTES + 8 * 1024;
const STDERR_BYTES = 4 * 1024;

interface ScriptRun {
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

/** Where the job runs: on the host, in a container (`pct exec`), or in a VM (its guest agent, vm-jobs.ts). */
type JobTarget = { kind: 'host' } | { kind: 'lxc'; ctid: string } | { kind: 'qemu'; vmid: string };

type ScriptOutcome = { ok: true; value: ScriptRun } | { ok: false; opened: boolean; outcome: { ok: false; error: ToolError } };

/**
 * Run one script on a channel of its own, keeping at most `maxBytes` of stdout. `opened` in the
 * answer tells a failure before the channel opened (nothing ran) from one after (outcome unknown).
 */
async function runScript(pool: HostChannels, command: string, maxBytes: number, timeoutMs: number, signal: AbortSignal): Promise<ScriptOutcome> {
  const limit = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  const opened = await pool.exec(command, limit);
  if (!opened.ok) return { ok: false, opened: false, outcome: opened };
  const { channel, exit } = opened.value;
  const chunks: Buffer[] = [];
  let bytes = 0;
  let tooLong = false;
  let stderr = '';
  channel.on('data', (chunk: Buffer) => {
    if (bytes + chunk.length > maxBytes) {
      tooLong = true;
      channel.close();
      return;
    }
    chunks.push(chunk);
    bytes += chunk.length;
  });
  channel.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < STDERR_BYTES) stderr += chunk.toString('utf8').slice(0, STDERR_BYTES - stderr.length);
  });
  // The scripts read nothing: end stdin so nothing waits on it.
  channel.end();
  const closed = await new Promise<boolean>((resolve) => {
    const onAbort = (): void => resolve(false);
    if (limit.aborted) onAbort();
    limit.addEventListener('abort', onAbort, { once: true });
    channel.once('close', () => {
      limit.removeEventListener('abort', onAbort);
      resolve(true);
    });
  });
  if (!closed) {
    channel.close();
    const why = signal.aborted ? 'it was cancelled' : `no answer within ${timeoutMs / 1000} s`;
    return {
      ok: false,
      opened: true,
      outcome: failure(signal.aborted ? 'cancelled' : 'host_unreachable', `The job script on host "${pool.host.name}" did not finish (${why}).`),
    };
  }
  if (tooLong)
    return { ok: false, opened: true, outcome: failure('protocol_error', `The job script on host "${pool.host.name}" answered more than ${maxBytes} bytes.`) };
  if (!exit.exited) {
    return { ok: false, opened: true, outcome: failure('host_unreachable', `The connection to host "${pool.host.name}" was lost during a job operation.`) };
  }
  return { ok: true, value: { stdout: Buffer.concat(chunks), stderr, code: exit.code } };
}

/** The place a job runs, for messages: 'host "h"', 'container 101 on host "h"', 'VM 100 on host "h"'. */
function where(pool: HostChannels, target: JobTarget): string {
  const host = `host "${pool.host.name}"`;
  if (target.kind === 'lxc') return `container ${target.ctid} on ${host}`;
  if (target.kind === 'qemu') return `VM ${target.vmid} on ${host}`;
  return host;
}

/**
 * The caller's mark on the host and their share of its job slots. `max_jobs` is for all users
 * together; without a share one user could take every slot and refuse everyone else's jobs. The
 * SSH channels give a caller half (ssh-pool.ts CALLER_SHARE), but jobs are long and few, and one
 * user running 20 at once on a host of the default 32 is a use the jobs are made for; so a quarter
 * of the slots (at least one) is kept for the others instead. The tag is a hash: the host learns
 * no user id. Stdio mode (no caller) has one user, who may use every slot.
 */
export function jobOwner(caller: string | undefined, maxJobs: number): { tag: string; share: number } | undefined {
  if (caller === undefined) return undefined;
  return { tag: createHash('sha256').update(caller).digest('hex').slice(0, 16), share: Math.max(1, maxJobs - Math.max(1, Math.floor(maxJobs / 4))) };
}

function unreadable(pool: HostChannels, target: JobTarget, run: ScriptRun, what: string): Outcome<never> {
  const said = run.stderr.trim().slice(0, 500);
  return failure(
    'ssh_error',
    `${capital(where(pool, target))} gave no readable answer to the job ${what} (exit code ${run.code ?? 'none'}${said ? `: ${said}` : ''}).`,
  );
}

function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Run a job script in the VM through `qm guest exec` (vm-jobs.ts) and hand back its decoded stdout,
 * as runScript does for a host. qm's own refusal (no agent, VM stopped, no sh in the guest) comes
 * before the agent runs anything: guest_error, nothing ran. An answer qm stopped waiting for, or
 * one that cannot be read, leaves the outcome unknown (opened).
 */
async function runInVm(pool: HostChannels, vmid: string, argv: string[], maxBytes: number, timeoutMs: number, signal: AbortSignal): Promise<ScriptOutcome> {
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const ran = await runScript(pool, vmJobCommandLine(vmid, argv, seconds), vmAnswerBytes(maxBytes), seconds * 1000 + GUEST_EXEC_MARGIN_MS, signal);
  if (!ran.ok) return ran;
  const answer = readVmAnswer(ran.value.stdout, ran.value.stderr);
  const vm = `VM ${vmid} on host "${pool.host.name}"`;
  switch (answer.kind) {
    case 'ran':
      return { ok: true, value: { stdout: answer.stdout, stderr: '', code: answer.exitCode } };
    case 'refused':
      return { ok: false, opened: false, outcome: failure('guest_error', `The guest agent of ${vm} did not run the job script: ${answer.message}`) };
    case 'pending':
      return {
        ok: false,
        opened: true,
        outcome: failure('ssh_error', `The job script in ${vm} did not finish within ${seconds} s; the guest agent still has it.`),
      };
    case 'truncated':
      return { ok: false, opened: true, outcome: failure('protocol_error', `The guest agent of ${vm} cut the job script's answer short.`) };
    case 'unreadable':
      return { ok: true, value: { stdout: Buffer.alloc(0), stderr: ran.value.stdout.subarray(0, 500).toString('utf8'), code: ran.value.code } };
    default: {
      const unhandled: never = answer;
      throw new Error(`unknown VM answer ${JSON.stringify(unhandled)}`);
    }
  }
}

function baseRefusal(pool: HostChannels, target: JobTarget, jobsDir: string, why: string): Outcome<never> {
  const reason: Record<string, string> = {
    symlink: 'is a symbolic link; the jobs directory must be a real directory',
    owner: 'is not owned by the SSH user',
    nodir: 'could not be created',
    nosetsid: 'cannot be used: there is no setsid command, which jobs need to run detached',
    write: 'could not be written',
  };
  return failure(
    'invalid_argument',
    `Jobs on ${where(pool, target)} keep their files in ${jobsDir}, which ${reason[why] ?? 'cannot be used'}. ${target.kind === 'host' ? 'Fix it, or set jobs_dir for this host in the relay config.' : 'Fix it inside the guest (jobs_dir applies to the host only).'}`,
  );
}

export class HostJobs {
  private readonly timings: JobTimings;
  /** One start at a time per host and guest: counting running jobs and starting one must not interleave. */
  private readonly starts = new Map<string, Promise<unknown>>();

  constructor(timings: JobTimings = DEFAULT_JOB_TIMINGS) {
    this.timings = timings;
  }

  private target(op: { guest?: { kind: 'lxc' | 'qemu'; id: string } | undefined }): JobTarget {
    if (op.guest?.kind === 'lxc') return { kind: 'lxc', ctid: op.guest.id };
    if (op.guest?.kind === 'qemu') return { kind: 'qemu', vmid: op.guest.id };
    return { kind: 'host' };
  }

  /** The base on the host, or inside the guest (in the home of the user the guest runs it as; the host's jobs_dir is a host path). */
  private jobsDir(pool: HostChannels, target: JobTarget): string {
    return target.kind === 'host' ? (pool.host.jobsDir ?? DEFAULT_JOBS_DIR) : DEFAULT_JOBS_DIR;
  }

  /** Run one job script where the job lives; its stdout as the script printed it. */
  private exec(pool: HostChannels, target: JobTarget, argv: string[], maxBytes: number, timeoutMs: number, signal: AbortSignal): Promise<ScriptOutcome> {
    if (target.kind === 'qemu') return runInVm(pool, target.vmid, argv, maxBytes, timeoutMs, signal);
    return runScript(pool, jobCommandLine(argv, target.kind === 'lxc' ? target.ctid : null), maxBytes, timeoutMs, signal);
  }

  private serial<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.starts.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.starts.set(key, tail);
    void tail.then(() => {
      if (this.starts.get(key) === tail) this.starts.delete(key);
    });
    return run;
  }

  /** `caller`: the hub's user id (none in stdio mode); their running jobs on the host count against their share. */
  start(pool: HostChannels, op: JobStartOperation, signal: AbortSignal, caller?: string): Promise<Outcome<OperationResult>> {
    const target = this.target(op);
    const key = `${pool.host.name}\0${target.kind === 'lxc' ? `lxc ${target.ctid}` : target.kind === 'qemu' ? `qemu ${target.vmid}` : ''}`;
    return this.serial(key, async () => {
      if (signal.aborted) return failure('cancelled', 'The job start was cancelled before it was sent; nothing was started.');
      const jobsDir = this.jobsDir(pool, target);
      const maxJobs = pool.host.maxJobs ?? DEFAULT_JOBS_PER_HOST;
      const owner = jobOwner(caller, maxJobs);
      const argv = startJobArgs(
        {
          jobsDir,
          jobId: op.jobId,
          runId: newRunId(),
          timeoutMs: op.timeoutMs,
          keepBytes: op.keepBytes,
          maxJobs,
          command: op.command,
          ...(owner ? { owner } : {}),
        },
        this.timings,
      );
      const ran = await this.exec(pool, target, argv, FRAME_BYTES, START_MS, signal);
      if (!ran.ok) {
        if (!ran.opened) return ran.outcome;
        // Not host_unreachable or protocol_error: whoever records jobs reads those as "nothing started".
        const code = ran.outcome.error.code === 'cancelled' ? 'cancelled' : 'ssh_error';
        return failure(code, `${ran.outcome.error.message} Whether job ${op.jobId} started is unknown; its status will tell.`);
      }
      const refusal = parseStartRefusal(ran.value.stdout);
      if (refusal?.kind === 'refused') return baseRefusal(pool, target, jobsDir, refusal.why);
      if (refusal?.kind === 'exists')
        return failure('already_exists', `Job id ${op.jobId} already exists on ${where(pool, target)}; a job id is never reused.`);
      if (refusal?.kind === 'limit') {
        // Counted in the base where the job would run: a guest's jobs count against that guest's limit.
        return failure(
          'job_limit',
          `${capital(where(pool, target))} already runs ${refusal.running} background jobs, its limit (${maxJobs}; max_jobs in the relay config, JOBS_PER_HOST in stdio mode). The job was not started.`,
        );
      }
      if (refusal?.kind === 'share') {
        return failure(
          'job_limit',
          `You already run ${refusal.running} background jobs on ${where(pool, target)}, your share of its limit: one user may have at most ${owner?.share ?? maxJobs} of its ${maxJobs} (max_jobs in the relay config) running at once, so others can start jobs too. The job was not started.`,
        );
      }
      const frame = parseJobFrame(ran.value.stdout);
      if (!frame) return failure('ssh_error', `${unreadableText(pool, target, ran.value)} Whether job ${op.jobId} started is unknown; its status will tell.`);
      return success({ op: 'job_start', report: jobReportFrom(frame) });
    });
  }

  async status(pool: HostChannels, op: JobStatusOperation, signal: AbortSignal): Promise<Outcome<OperationResult>> {
    const report = await this.report(pool, op, statusJobArgs(this.jobsDir(pool, this.target(op)), op.jobId), READ_MS, 'status', signal);
    return report.ok ? success({ op: 'job_status', report: report.value }) : report;
  }

  async cancel(pool: HostChannels, op: JobCancelOperation, signal: AbortSignal): Promise<Outcome<OperationResult>> {
    const argv = cancelJobArgs(this.jobsDir(pool, this.target(op)), op.jobId, this.timings.stop);
    const report = await this.report(pool, op, argv, this.timings.stop.graceSteps * 100 + CANCEL_EXTRA_MS, 'cancel', signal);
    return report.ok ? success({ op: 'job_cancel', report: report.value }) : report;
  }

  private async report(
    pool: HostChannels,
    op: JobStatusOperation | JobCancelOperation,
    argv: string[],
    timeoutMs: number,
    what: string,
    signal: AbortSignal,
  ): Promise<Outcome<JobReport>> {
    const target = this.target(op);
    const ran = await this.exec(pool, target, argv, FRAME_BYTES, timeoutMs, signal);
    if (!ran.ok) return ran.outcome;
    const refusal = parseStartRefusal(ran.value.stdout);
    if (refusal?.kind === 'refused') return baseRefusal(pool, target, this.jobsDir(pool, target), refusal.why);
    const frame = parseJobFrame(ran.value.stdout);
    if (!frame) return unreadable(pool, target, ran.value, what);
    return success(jobReportFrom(frame));
  }

  async output(pool: HostChannels, op: JobOutputOperation, signal: AbortSignal): Promise<Outcome<OperationResult>> {
    const target = this.target(op);
    const jobsDir = this.jobsDir(pool, target);
    const ran = await this.exec(pool, target, pageJobArgs(jobsDir, op.jobId, op.stream, op.offset, op.length), op.length + 512, PAGE_MS, signal);
    if (!ran.ok) return ran.outcome;
    const refusal = parseStartRefusal(ran.value.stdout);
    if (refusal?.kind === 'refused') return baseRefusal(pool, target, jobsDir, refusal.why);
    const page = parsePage(ran.value.stdout, op.length);
    if (page === null) return unreadable(pool, target, ran.value, 'output');
    if (page === 'absent') return failure('job_not_found', `${capital(where(pool, target))} has no job ${op.jobId} (never started there, or cleaned up).`);
    if (op.offset < page.dropped) {
      return failure(
        'invalid_argument',
        `Offset ${op.offset} of ${op.stream} is no longer kept: the first ${page.dropped} bytes were dropped to stay within the job's output limit. Kept output starts at offset ${page.dropped} (the stream has ${page.size} bytes).`,
      );
    }
    return success({ op: 'job_output', offset: op.offset, data: page.data.toString('base64'), size: page.size, dropped: page.dropped, ended: page.ended });
  }

  async cleanup(pool: HostChannels, op: JobCleanupOperation, signal: AbortSignal): Promise<Outcome<OperationResult>> {
    const target = this.target(op);
    const jobsDir = this.jobsDir(pool, target);
    const ran = await this.exec(pool, target, cleanupJobArgs(jobsDir, op.jobId), 1024, CLEANUP_MS, signal);
    if (!ran.ok) return ran.outcome;
    const refusal = parseStartRefusal(ran.value.stdout);
    if (refusal?.kind === 'refused') return baseRefusal(pool, target, jobsDir, refusal.why);
    const answer = parseCleanup(ran.value.stdout);
    if (answer === null) return unreadable(pool, target, ran.value, 'cleanup');
    if (answer === 'running')
      return failure('invalid_argument', `Job ${op.jobId} is still running on ${where(pool, target)}: cancel it first; its files are kept while it runs.`);
    if (answer === 'failed') return failure('ssh_error', `Could not delete the files of job ${op.jobId} on ${where(pool, target)}.`);
    return success({ op: 'job_cleanup', removed: answer === 'removed' });
  }
}

function unreadableText(pool: HostChannels, target: JobTarget, run: ScriptRun): string {
  const said = run.stderr.trim().slice(0, 500);
  return `${capital(where(pool, target))} gave no readable answer to the job start (exit code ${run.code ?? 'none'}${said ? `: ${said}` : ''}).`;
}
