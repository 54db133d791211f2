/**
 * The records of one owner's background jobs, and what happens to them: one state machine for
 * both runtimes. The Worker keeps a ledger per user in a Durable Object (worker/jobs/job-book.ts),
 * the stdio mode in files (relay/job-files.ts); both hand it a store and a link that sends job_*
 * operations to the host. The host is the source of truth for a job's progress; the record is
 * what the server knows of it: who started it, where, what, and its last known state.
 *
 * A job's end is recorded once (onEnded), whoever notices it first: a status call, a cancel, or
 * the owner's periodic check (tick). Finished jobs are kept for the retention time, then their
 * files on the host are deleted and the record becomes a tombstone that says so.
 */
import { failure, success, type ErrorCode, type Outcome, type ToolError } from './errors.ts';
import { ENDED_JOB_STATES, type JobGuest, type JobListRequest, type JobPage, type JobState, type JobStream, type JobView } from './jobs.ts';
import type { JobReport, OperationResult } from './protocol.ts';
import { fromBase64 } from './file-tools.ts';
import { MAX_LISTED_JOBS } from './limits.ts';

/** Where the job runs: the relay that serves the host (null in stdio mode) and the host's name there. */
export interface JobRoute {
  relay: string | null;
  host: string;
}

export interface JobRecord {
  jobId: string;
  /** The owner's stable id, and the name shown to admins. */
  owner: string;
  ownerName: string;
  name: string | null;
  /** The host as the owner named it, and where it is. */
  hostLabel: string;
  route: JobRoute;
  guest: JobGuest | null;
  command: string;
  createdAt: number;
  timeoutMs: number;
  keepBytes: number;
  state: JobState;
  /** The host's last report; null before the first. */
  report: JobReport | null;
  /** When the host was last asked (server clock). */
  checkedAt: number | null;
  /** Ended jobs: when their files are deleted; cleaned jobs: when the tombstone goes. */
  cleanupAt: number | null;
  cleanedAt: number | null;
  /** The end was recorded (audited) already. */
  endRecorded: boolean;
  /** Why the state is not what the host said (e.g. the start never reached it). */
  note: string | null;
}

/** Records of one owner (the Worker) or of everyone on this machine (stdio). */
export interface JobStore {
  get(jobId: string): Promise<JobRecord | undefined>;
  put(record: JobRecord): Promise<void>;
  list(): Promise<JobRecord[]>;
  delete(jobId: string): Promise<void>;
  /**
   * For a store that several processes share (stdio servers on one state directory): true for
   * exactly one caller per job, across all of them, so the end is recorded once. A store with one
   * writer (a Durable Object) leaves it out; the ledger serializes its own calls per job.
   */
  claimEnd?(jobId: string): Promise<boolean>;
  /** The owner's jobs not yet ended, when the store can find them without reading every record. */
  active?(owner: string): Promise<JobRecord[]>;
}

/** A job operation without its host: the link adds the route's host. */
export type JobOperationBody =
  | { op: 'job_start'; jobId: string; command: string; timeoutMs: number; keepBytes: number; guest?: JobGuest }
  | { op: 'job_status' | 'job_cancel' | 'job_cleanup'; jobId: string; guest?: JobGuest }
  | { op: 'job_output'; jobId: string; stream: JobStream; offset: number; length: number; guest?: JobGuest };

export interface JobHostLink {
  run(route: JobRoute, operation: JobOperationBody, signal: AbortSignal): Promise<Outcome<OperationResult>>;
}

export interface JobLimits {
  /** Jobs one owner may have running at once. */
  perUser: number;
  keepBytes: number;
  retentionMs: number;
}

export interface JobLedgerDeps {
  store: JobStore;
  link: JobHostLink;
  limits: JobLimits;
  /** Called once per job when it is first seen to have ended; the ledger marks it recorded first. */
  onEnded: (record: JobRecord) => Promise<void>;
  now?: () => number;
}

export interface NewJob {
  jobId: string;
  owner: string;
  ownerName: string;
  name: string | null;
  hostLabel: string;
  route: JobRoute;
  guest: JobGuest | null;
  command: string;
  timeoutMs: number;
}

