/**
 * A user's JobBook (worker/jobs/job-book.ts) through the real hub and a stand-in relay that answers
 * the job_* operations as the relay does: records bound to their owner, a start whose answer is
 * lost kept as `starting` and settled by the host, the end audited exactly once however many calls
 * see it, and files on the host deleted after retention with a tombstone that says so.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { newJobId } from '../../shared/jobs.ts';
import type { JobRecord } from '../../shared/job-ledger.ts';
import type { HubFrame, JobReport } from '../../shared/protocol.ts';
import { auditQuerySchema, readAudit } from '../../worker/audit/audit-log.ts';
import { jobBook, MAX_JOB_RECORDS } from '../../worker/jobs/job-book.ts';
import { connectFakeRelay, FAKE_RELAY_ID, type FakeRelay } from './relay-socket.ts';

let relay: FakeRelay | undefined;

afterEach(() => {
  relay?.socket.close(1000, 'test done');
  relay = undefined;
});

function report(overrides: Partial<JobReport>): JobReport {
  return {
    state: 'running',
    exitCode: null,
    signal: null,
    startedAt: Date.now(),
    endedAt: null,
    stdoutBytes: 0,
    stderrBytes: 0,
    stdoutDropped: 0,
    stderrDropped: 0,
    stdoutTail: '',
    stderrTail: '',
    stopConfirmed: null,
    processesLeft: [],
    ...overrides,
  };
}

function newJob(owner: string, command = `sleep 100 # ${crypto.randomUUID()}`) {
  return {
    jobId: newJobId(),
    owner,
    ownerName: owner,
    name: null,
    hostLabel: 'web1',
    route: { relay: FAKE_RELAY_ID, host: 'web1' },
    guest: null,
    command,
    timeoutMs: 3_600_000,
  };
}

type RequestFrame = Extract<HubFrame, { type: 'request' }>;

async function nextRequest(fake: FakeRelay, op: string): Promise<RequestFrame> {
  const frame = await fake.next((candidate) => candidate.type === 'request' && candidate.operation.op === op);
  if (frame.type !== 'request') throw new Error('not a request');
  return frame;
}

/** Answer the next request of kind `op` with the job report (or result) given. */
async function answer(fake: FakeRelay, op: 'job_start' | 'job_status' | 'job_cancel', state: Partial<JobReport>): Promise<RequestFrame> {
  const request = await nextRequest(fake, op);
  fake.send({ type: 'result', id: request.id, result: { op, report: report(state) } });
  return request;
}

async function endRows(jobId: string): Promise<number> {
  const rows = await readAudit(env, auditQuerySchema.parse({ tool: 'job_end', limit: 10_000 }));
  return rows.filter((row) => row.target?.startsWith(`job ${jobId}:`)).length;
}

