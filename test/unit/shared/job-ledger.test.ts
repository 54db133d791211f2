/**
 * The job record state machine (shared/job-ledger.ts) with a scripted link to the host: each test
 * says what the host answers, and checks what the ledger records and tells the caller. The store
 * is an in-memory map whose every call yields (as SQLite in a Durable Object or a file does), so
 * concurrent calls interleave the way they can in production.
 */
import { describe, expect, it } from 'vitest';
import { failure, success, type Outcome } from '../../../shared/errors.ts';
import {
  JobLedger,
  TOMBSTONE_MS,
  type JobHostLink,
  type JobOperationBody,
  type JobRecord,
  type JobRoute,
  type JobStore,
  type NewJob,
} from '../../../shared/job-ledger.ts';
import { newJobId } from '../../../shared/jobs.ts';
import { MAX_LISTED_JOBS } from '../../../shared/limits.ts';
import type { JobReport, OperationResult } from '../../../shared/protocol.ts';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

class MemoryStore implements JobStore {
  readonly records = new Map<string, JobRecord>();
  async get(jobId: string): Promise<JobRecord | undefined> {
    await tick();
    const record = this.records.get(jobId);
    return record ? structuredClone(record) : undefined;
  }
  async put(record: JobRecord): Promise<void> {
    await tick();
    this.records.set(record.jobId, structuredClone(record));
  }
  async list(): Promise<JobRecord[]> {
    await tick();
    return [...this.records.values()].map((record) => structuredClone(record));
  }
  async delete(jobId: string): Promise<void> {
    await tick();
    this.records.delete(jobId);
  }
}

/** A store shared by several processes: it decides who records an end. */
class SharedStore extends MemoryStore {
  private readonly claimed = new Set<string>();
  async claimEnd(jobId: string): Promise<boolean> {
    await tick();
    if (this.claimed.has(jobId)) return false;
    this.claimed.add(jobId);
    return true;
  }
}

type Answer = Outcome<OperationResult> | ((operation: JobOperationBody) => Outcome<OperationResult> | Promise<Outcome<OperationResult>>);

/** A host whose answers the test writes: per op, a queue of answers, else a default. */
class ScriptedLink implements JobHostLink {
  readonly sent: JobOperationBody[] = [];
  private readonly answers = new Map<string, Answer[]>();
  private readonly defaults = new Map<string, Answer>();

  answer(op: JobOperationBody['op'], answer: Answer): this {
    this.defaults.set(op, answer);
    return this;
  }
  once(op: JobOperationBody['op'], answer: Answer): this {
    this.answers.set(op, [...(this.answers.get(op) ?? []), answer]);
    return this;
  }
  async run(_route: JobRoute, operation: JobOperationBody): Promise<Outcome<OperationResult>> {
    this.sent.push(operation);
    await tick();
    const answer = this.answers.get(operation.op)?.shift() ?? this.defaults.get(operation.op);
    if (answer === undefined) return failure('internal', `the script has no answer for ${operation.op}`);
    return typeof answer === 'function' ? answer(operation) : answer;
  }
  count(op: JobOperationBody['op']): number {
    return this.sent.filter((operation) => operation.op === op).length;
  }
}

const HOUR = 3600_000;

function report(state: JobReport['state'], extra: Partial<JobReport> = {}): JobReport {
  const ended = state !== 'running' && state !== 'absent';
  return {
    state,
    exitCode: state === 'exited' ? 0 : null,
    signal: null,
    startedAt: state === 'absent' ? null : 1_000,
    endedAt: ended ? 2_000 : null,
    stdoutBytes: 6,
    stderrBytes: 0,
    stdoutDropped: 0,
    stderrDropped: 0,
    stdoutTail: 'hello\n',
    stderrTail: '',
    stopConfirmed: null,
    processesLeft: [],
    ...extra,
  };
}

const statusIs = (state: JobReport['state'], extra: Partial<JobReport> = {}): Outcome<OperationResult> =>
  success({ op: 'job_status', report: report(state, extra) });
const startedAs = (state: JobReport['state']): Outcome<OperationResult> => success({ op: 'job_start', report: report(state) });