/** A cleaned job's tombstone is kept this long, so its id says "deleted" rather than "unknown". */
export const TOMBSTONE_MS = 30 * 24 * 3600_000;
/** A start still in flight that the host does not know yet is taken as never run only this long after it was sent. */
const START_SETTLE_MS = 2 * 60_000;
/** The host's answer may be late by this much after a job's deadline (watchdog step, clocks). */
const DEADLINE_SLACK_MS = 30_000;

/**
 * Failures after which the job certainly did not start: the relay refused or never sent the start.
 * Any other failure (the relay went away, the answer timed out) leaves the outcome unknown.
 */
const NOT_STARTED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'invalid_argument',
  'access_denied',
  'host_read_only',
  'relay_not_connected',
  'relay_shutting_down',
  'host_not_configured',
  'host_ambiguous',
  'host_unreachable',
  'host_busy',
  'relay_busy',
  'auth_failed',
  'host_key_unknown',
  'host_key_changed',
  'guest_error',
  'permission_denied',
  'already_exists',
  'job_limit',
  'protocol_error',
  'version_mismatch',
]);

const STATE_OF_HOST: Record<JobReport['state'], JobState> = {
  running: 'running',
  exited: 'exited',
  killed: 'killed',
  timed_out: 'timed_out',
  cancelled: 'cancelled',
  lost: 'lost',
  absent: 'lost',
};

export function isEnded(state: JobState): boolean {
  return ENDED_JOB_STATES.has(state);
}

/**
 * The command ended, but processes it started (setsid, nohup, `&`) still ran at the last look:
 * its record is not final (status asks the host again) and a cancel still has something to stop.
 */
function leftRunning(record: JobRecord): boolean {
  return (record.state === 'exited' || record.state === 'killed' || record.state === 'lost') && (record.report?.processesLeft.length ?? 0) > 0;
}

/**
 * The view of a job whose story is over (ended, its end recorded, nothing of it left running, its
 * files still kept): what the host would say now anyway, so it is answered without asking. Null
 * for any other job.
 */
export function settledView(record: JobRecord): JobView | null {
  return record.state !== 'cleaned' && isEnded(record.state) && record.endRecorded && !leftRunning(record) ? viewOf(record) : null;
}

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export function viewOf(record: JobRecord, options: { staleReason?: string; withOwner?: boolean } = {}): JobView {
  const report = record.report;
  const note = options.staleReason ?? record.note ?? undefined;
  return {
    jobId: record.jobId,
    name: record.name,
    host: record.hostLabel,
    guest: record.guest,
    command: record.command,
    ...(options.withOwner ? { owner: record.ownerName } : {}),
    state: record.state,
    exitCode: report?.exitCode ?? null,
    signal: report?.signal ?? null,
    createdAt: new Date(record.createdAt).toISOString(),
    startedAt: iso(report?.startedAt),
    endedAt: iso(report?.endedAt),
    timeoutMs: record.timeoutMs,
    stdoutBytes: report?.stdoutBytes ?? 0,
    stderrBytes: report?.stderrBytes ?? 0,
    stdoutDropped: report?.stdoutDropped ?? 0,
    stderrDropped: report?.stderrDropped ?? 0,
    stdoutTail: report?.stdoutTail ?? '',
    stderrTail: report?.stderrTail ?? '',
    stopConfirmed: report?.stopConfirmed ?? null,
    processesLeft: report?.processesLeft ?? [],
    cleanupAt: record.state === 'cleaned' ? null : iso(record.cleanupAt),
    ...(note !== undefined ? { staleReason: note } : {}),
  };
}

function notFound(jobId: string): { ok: false; error: ToolError } {
  return failure('job_not_found', `No job ${jobId} of yours exists.`);
}

function cleanedAway(record: JobRecord): { ok: false; error: ToolError } {
  const ended = record.report?.endedAt ?? record.checkedAt;
  return failure(
    'job_not_found',
    `Job ${record.jobId} ended${ended ? ` at ${new Date(ended).toISOString()}` : ''} and its output was deleted from ${record.hostLabel} on ${iso(record.cleanedAt) ?? 'cleanup'}, after the retention time.`,
  );
}

/**
 * Runs async steps one after another per key. A record is read, changed and written back around
 * awaits (the store, the host); two calls on one job interleaving there could record its end
 * twice or put back a record from before it.
 */
