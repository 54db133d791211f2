/**
 * One user's background jobs: a Durable Object per user (`jobs:<userId>`), holding the records in
 * its SQLite and running the shared state machine (shared/job-ledger.ts) over them. Being per user
 * is what binds a job to its owner: another user's job id is simply not in this book, so it gets
 * the same answer as an id that never existed, with no owner check to forget.
 *
 * Its alarm keeps watch while jobs run (so each end is audited once, even if nobody asks), and
 * deletes the files of ended jobs on the host after the retention time. The book named `index`
 * holds no jobs: it lists which users have books, for admins who list or cancel everyone's jobs.
 */
import { DurableObject } from 'cloudflare:workers';
import { failure, type Outcome } from '../../shared/errors.ts';
import { FIRST_CHECK_MS, JobLedger, settledView, type JobHostLink, type JobRecord, type JobStore, type NewJob } from '../../shared/job-ledger.ts';
import type { JobListRequest, JobPage, JobStream, JobView } from '../../shared/jobs.ts';
import { recordCall } from '../team/gate-call.ts';
import { logEvent } from '../log.ts';
import { RelayAdapter } from '../relay/relay-adapter.ts';
import { readSettings } from '../settings.ts';

/** Each operation on the host is short; nothing here waits on the job itself. */
const HOST_CALL_TIMEOUT_MS = 45_000;
/** Records one book keeps (running, ended and tombstones); at the cap the oldest tombstones go first. */
export const MAX_JOB_RECORDS = 2_000;
const INDEX_BOOK = 'index';

/** Where a job runs; for a job whose story is over, also its final view (no need to ask the host). */
export interface JobLocation {
  relay: string | null;
  host: string;
  hostLabel: string;
  settled: JobView | null;
}

export function jobBook(env: Env, userId: string): DurableObjectStub<JobBook> {
  return env.JOB_BOOK.get(env.JOB_BOOK.idFromName(`jobs:${userId}`));
}

function jobIndex(env: Env): DurableObjectStub<JobBook> {
  return env.JOB_BOOK.get(env.JOB_BOOK.idFromName(INDEX_BOOK));
}

class SqlJobStore implements JobStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec('CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, record TEXT NOT NULL)');
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const row = this.sql.exec<{ record: string }>('SELECT record FROM jobs WHERE job_id = ?', jobId).toArray()[0];
    return row ? (JSON.parse(row.record) as JobRecord) : undefined;
  }

  async put(record: JobRecord): Promise<void> {
    this.sql.exec('INSERT OR REPLACE INTO jobs (job_id, created_at, record) VALUES (?, ?, ?)', record.jobId, record.createdAt, JSON.stringify(record));
  }

  async list(): Promise<JobRecord[]> {
    return this.sql
      .exec<{ record: string }>('SELECT record FROM jobs ORDER BY created_at DESC LIMIT ?', MAX_JOB_RECORDS)
      .toArray()
      .map((row) => JSON.parse(row.record) as JobRecord);
  }

  async delete(jobId: string): Promise<void> {
    this.sql.exec('DELETE FROM jobs WHERE job_id = ?', jobId);
  }

  /** Starting and running jobs only: the per-user limit is checked on every start, and a book holds thousands of ended ones. */
  async active(_owner: string): Promise<JobRecord[]> {
    return this.sql
      .exec<{ record: string }>("SELECT record FROM jobs WHERE json_extract(record, '$.state') IN ('starting', 'running') LIMIT ?", MAX_JOB_RECORDS)
      .toArray()
      .map((row) => JSON.parse(row.record) as JobRecord);
  }

  count(): number {
    return this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM jobs').one().n;
  }

  /**
   * Room for one more record under `max`: the oldest tombstones are dropped first (a tombstone
   * only turns "its output was deleted" into "unknown id"; its files on the host are gone). Records
   * of running jobs and of ended ones whose files are still on the host are never dropped.
   */
  makeRoom(max: number): boolean {
    const excess = this.count() - (max - 1);
    if (excess > 0) {
      this.sql.exec(
        "DELETE FROM jobs WHERE job_id IN (SELECT job_id FROM jobs WHERE json_extract(record, '$.state') = 'cleaned' ORDER BY created_at ASC LIMIT ?)",
        excess,
      );
    }
    return this.count() < max;
  }
}