describe('a JobBook', () => {
  it("holds only its owner's jobs: another user's book does not know the id", async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const owner = `alice-${crypto.randomUUID()}`;
    const job = newJob(owner);
    const started = jobBook(env, owner).start(job);
    const request = await answer(relay, 'job_start', { state: 'running' });
    expect(request.operation).toMatchObject({ op: 'job_start', host: 'web1', jobId: job.jobId, command: job.command });
    const view = await started;
    expect(view).toMatchObject({ ok: true, value: { jobId: job.jobId, state: 'running' } });
    expect(await jobBook(env, owner).locate(job.jobId)).toMatchObject({ relay: FAKE_RELAY_ID, host: 'web1' });
    const other = `bob-${crypto.randomUUID()}`;
    expect(await jobBook(env, other).locate(job.jobId)).toBeNull();
    const theirs = await jobBook(env, other).status(other, job.jobId);
    const madeUp = await jobBook(env, other).status(other, newJobId());
    expect(theirs).toMatchObject({ ok: false, error: { code: 'job_not_found' } });
    // The same words, but for the id itself.
    expect(theirs.ok ? '' : theirs.error.message.replace(job.jobId, 'ID')).toBe(madeUp.ok ? 'x' : madeUp.error.message.replace(/[0-9a-f]{32}/, 'ID'));
  });

  it('keeps a start whose answer was lost as starting, and lets the host settle it', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const owner = `carol-${crypto.randomUUID()}`;
    const job = newJob(owner);
    const started = jobBook(env, owner).start(job);
    await nextRequest(relay, 'job_start');
    // The relay goes away before it answers: whether the job started is unknown.
    relay.socket.close(1000, 'relay gone');
    const view = await started;
    expect(view).toMatchObject({ ok: true, value: { state: 'starting' } });
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const status = jobBook(env, owner).status(owner, job.jobId);
    await answer(relay, 'job_status', { state: 'running' });
    expect(await status).toMatchObject({ ok: true, value: { state: 'running' } });
  });

  it('records a lost start as never run when the host has no trace of it', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const owner = `dan-${crypto.randomUUID()}`;
    const job = newJob(owner);
    const started = jobBook(env, owner).start(job);
    await nextRequest(relay, 'job_start');
    relay.socket.close(1000, 'relay gone');
    await started;
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const status = jobBook(env, owner).status(owner, job.jobId);
    await answer(relay, 'job_status', { state: 'absent', startedAt: null });
    const settled = await status;
    expect(settled).toMatchObject({ ok: true, value: { state: 'lost', staleReason: expect.stringContaining('never reached the host') } });
  });

  it('audits the end once, however many calls see it', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const owner = `erin-${crypto.randomUUID()}`;
    const job = newJob(owner);
    const started = jobBook(env, owner).start(job);
    await answer(relay, 'job_start', { state: 'running' });
    await started;
    const book = jobBook(env, owner);
    const first = book.status(owner, job.jobId);
    const second = book.status(owner, job.jobId);
    const ended = { state: 'exited' as const, exitCode: 3, endedAt: Date.now(), stdoutBytes: 12 };
    await answer(relay, 'job_status', ended);
    await answer(relay, 'job_status', ended);
    expect(await first).toMatchObject({ ok: true, value: { state: 'exited', exitCode: 3 } });
    expect(await second).toMatchObject({ ok: true, value: { state: 'exited', exitCode: 3 } });
    // A third look is answered from the record: nothing is sent to the relay.
    const before = relay.received.length;
    expect(await book.status(owner, job.jobId)).toMatchObject({ ok: true, value: { state: 'exited' } });
    expect(relay.received.slice(before).filter((frame) => frame.type === 'request')).toEqual([]);
    expect(await endRows(job.jobId)).toBe(1);
  });

  it('deletes the files on the host after retention and then says the output was deleted', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const owner = `fay-${crypto.randomUUID()}`;
    const job = newJob(owner);
    const book = jobBook(env, owner);
    const started = book.start(job);
    await answer(relay, 'job_start', { state: 'running' });
    await started;
    const status = book.status(owner, job.jobId);
    await answer(relay, 'job_status', { state: 'exited', exitCode: 0, endedAt: Date.now() });
    await status;
    // Retention passed (days in real life): move the record's cleanup time into the past.
    await runInDurableObject(book, (_instance, state) => {
      const row = state.storage.sql.exec<{ record: string }>('SELECT record FROM jobs WHERE job_id = ?', job.jobId).one();
      const record = JSON.parse(row.record) as JobRecord;
      state.storage.sql.exec('UPDATE jobs SET record = ? WHERE job_id = ?', JSON.stringify({ ...record, cleanupAt: Date.now() - 1 }), job.jobId);
    });
    const alarm = runDurableObjectAlarm(book);
    const cleanup = await nextRequest(relay, 'job_cleanup');
    expect(cleanup.operation).toMatchObject({ op: 'job_cleanup', host: 'web1', jobId: job.jobId });
    relay.send({ type: 'result', id: cleanup.id, result: { op: 'job_cleanup', removed: true } });
    expect(await alarm).toBe(true);
    const after = await book.status(owner, job.jobId);
    expect(after).toMatchObject({ ok: false, error: { code: 'job_not_found', message: expect.stringContaining('output was deleted') } });
  });

  it('refuses a start beyond the per-user limit without sending it (after asking the host that the jobs it counts still run)', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const owner = `gus-${crypto.randomUUID()}`;
    const book = jobBook(env, owner);
    // JOBS_PER_USER in the pool's config.
    const limit = Number(env.JOBS_PER_USER ?? 10);
    for (let index = 0; index < limit; index += 1) {
      const started = book.start(newJob(owner));
      await answer(relay, 'job_start', { state: 'running' });
      expect(await started).toMatchObject({ ok: true });
    }
    const before = relay.received.length;
    const refused = book.start(newJob(owner));
    // Before it refuses, it asks the host whether the jobs it counts still run: they do.
    for (let index = 0; index < limit; index += 1) await answer(relay, 'job_status', { state: 'running' });
    expect(await refused).toMatchObject({ ok: false, error: { code: 'job_limit', message: expect.stringContaining(`JOBS_PER_USER=${limit}`) } });
    const sent = relay.received.slice(before).filter((frame) => frame.type === 'request');
    expect(sent.every((frame) => frame.type === 'request' && frame.operation.op === 'job_status')).toBe(true);
  });

  it('at its record cap drops the oldest tombstone to start a job, and refuses only when every record is still live', async () => {
    relay = await connectFakeRelay({ hosts: ['web1'] });
    const owner = `hal-${crypto.randomUUID()}`;
    const book = jobBook(env, owner);
    const old = Date.now() - 40 * 24 * 3600_000;
    // A heavy user's book: ended jobs whose output is still kept, and one tombstone (the oldest record).
    const tombstone = newJobId();
    await runInDurableObject(book, (_instance, state) => {
      const put = (record: JobRecord): void => {
        state.storage.sql.exec('INSERT INTO jobs (job_id, created_at, record) VALUES (?, ?, ?)', record.jobId, record.createdAt, JSON.stringify(record));
      };
      const ended = (jobId: string, createdAt: number, cleaned: boolean): JobRecord => ({
        ...newJob(owner, 'true'),
        jobId,
        createdAt,
        keepBytes: 1024 * 1024,
        state: cleaned ? 'cleaned' : 'exited',
        report: report({ state: 'exited', exitCode: 0, endedAt: createdAt + 1 }),
        checkedAt: createdAt + 1,
        cleanupAt: Date.now() + 24 * 3600_000,
        cleanedAt: cleaned ? createdAt + 2 : null,
        endRecorded: true,
        note: null,
      });
      put(ended(tombstone, old, true));
      for (let index = 1; index < MAX_JOB_RECORDS; index += 1) put(ended(newJobId(), old + index, false));
    });
    expect(await book.status(owner, tombstone)).toMatchObject({ ok: false, error: { message: expect.stringContaining('output was deleted') } });
    const started = book.start(newJob(owner));
    await answer(relay, 'job_start', { state: 'running' });
    expect(await started).toMatchObject({ ok: true, value: { state: 'running' } });
    expect(await book.locate(tombstone)).toBeNull();
    // Now every record is a running job or an ended one whose output the host still keeps: refused, nothing sent.
    const before = relay.received.length;
    expect(await book.start(newJob(owner))).toMatchObject({ ok: false, error: { code: 'job_limit' } });
    expect(relay.received.slice(before).filter((frame) => frame.type === 'request')).toEqual([]);
  });
});