class Serial {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, step: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(step, step);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

/** The key under which starts are admitted one at a time (job ids are hex, so it cannot clash). */
const ADMISSION = 'admission';

export class JobLedger {
  private readonly deps: JobLedgerDeps;
  private readonly now: () => number;
  private readonly serial = new Serial();

  constructor(deps: JobLedgerDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
  }

  async start(job: NewJob, signal: AbortSignal): Promise<Outcome<JobView>> {
    // Counted and recorded as one step, so starts that arrive together cannot all pass the limit.
    let admitted = await this.serial.run(ADMISSION, () => this.admit(job));
    if (!admitted.ok && admitted.error.code === 'job_limit') {
      // The count may be stale: a job that ended since it was last looked at still reads running.
      // Ask the host about each (at most the limit's worth, at once), then count again.
      const { store, limits } = this.deps;
      const candidates = store.active ? await store.active(job.owner) : await store.list();
      const stale = candidates.filter((record) => record.owner === job.owner && !isEnded(record.state)).slice(0, limits.perUser);
      await Promise.all(stale.map((record) => this.status(record.jobId, signal)));
      admitted = await this.serial.run(ADMISSION, () => this.admit(job));
    }
    if (!admitted.ok) return admitted;
    const record = admitted.value;
    const started = await this.deps.link.run(
      job.route,
      {
        op: 'job_start',
        jobId: job.jobId,
        command: job.command,
        timeoutMs: job.timeoutMs,
        keepBytes: record.keepBytes,
        ...(job.guest ? { guest: job.guest } : {}),
      },
      signal,
    );
    if (!started.ok) {
      if (NOT_STARTED.has(started.error.code)) {
        await this.deps.store.delete(job.jobId);
        return started;
      }
      // Sent, but whether it started is unknown: keep the record; status will ask the host.
      const unknown = { ...record, note: `The start was sent but its answer was lost (${started.error.message}); ssh_job_status will ask the host.` };
      await this.serial.run(job.jobId, async () => {
        // Unless a status call has settled it meanwhile.
        const current = await this.deps.store.get(job.jobId);
        if (current?.state === 'starting' && current.report === null) await this.deps.store.put(unknown);
      });
      return success(viewOf(unknown));
    }
    if (started.value.op !== 'job_start') return failure('protocol_error', 'The relay answered a job start with another kind of result.');
    return success(viewOf(await this.apply(record, started.value.report)));
  }

  /** Within the per-user limit: the new record, put before the start is sent. */
  private async admit(job: NewJob): Promise<Outcome<JobRecord>> {
    const { store, limits } = this.deps;
    const candidates = store.active ? await store.active(job.owner) : await store.list();
    const running = candidates.filter((record) => record.owner === job.owner && !isEnded(record.state));
    if (running.length >= limits.perUser) {
      return failure(
        'job_limit',
        `You have ${running.length} jobs running or starting, the most one person may have at once (JOBS_PER_USER=${limits.perUser}): ${running
          .slice(0, 5)
          .map((record) => record.jobId)
          .join(', ')}${running.length > 5 ? ', …' : ''}.`,
      );
    }
    if ((await store.get(job.jobId)) !== undefined) return failure('already_exists', `A job with id ${job.jobId} exists already.`);
    const record: JobRecord = {
      ...job,
      createdAt: this.now(),
      keepBytes: limits.keepBytes,
      state: 'starting',
      report: null,
      checkedAt: null,
      cleanupAt: null,
      cleanedAt: null,
      endRecorded: false,
      note: null,
    };
    // Recorded before it is sent: if this process dies now, the next look at the host settles it.
    await store.put(record);
    return success(record);
  }

  /** The job's state, asked of the host unless its end is already known. */
  async status(jobId: string, signal: AbortSignal): Promise<Outcome<JobView>> {
    const record = await this.deps.store.get(jobId);
    if (!record) return notFound(jobId);
    if (record.state === 'cleaned') return cleanedAway(record);
    const settled = settledView(record);
    return settled ? success(settled) : this.refresh(record, signal);
  }