export class JobBook extends DurableObject<Env> {
  private readonly store: SqlJobStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new SqlJobStore(ctx.storage.sql);
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS owners (user_id TEXT PRIMARY KEY)');
  }

  private ledger(owner: string): JobLedger {
    const relay = new RelayAdapter(this.env, owner);
    const link: JobHostLink = {
      run: (route, operation, signal) =>
        route.relay === null
          ? Promise.resolve(failure('internal', 'A job record of this server names no relay.'))
          : relay.job({ relay: route.relay, host: route.host }, operation, signal),
    };
    return new JobLedger({
      store: this.store,
      link,
      limits: readSettings(this.env).jobs,
      onEnded: (record) => this.auditEnd(record),
    });
  }

  /** The end of a job, in the audit log (never its output): once per job, whoever noticed it. */
  private async auditEnd(record: JobRecord): Promise<void> {
    const report = record.report;
    const ended = report?.endedAt ?? Date.now();
    await recordCall(this.env, {
      time: new Date(ended).toISOString(),
      user: record.ownerName,
      client: null,
      relay: record.route.relay,
      host: record.route.relay ? `${record.route.relay}/${record.route.host}` : record.route.host,
      tool: 'job_end',
      target: `job ${record.jobId}: ${record.command}`,
      outcome: record.state === 'exited' && report?.exitCode === 0 ? 'ok' : 'error',
      code: record.state === 'exited' ? null : record.state,
      exitCode: report?.exitCode ?? null,
      bytes: report ? report.stdoutBytes + report.stderrBytes : null,
      durationMs: report?.startedAt ? Math.max(0, ended - report.startedAt) : 0,
    });
    logEvent('info', 'job ended', { jobId: record.jobId, user: record.ownerName, state: record.state });
  }

  private async schedule(next: number | null): Promise<void> {
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || next < current) await this.ctx.storage.setAlarm(next);
  }

  async start(job: NewJob): Promise<Outcome<JobView>> {
    if (!this.store.makeRoom(MAX_JOB_RECORDS)) {
      return failure(
        'job_limit',
        `You have ${MAX_JOB_RECORDS} job records of running jobs and of ended jobs whose output is still kept; ended ones are deleted after the retention time. Try again later.`,
      );
    }
    // Written once: every write here is waited for before the answer leaves.
    if ((await this.ctx.storage.get<string>('owner')) !== job.owner) await this.ctx.storage.put('owner', job.owner);
    if ((await this.ctx.storage.get<boolean>('indexed')) !== true) {
      await jobIndex(this.env).addOwner(job.owner);
      await this.ctx.storage.put('indexed', true);
    }
    const started = await this.ledger(job.owner).start(job, AbortSignal.timeout(HOST_CALL_TIMEOUT_MS));
    // The new job's first check; the watch finds every other due job when it runs.
    await this.schedule(Date.now() + FIRST_CHECK_MS);
    return started;
  }

  /** Where a job runs, for the policy check before anything is asked of the host. */
  async locate(jobId: string): Promise<JobLocation | null> {
    const record = await this.store.get(jobId);
    return record ? { relay: record.route.relay, host: record.route.host, hostLabel: record.hostLabel, settled: settledView(record) } : null;
  }

  async status(owner: string, jobId: string): Promise<Outcome<JobView>> {
    return this.ledger(owner).status(jobId, AbortSignal.timeout(HOST_CALL_TIMEOUT_MS));
  }

  async output(owner: string, request: { jobId: string; stream: JobStream; offset: number; limit: number }): Promise<Outcome<JobPage>> {
    return this.ledger(owner).output(request, AbortSignal.timeout(HOST_CALL_TIMEOUT_MS));
  }

  async cancel(owner: string, jobId: string): Promise<Outcome<JobView>> {
    const cancelled = await this.ledger(owner).cancel(jobId, AbortSignal.timeout(HOST_CALL_TIMEOUT_MS));
    await this.schedule(Date.now());
    return cancelled;
  }

  async list(owner: string, request: JobListRequest): Promise<JobView[]> {
    return this.ledger(owner).list(request);
  }

  override async alarm(): Promise<void> {
    const owner = await this.ctx.storage.get<string>('owner');
    if (owner === undefined) return;
    try {
      const next = await this.ledger(owner).tick(AbortSignal.timeout(HOST_CALL_TIMEOUT_MS * 4));
      await this.schedule(next);
    } catch (error) {
      logEvent('error', 'job check failed; retrying in a minute', { error: String(error) });
      await this.ctx.storage.setAlarm(Date.now() + 60_000);
    }
  }

  // ---- the index book ----

  async addOwner(userId: string): Promise<void> {
    this.ctx.storage.sql.exec('INSERT OR IGNORE INTO owners (user_id) VALUES (?)', userId);
  }

  async owners(): Promise<string[]> {
    return this.ctx.storage.sql
      .exec<{ user_id: string }>('SELECT user_id FROM owners ORDER BY user_id LIMIT 10000')
      .toArray()
      .map((row) => row.user_id);
  }
}

/** Every user that has a job book (admins' listings and cancels). */
export async function jobOwners(env: Env): Promise<string[]> {
  return jobIndex(env).owners();
}