function job(extra: Partial<NewJob> = {}): NewJob {
  return {
    jobId: newJobId(),
    owner: 'u1',
    ownerName: 'alice',
    name: null,
    hostLabel: 'web1',
    route: { relay: null, host: 'web1' },
    guest: null,
    command: 'make build',
    timeoutMs: HOUR,
    ...extra,
  };
}

function ledgerWith(link: ScriptedLink, options: { perUser?: number; clock?: { now: number }; store?: MemoryStore } = {}) {
  const store = options.store ?? new MemoryStore();
  const ended: JobRecord[] = [];
  const clock = options.clock ?? { now: 10_000 };
  const ledger = new JobLedger({
    store,
    link,
    limits: { perUser: options.perUser ?? 10, keepBytes: 1024 * 1024, retentionMs: 24 * HOUR },
    onEnded: async (record) => {
      await tick();
      ended.push(record);
    },
    now: () => clock.now,
  });
  return { ledger, store, ended, clock };
}

const signal = new AbortController().signal;

describe('the job ledger', () => {
  it('keeps a start whose answer was lost as "starting", and the next status settles it from the host', async () => {
    const link = new ScriptedLink().once('job_start', failure('relay_disconnected', 'the relay went away')).answer('job_status', statusIs('running'));
    const { ledger, store } = ledgerWith(link);
    const started = await ledger.start(job(), signal);
    expect(started.ok).toBe(true);
    if (!started.ok) return;
    expect(started.value.state).toBe('starting');
    expect(started.value.staleReason).toContain('the relay went away');
    expect((await store.get(started.value.jobId))?.state).toBe('starting');

    const status = await ledger.status(started.value.jobId, signal);
    expect(status.ok && status.value.state).toBe('running');
    expect(status.ok && status.value.staleReason).toBeUndefined();
    expect(link.count('job_status')).toBe(1);
  });

  it('forgets a start the relay refused, so it neither counts nor lists', async () => {
    const link = new ScriptedLink().once('job_start', failure('host_read_only', 'read-only'));
    const { ledger, store } = ledgerWith(link);
    const refused = await ledger.start(job(), signal);
    expect(refused.ok ? null : refused.error.code).toBe('host_read_only');
    expect(store.records.size).toBe(0);
  });

  it('settles a "starting" job whose start never reached the host as lost, saying so', async () => {
    const link = new ScriptedLink().once('job_start', failure('relay_timeout', 'no answer')).answer('job_status', statusIs('absent'));
    const { ledger, ended } = ledgerWith(link);
    const started = await ledger.start(job(), signal);
    if (!started.ok) throw new Error('start failed');
    const status = await ledger.status(started.value.jobId, signal);
    expect(status.ok && status.value.state).toBe('lost');
    expect(status.ok && status.value.staleReason).toContain('never reached the host');
    expect(ended).toHaveLength(1);
  });

  it('does not settle a start still on its way as lost when a periodic look finds no job on the host yet', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const link = new ScriptedLink()
      .once('job_start', async () => {
        await held;
        return startedAs('running');
      })
      .once('job_status', statusIs('absent'))
      .answer('job_status', statusIs('exited'));
    const { ledger, ended, clock, store } = ledgerWith(link);
    const starting = ledger.start(job(), signal);
    while (store.records.size === 0) await tick();
    const [id] = [...store.records.keys()];
    if (id === undefined) throw new Error('no record');
    clock.now += 6_000;
    await ledger.tick(signal);
    expect(link.count('job_status')).toBe(1);
    expect((await store.get(id))?.state).toBe('starting');
    release();
    const started = await starting;
    expect(started.ok && started.value.state).toBe('running');
    const status = await ledger.status(id, signal);
    expect(status.ok && status.value.state).toBe('exited');
    expect(ended.map((record) => record.state)).toEqual(['exited']);
  });

  it('settles a start whose sender died mid-start as lost once it can no longer reach the host', async () => {
    const link = new ScriptedLink().answer('job_status', statusIs('absent'));
    const { ledger, ended, clock, store } = ledgerWith(link);
    const id = newJobId();
    // What a process killed between recording the start and sending it leaves behind.
    await store.put({
      ...job({ jobId: id }),
      createdAt: clock.now,
      keepBytes: 1024,
      state: 'starting',
      report: null,
      checkedAt: null,
      cleanupAt: null,
      cleanedAt: null,
      endRecorded: false,
      note: null,
    });
    clock.now += 60_000;
    expect((await ledger.status(id, signal)).ok && (await store.get(id))?.state).toBe('starting');
    clock.now += 60_000;
    const status = await ledger.status(id, signal);
    expect(status.ok && status.value.state).toBe('lost');
    expect(ended).toHaveLength(1);
  });

  it('records an end exactly once when two status calls see it at the same time', async () => {
    const link = new ScriptedLink().answer('job_start', startedAs('running')).answer('job_status', statusIs('exited'));
    const { ledger, ended } = ledgerWith(link);
    const started = await ledger.start(job(), signal);
    if (!started.ok) throw new Error('start failed');
    const [a, b] = await Promise.all([ledger.status(started.value.jobId, signal), ledger.status(started.value.jobId, signal)]);
    expect(a.ok && a.value.state).toBe('exited');
    expect(b.ok && b.value.state).toBe('exited');
    expect(ended).toHaveLength(1);
    // Later looks neither ask the host again nor record it again.
    await ledger.status(started.value.jobId, signal);
    await ledger.tick(signal);
    expect(ended).toHaveLength(1);
  });

  it('records an end once when two ledgers on one shared store (two stdio servers) see it at the same time', async () => {
    const link = new ScriptedLink().answer('job_start', startedAs('running')).answer('job_status', statusIs('exited'));
    const store = new SharedStore();
    const first = ledgerWith(link, { store });
    const second = ledgerWith(link, { store });
    const started = await first.ledger.start(job(), signal);
    if (!started.ok) throw new Error('start failed');
    await Promise.all([first.ledger.status(started.value.jobId, signal), second.ledger.status(started.value.jobId, signal)]);
    expect(first.ended.length + second.ended.length).toBe(1);
  });

  it('records an end once when a status that failed to reach the host finishes after another call recorded the end', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const link = new ScriptedLink()
      .answer('job_start', startedAs('running'))
      // The first status hangs, then fails (host unreachable); the second sees the end.
      .once('job_status', async () => {
        await held;
        return failure('host_unreachable', 'no route');
      })
      .answer('job_status', statusIs('exited'));
    const { ledger, ended, store, clock } = ledgerWith(link);
    const started = await ledger.start(job(), signal);
    if (!started.ok) throw new Error('start failed');
    const slow = ledger.status(started.value.jobId, signal);
    await tick();
    const fast = await ledger.status(started.value.jobId, signal);
    expect(fast.ok && fast.value.state).toBe('exited');
    release();
    const late = await slow;
    expect(late.ok && late.value.staleReason).toContain('no route');
    // The failed look must not have put back the record from before the end.
    const record = await store.get(started.value.jobId);
    expect(record?.state).toBe('exited');
    expect(record?.endRecorded).toBe(true);
    clock.now += HOUR;
    await ledger.tick(signal);
    await ledger.status(started.value.jobId, signal);
    expect(ended).toHaveLength(1);
  });

  it('after the retention time deletes the files on the host and leaves a tombstone that says the job was deleted', async () => {
    const link = new ScriptedLink()
      .answer('job_start', startedAs('running'))
      .answer('job_status', statusIs('exited'))
      .answer('job_cleanup', success({ op: 'job_cleanup', removed: true }));
    const { ledger, clock, store } = ledgerWith(link);
    const started = await ledger.start(job(), signal);
    if (!started.ok) throw new Error('start failed');
    const id = started.value.jobId;
    await ledger.status(id, signal);

    // Within retention: nothing is deleted.
    clock.now = 2_000 + 24 * HOUR - 1;
    await ledger.tick(signal);
    expect(link.count('job_cleanup')).toBe(0);

    clock.now = 2_000 + 24 * HOUR;
    await ledger.tick(signal);
    expect(link.sent.filter((operation) => operation.op === 'job_cleanup')).toEqual([{ op: 'job_cleanup', jobId: id }]);
    expect((await store.get(id))?.state).toBe('cleaned');

    for (const answer of [await ledger.status(id, signal), await ledger.output({ jobId: id, stream: 'stdout', offset: 0, limit: 10 }, signal)]) {
      expect(answer.ok).toBe(false);
      if (answer.ok) continue;
      expect(answer.error.code).toBe('job_not_found');
      expect(answer.error.message).toContain('deleted');
      expect(answer.error.message).toContain(id);
    }
    // A made-up id gets job_not_found too, but without "deleted".
    const unknown = await ledger.status(newJobId(), signal);
    expect(unknown.ok ? '' : unknown.error.message).not.toContain('deleted');
    expect(await ledger.list({})).toEqual([]);

    // The tombstone itself goes after TOMBSTONE_MS.
    clock.now += TOMBSTONE_MS;
    await ledger.tick(signal);
    expect(store.records.size).toBe(0);
  });

  it('keeps a tombstone a tombstone when a status that was in flight during the cleanup answers late', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const link = new ScriptedLink().answer('job_start', startedAs('running')).answer('job_cleanup', success({ op: 'job_cleanup', removed: true }));
    const { ledger, clock, store } = ledgerWith(link);
    const started = await ledger.start(job(), signal);
    if (!started.ok) throw new Error('start failed');
    const id = started.value.jobId;
    // A status that reaches the host before the cleanup, and whose answer ("absent") comes after it.
    link.once('job_status', async () => {
      await held;
      return statusIs('absent');
    });
    const inFlight = ledger.status(id, signal);
    await tick();
    // Meanwhile another look recorded the end, and the retention time passed.
    const record = await store.get(id);
    if (!record) throw new Error('no record');
    await store.put({ ...record, state: 'exited', report: report('exited'), endRecorded: true, cleanupAt: 5_000, checkedAt: 2_000 });
    clock.now = 6_000;
    await ledger.tick(signal);
    expect((await store.get(id))?.state).toBe('cleaned');
    release();
    await inFlight;
    expect((await store.get(id))?.state).toBe('cleaned');
    const status = await ledger.status(id, signal);
    expect(status.ok ? null : status.error.message).toContain('deleted');
  });

  it('refuses a start beyond the per-user limit, also when the starts come at once, and counts only running jobs', async () => {
    const link = new ScriptedLink().answer('job_start', startedAs('running')).answer('job_status', statusIs('running'));
    const { ledger } = ledgerWith(link, { perUser: 2 });
    const results = await Promise.all([1, 2, 3, 4].map(() => ledger.start(job(), signal)));
    const refused = results.filter((result) => !result.ok);
    expect(results.filter((result) => result.ok)).toHaveLength(2);
    expect(refused).toHaveLength(2);
    for (const result of refused) {
      expect(result.ok ? null : result.error.code).toBe('job_limit');
      expect(result.ok ? '' : result.error.message).toContain('JOBS_PER_USER=2');
    }
    expect(link.count('job_start')).toBe(2);

    // Another owner has a limit of their own.
    expect((await ledger.start(job({ owner: 'u2' }), signal)).ok).toBe(true);
    // Once one of the first two has ended, there is room again.
    const first = results.find((result) => result.ok);
    if (!first?.ok) throw new Error('no job started');
    link.once('job_status', statusIs('exited'));
    await ledger.status(first.value.jobId, signal);
    expect((await ledger.start(job(), signal)).ok).toBe(true);
    expect((await ledger.start(job(), signal)).ok).toBe(false);
  });

  it('asks the host about jobs counted as running before it refuses a start for the limit: ended ones make room', async () => {
    const link = new ScriptedLink().answer('job_start', startedAs('running')).answer('job_status', statusIs('running'));
    const { ledger } = ledgerWith(link, { perUser: 2 });
    expect((await ledger.start(job(), signal)).ok).toBe(true);
    expect((await ledger.start(job(), signal)).ok).toBe(true);
    // Both ended on the host since they were started; nobody has looked yet.
    link.answer('job_status', statusIs('exited'));
    const third = await ledger.start(job(), signal);
    expect(third.ok, third.ok ? '' : third.error.message).toBe(true);
    expect(link.count('job_status')).toBe(2);
  });

  it('refuses a page the relay answers for another offset, longer than asked, or past the end of the stream', async () => {
    const link = new ScriptedLink().answer('job_start', startedAs('running'));
    const { ledger } = ledgerWith(link);
    const started = await ledger.start(job(), signal);
    if (!started.ok) throw new Error('not started');
    const jobId = started.value.jobId;
    const page = (offset: number, bytes: number, size: number, dropped = 0): Outcome<OperationResult> =>
      success({ op: 'job_output', offset, data: Buffer.alloc(bytes, 0x61).toString('base64'), size, dropped, ended: true });
    const read = async (answer: Outcome<OperationResult>) => {
      link.once('job_output', answer);
      return ledger.output({ jobId, stream: 'stdout', offset: 100, limit: 10 }, signal);
    };
    // The page asked for: fine.
    expect(await read(page(100, 10, 200))).toMatchObject({ ok: true, value: { offset: 100, size: 200, complete: false } });
    expect(await read(page(100, 0, 100))).toMatchObject({ ok: true, value: { offset: 100, complete: true } });
    // Reading ahead of a stream that has not reached the offset yet: no bytes, not an error.
    expect(await read(page(100, 0, 50))).toMatchObject({ ok: true, value: { offset: 100, size: 50 } });
    for (const forged of [page(0, 10, 200), page(100, 11, 200), page(100, 10, 105), page(100, 5, 200, 300), page(100, 5, 200, 150)]) {
      expect(await read(forged)).toMatchObject({ ok: false, error: { code: 'protocol_error' } });
    }
  });

  it('lists the newest jobs only, one more than are shown, however many records the store holds', async () => {
    const { ledger, store } = ledgerWith(new ScriptedLink());
    for (let index = 0; index < 3 * MAX_LISTED_JOBS; index += 1) {
      const record: JobRecord = {
        ...job(),
        createdAt: 1_000 + index,
        keepBytes: 1024,
        state: 'exited',
        report: report('exited'),
        checkedAt: 2_000,
        cleanupAt: null,
        cleanedAt: null,
        endRecorded: true,
        note: null,
      };
      store.records.set(record.jobId, record);
    }
    const listed = await ledger.list({});
    expect(listed).toHaveLength(MAX_LISTED_JOBS + 1);
    expect(listed.map((view) => Date.parse(view.createdAt))).toEqual(
      Array.from({ length: MAX_LISTED_JOBS + 1 }, (_, i) => 1_000 + 3 * MAX_LISTED_JOBS - 1 - i),
    );
  });

  it('keeps asking about an ended job that left processes running, and sends a cancel for them, but not for one that left none', async () => {
    const left = ['4242 (sleep)'];
    const link = new ScriptedLink()
      .answer('job_start', startedAs('running'))
      .once('job_status', statusIs('exited', { processesLeft: left }))
      .once('job_status', statusIs('exited', { processesLeft: left }))
      .answer('job_cancel', success({ op: 'job_cancel', report: report('exited') }));
    const { ledger, ended } = ledgerWith(link);
    const started = await ledger.start(job(), signal);
    if (!started.ok) throw new Error('not started');
    const jobId = started.value.jobId;
    expect(await ledger.status(jobId, signal)).toMatchObject({ ok: true, value: { state: 'exited', processesLeft: left } });
    // Not final while something it started runs: the host is asked again.
    expect(await ledger.status(jobId, signal)).toMatchObject({ ok: true, value: { state: 'exited', processesLeft: left } });
    expect(link.count('job_status')).toBe(2);
    const cancelled = await ledger.cancel(jobId, signal);
    expect(cancelled).toMatchObject({ ok: true, value: { state: 'exited', exitCode: 0, processesLeft: [] } });
    expect(link.count('job_cancel')).toBe(1);
    // Now final: answered from the record, and the end was recorded once.
    expect(await ledger.status(jobId, signal)).toMatchObject({ ok: true, value: { state: 'exited' } });
    expect(await ledger.cancel(jobId, signal)).toMatchObject({ ok: true, value: { state: 'exited' } });
    expect(link.count('job_status')).toBe(2);
    expect(link.count('job_cancel')).toBe(1);
    expect(ended).toHaveLength(1);
  });
});