  async output(request: { jobId: string; stream: JobStream; offset: number; limit: number }, signal: AbortSignal): Promise<Outcome<JobPage>> {
    const record = await this.deps.store.get(request.jobId);
    if (!record) return notFound(request.jobId);
    if (record.state === 'cleaned') return cleanedAway(record);
    const page = await this.deps.link.run(
      record.route,
      {
        op: 'job_output',
        jobId: record.jobId,
        stream: request.stream,
        offset: request.offset,
        length: request.limit,
        ...(record.guest ? { guest: record.guest } : {}),
      },
      signal,
    );
    if (!page.ok) return page;
    if (page.value.op !== 'job_output') return failure('protocol_error', 'The relay answered a job output read with another kind of result.');
    const { offset, data, size, dropped, ended } = page.value;
    const bytes = fromBase64(data);
    if (bytes === null) return failure('protocol_error', 'The relay sent a job output page that is not base64.');
    // The page must be the one asked for: a relay that answers another offset, more bytes than
    // asked, or bytes outside what the stream keeps would make next_offset and `complete` lie.
    // (No bytes at or past the end is a fair answer: the caller read ahead of a running job.)
    if (
      offset !== request.offset ||
      bytes.length > request.limit ||
      dropped > size ||
      (bytes.length > 0 && (offset < dropped || offset + bytes.length > size))
    ) {
      return failure(
        'protocol_error',
        `The relay answered a read of ${request.limit} bytes at offset ${request.offset} with ${bytes.length} bytes at offset ${offset} of a ${size}-byte stream (${dropped} dropped): not that page.`,
      );
    }
    return success({ jobId: record.jobId, stream: request.stream, offset, data: bytes, size, dropped, complete: ended && offset + bytes.length >= size });
  }

  async cancel(jobId: string, signal: AbortSignal): Promise<Outcome<JobView>> {
    const record = await this.deps.store.get(jobId);
    if (!record) return notFound(jobId);
    if (record.state === 'cleaned') return cleanedAway(record);
    if (isEnded(record.state) && !leftRunning(record)) return success(viewOf(record));
    const stopped = await this.deps.link.run(record.route, { op: 'job_cancel', jobId, ...(record.guest ? { guest: record.guest } : {}) }, signal);
    if (!stopped.ok) return stopped;
    if (stopped.value.op !== 'job_cancel') return failure('protocol_error', 'The relay answered a job cancel with another kind of result.');
    return success(viewOf(await this.apply(record, stopped.value.report)));
  }

  /** The owner's jobs that match, newest first: at most MAX_LISTED_JOBS + 1. */
  async list(request: JobListRequest): Promise<JobView[]> {
    const records = await this.deps.store.list();
    return (
      records
        .filter((record) => request.host === undefined || record.hostLabel === request.host)
        .filter((record) => {
          if (request.state === undefined) return record.state !== 'cleaned';
          if (request.state === 'active') return !isEnded(record.state);
          if (request.state === 'ended') return isEnded(record.state);
          return record.state === request.state;
        })
        .sort((a, b) => b.createdAt - a.createdAt)
        // The newest, and one more to tell that more exist (shared/job-tools.ts shows MAX_LISTED_JOBS).
        .slice(0, MAX_LISTED_JOBS + 1)
        .map((record) => viewOf(record, { withOwner: request.everyone === true }))
    );
  }

  /**
   * The periodic check: ask the host about running jobs that are due, delete the files of jobs past
   * retention, drop old tombstones. Returns when it next has something to do (null: nothing).
   */
  async tick(signal: AbortSignal): Promise<number | null> {
    const { store, link } = this.deps;
    for (const record of await store.list()) {
      if (signal.aborted) break;
      const now = this.now();
      if (record.state === 'cleaned') {
        if (record.cleanupAt !== null && record.cleanupAt <= now) await store.delete(record.jobId);
      } else if (!isEnded(record.state) || !record.endRecorded) {
        if (nextCheckAt(record) <= now) await this.refresh(record, signal);
      } else if (record.cleanupAt !== null && record.cleanupAt <= now) {
        await this.serial.run(record.jobId, async () => {
          const removed = await link.run(record.route, { op: 'job_cleanup', jobId: record.jobId, ...(record.guest ? { guest: record.guest } : {}) }, signal);
          // The relay away or the host unreachable: try again at the next check.
          if (!removed.ok) return;
          const current = (await store.get(record.jobId)) ?? record;
          const done = this.now();
          await store.put({ ...current, state: 'cleaned', cleanedAt: done, cleanupAt: done + TOMBSTONE_MS });
        });
      }
    }
    return nextWake(await store.list(), this.now());
  }

