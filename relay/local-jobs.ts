/**
 * Background jobs in the stdio mode: the shared JobLedger over the job files in the state
 * directory (relay/job-files.ts), with the relay operations called in-process as its link to the
 * host. The host is the source of truth, so a stdio server that is killed and started again (or
 * another one on the same state directory) answers for every job from its record alone. A timer
 * looks at running jobs while the process runs, so each end is logged once, and deletes the
 * files of ended jobs on the host after the retention time.
 */
import { failure, success, type Outcome } from '../shared/errors.ts';
import { selectHost } from '../shared/host-selection.ts';
import { JobLedger, type JobHostLink, type JobOperationBody, type JobRecord, type JobRoute, type JobStore } from '../shared/job-ledger.ts';
import { newJobId, type JobExecutor, type JobListRequest, type JobPage, type JobStream, type JobView, type StartJobRequest } from '../shared/jobs.ts';
import { operation as operationSchema, type OperationResult } from '../shared/protocol.ts';
import { log } from './log.ts';
import type { RelayOperations } from './operations.ts';
import type { JobSettings } from './tool-settings.ts';

/** The stdio mode has one user: the person running it. */
const OWNER = 'stdio';
/** Each job operation is short (the job runs detached); one that hangs is given up after this. */
const JOB_OPERATION_TIMEOUT_MS = 60_000;
/** Looks at the jobs come at most this often, whatever is due. */
const MIN_CHECK_GAP_MS = 1_000;

export class LocalJobs implements JobExecutor {
  private readonly operations: RelayOperations;
  private readonly ledger: JobLedger;
  private readonly checkMs: number;
  private readonly stopping = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(operations: RelayOperations, store: JobStore, settings: JobSettings) {
    this.operations = operations;
    this.checkMs = settings.checkMs;
    const link: JobHostLink = { run: (route, body, signal) => this.send(route, body, signal) };
    this.ledger = new JobLedger({
      store,
      link,
      limits: { perUser: settings.perUser, keepBytes: settings.keepBytes, retentionMs: settings.retentionMs },
      onEnded: async (record) => logEnd(record),
    });
  }

  /** The operation on the host the route names, validated as the relay validates what the hub sends. */
  private async send(route: JobRoute, body: JobOperationBody, signal: AbortSignal): Promise<Outcome<OperationResult>> {
    const parsed = operationSchema.safeParse({ ...body, host: route.host });
    if (!parsed.success) return failure('invalid_argument', `Not a valid job operation: ${parsed.error.issues[0]?.message ?? 'invalid'}.`);
    return this.operations.run(parsed.data, () => undefined, AbortSignal.any([signal, AbortSignal.timeout(JOB_OPERATION_TIMEOUT_MS)]));
  }

  async startJob(request: StartJobRequest, signal: AbortSignal): Promise<Outcome<JobView>> {
    const host = selectHost(
      this.operations.inventory().map((entry) => entry.name),
      request.host,
    );
    if (!host.ok) return host;
    const started = await this.ledger.start(
      {
        jobId: newJobId(),
        owner: OWNER,
        ownerName: OWNER,
        name: request.name ?? null,
        hostLabel: host.value,
        route: { relay: null, host: host.value },
        guest: request.guest ?? null,
        command: request.command,
        timeoutMs: request.timeoutMs,
      },
      signal,
    );
    // Identifiers and outcomes only: never the command (relay/log.ts).
    if (started.ok) log('info', 'job started', { jobId: started.value.jobId, host: host.value, state: started.value.state });
    else log('info', 'job not started', { host: host.value, code: started.error.code });
    return started;
  }

  jobStatus(request: { jobId: string }, signal: AbortSignal): Promise<Outcome<JobView>> {
    return this.ledger.status(request.jobId, signal);
  }

  jobOutput(request: { jobId: string; stream: JobStream; offset: number; limit: number }, signal: AbortSignal): Promise<Outcome<JobPage>> {
    return this.ledger.output(request, signal);
  }

  async cancelJob(request: { jobId: string }, signal: AbortSignal): Promise<Outcome<JobView>> {
    const cancelled = await this.ledger.cancel(request.jobId, signal);
    if (cancelled.ok) log('info', 'job cancel', { jobId: request.jobId, state: cancelled.value.state, stopConfirmed: cancelled.value.stopConfirmed });
    return cancelled;
  }

  /** Every job here is the user's own: `everyone` (all_users) changes nothing. */
  async listJobs(request: JobListRequest, _signal: AbortSignal): Promise<Outcome<JobView[]>> {
    return success(
      await this.ledger.list({
        ...(request.host !== undefined ? { host: request.host } : {}),
        ...(request.state !== undefined ? { state: request.state } : {}),
      }),
    );
  }

  /** Look at the jobs now and then while the process runs; the timer never keeps it alive. */
  startChecking(): void {
    this.schedule(Math.min(MIN_CHECK_GAP_MS, this.checkMs));
  }

  stop(): void {
    this.stopping.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    if (this.stopping.signal.aborted) return;
    this.timer = setTimeout(() => void this.check(), delayMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    let delay = this.checkMs;
    try {
      const wake = await this.ledger.tick(this.stopping.signal);
      if (wake !== null) delay = Math.min(this.checkMs, Math.max(wake - Date.now(), Math.min(MIN_CHECK_GAP_MS, this.checkMs)));
    } catch (error) {
      log('warn', 'the periodic look at background jobs failed; trying again later', { error: error instanceof Error ? error.message : String(error) });
    }
    this.schedule(delay);
  }
}

function logEnd(record: JobRecord): void {
  log('info', 'job ended', {
    jobId: record.jobId,
    host: record.hostLabel,
    state: record.state,
    exitCode: record.report?.exitCode ?? null,
    signal: record.report?.signal ?? null,
  });
}