  /** When the periodic check next has something to do (null: nothing). */
  async nextWake(): Promise<number | null> {
    return nextWake(await this.deps.store.list(), this.now());
  }

  private async refresh(record: JobRecord, signal: AbortSignal): Promise<Outcome<JobView>> {
    const asked = await this.deps.link.run(record.route, { op: 'job_status', jobId: record.jobId, ...(record.guest ? { guest: record.guest } : {}) }, signal);
    if (!asked.ok) {
      // The last known state, said to be stale and why. Read again: another call may have
      // recorded the end while this one waited; putting back `record` would undo that.
      const current = await this.serial.run(record.jobId, async () => {
        const latest = await this.deps.store.get(record.jobId);
        if (latest === undefined) return record;
        await this.deps.store.put({ ...latest, checkedAt: this.now() });
        return latest;
      });
      if (current.state === 'cleaned') return cleanedAway(current);
      return success(viewOf(current, { staleReason: `Not fresh from the host: ${asked.error.message}` }));
    }
    if (asked.value.op !== 'job_status') return failure('protocol_error', 'The relay answered a job status with another kind of result.');
    return success(viewOf(await this.apply(record, asked.value.report)));
  }

  /** Take the host's report into the record; the first time it shows an end, record the end once. */
  private apply(before: JobRecord, report: JobReport): Promise<JobRecord> {
    return this.serial.run(before.jobId, () => this.applyNow(before, report));
  }

  private async applyNow(before: JobRecord, report: JobReport): Promise<JobRecord> {
    const { store, limits } = this.deps;
    const now = this.now();
    // Read again: another call may have recorded the end while this one waited for the host.
    const current = (await store.get(before.jobId)) ?? before;
    // Cleaned up while this report was on its way: its files are gone; the tombstone stays.
    if (current.state === 'cleaned') return current;
    // A start still in flight (no outcome noted: queued for a channel, a slow connection, or its
    // sender died mid-start) may yet reach the host: a look that finds no job does not settle it as
    // never run until that can no longer be. A start whose answer was lost is settled at once.
    if (report.state === 'absent' && current.state === 'starting' && current.note === null && now - current.createdAt < START_SETTLE_MS) {
      const waiting = { ...current, checkedAt: now };
      await store.put(waiting);
      return waiting;
    }
    let state = STATE_OF_HOST[report.state];
    let note = current.note;
    if (report.state === 'absent')
      note =
        current.state === 'starting'
          ? 'The start never reached the host: the job did not run.'
          : "The job's directory on the host is gone (deleted outside this server).";
    else if (current.state === 'starting') note = null;
    if (isEnded(current.state) && current.state !== 'lost' && !isEnded(state)) state = current.state;
    const ended = isEnded(state);
    const next: JobRecord = {
      ...current,
      state,
      report: report.state === 'absent' && current.report ? current.report : report,
      checkedAt: now,
      note,
      cleanupAt: ended ? (current.cleanupAt ?? (report.endedAt ?? now) + limits.retentionMs) : null,
      endRecorded: current.endRecorded || ended,
    };
    await store.put(next);
    // Another process sharing the store may have seen the end at the same moment: one records it.
    if (ended && !current.endRecorded && (store.claimEnd === undefined || (await store.claimEnd(next.jobId)))) await this.deps.onEnded(next);
    return next;
  }
}

/** A new job is first looked at this long after its start (then every so often, see nextCheckAt). */
export const FIRST_CHECK_MS = 5_000;

/** Running jobs are checked often at first, then less often; always just after their deadline. */
export function nextCheckAt(record: JobRecord): number {
  const last = record.checkedAt ?? record.createdAt;
  const age = last - record.createdAt;
  const step = age < 60_000 ? FIRST_CHECK_MS : age < 10 * 60_000 ? 30_000 : 5 * 60_000;
  const deadline = record.createdAt + record.timeoutMs + DEADLINE_SLACK_MS;
  return last < deadline ? Math.min(last + step, deadline) : last + step;
}

function nextWake(records: JobRecord[], now: number): number | null {
  let next: number | null = null;
  for (const record of records) {
    const due = record.state === 'cleaned' || (isEnded(record.state) && record.endRecorded) ? record.cleanupAt : nextCheckAt(record);
    if (due === null) continue;
    const at = Math.max(due, now);
    if (next === null || at < next) next = at;
  }
  return next;
}
