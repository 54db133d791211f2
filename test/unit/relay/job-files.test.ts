/**
 * The stdio mode's job records on disk (relay/job-files.ts): modes, corrupt files, the temporary
 * file and rename of every write, and two processes writing one record and claiming one end.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileJobStore } from '../../../relay/job-files.ts';
import type { JobRecord } from '../../../shared/job-ledger.ts';
import { newJobId } from '../../../shared/jobs.ts';

process.env.LOG_LEVEL = 'warn';
const dirs: string[] = [];
const stateDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'mre-jobfiles-'));
  dirs.push(dir);
  return dir;
};

afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function record(extra: Partial<JobRecord> = {}): JobRecord {
  return {
    jobId: newJobId(),
    owner: 'stdio',
    ownerName: 'stdio',
    name: null,
    hostLabel: 'web1',
    route: { relay: null, host: 'web1' },
    guest: null,
    command: 'make build',
    createdAt: 1_000,
    timeoutMs: 3600_000,
    keepBytes: 1024 * 1024,
    state: 'running',
    report: null,
    checkedAt: null,
    cleanupAt: null,
    cleanedAt: null,
    endRecorded: false,
    note: null,
    ...extra,
  };
}

/** What the store logs (relay/log.ts writes one JSON line per entry to stderr). */
function captureLog(): () => string[] {
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  return () => lines;
}

describe('job records in files', () => {
  it('keeps each record in a 0600 file in a 0700 directory, and reads it back as written', async () => {
    const dir = stateDir();
    const store = new FileJobStore(dir);
    const written = record({ guest: { kind: 'lxc', id: '101' }, name: 'build ✓', command: 'printf \'%s\\n\' "$HOME"' });
    await store.put(written);
    expect(statSync(join(dir, 'jobs')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'jobs', `${written.jobId}.json`)).mode & 0o777).toBe(0o600);
    expect(await store.get(written.jobId)).toEqual(written);
    expect(await store.list()).toEqual([written]);
    expect(readdirSync(join(dir, 'jobs'))).toEqual([`${written.jobId}.json`]);
    await store.delete(written.jobId);
    expect(await store.get(written.jobId)).toBeUndefined();
    expect(await store.get('../../etc/passwd')).toBeUndefined();
  });

  it('narrows a jobs directory someone made with a wider mode', () => {
    const dir = stateDir();
    mkdirSync(join(dir, 'jobs'), { mode: 0o755 });
    new FileJobStore(dir);
    expect(statSync(join(dir, 'jobs')).mode & 0o777).toBe(0o700);
  });

  it('refuses a jobs directory that is a symbolic link', () => {
    const dir = stateDir();
    const elsewhere = stateDir();
    symlinkSync(elsewhere, join(dir, 'jobs'));
    expect(() => new FileJobStore(dir)).toThrow(/must be a directory/);
  });

  it('skips a corrupt, foreign or oversized file with one log line, and never throws', async () => {
    const dir = stateDir();
    const store = new FileJobStore(dir);
    const good = record();
    await store.put(good);
    const jobs = join(dir, 'jobs');
    const notJson = newJobId();
    const wrongShape = newJobId();
    const otherId = newJobId();
    const huge = newJobId();
    const directory = newJobId();
    writeFileSync(join(jobs, `${notJson}.json`), '{"jobId": "half a reco');
    writeFileSync(join(jobs, `${wrongShape}.json`), JSON.stringify({ ...record({ jobId: wrongShape }), state: 'flying' }));
    writeFileSync(join(jobs, `${otherId}.json`), JSON.stringify(record()));
    writeFileSync(join(jobs, `${huge}.json`), JSON.stringify(record({ jobId: huge, note: 'x'.repeat(300 * 1024) })));
    mkdirSync(join(jobs, `${directory}.json`));
    writeFileSync(join(jobs, 'notes.txt'), 'not a record at all');
    const logged = captureLog();

    expect(await store.list()).toEqual([good]);
    for (const id of [notJson, wrongShape, otherId, huge, directory]) expect(await store.get(id)).toBeUndefined();
    const lines = logged().filter((line) => line.includes('skipped an unreadable job record'));
    for (const id of [notJson, wrongShape, otherId, huge, directory]) expect(lines.filter((line) => line.includes(id))).toHaveLength(1);
    // Said once, not at every look.
    await store.list();
    expect(logged().filter((line) => line.includes('skipped an unreadable job record'))).toHaveLength(lines.length);
  });

  it('writes through a temporary file of its own, and clears temporary files and end markers that dead writers left', async () => {
    const dir = stateDir();
    const store = new FileJobStore(dir);
    const jobs = join(dir, 'jobs');
    const kept = record();
    await store.put(kept);
    // A writer that died before its rename, long ago and just now; an end marker of a deleted record.
    const old = `.${kept.jobId}.json.4242.1deadbeef.tmp`;
    const young = `.${kept.jobId}.json.4243.2deadbeef.tmp`;
    const orphan = `${newJobId()}.ended`;
    for (const name of [old, young, orphan]) writeFileSync(join(jobs, name), '{"jobId":');
    const longAgo = new Date(Date.now() - 3600_000);
    utimesSync(join(jobs, old), longAgo, longAgo);
    utimesSync(join(jobs, orphan), longAgo, longAgo);
    // The temporary file is not a record: a reader sees the complete record beside it.
    expect(await store.list()).toEqual([kept]);
    expect(readdirSync(jobs).sort()).toEqual([young, `${kept.jobId}.json`].sort());
  });

  it('reads at most maxRecords, the most recently changed, and says so', async () => {
    const dir = stateDir();
    const store = new FileJobStore(dir, { maxRecords: 3 });
    const records = [1, 2, 3, 4, 5].map((n) => record({ createdAt: n }));
    for (const [index, each] of records.entries()) {
      await store.put(each);
      const when = new Date(Date.now() - (10 - index) * 60_000);
      utimesSync(join(dir, 'jobs', `${each.jobId}.json`), when, when);
    }
    const logged = captureLog();
    const listed = await store.list();
    expect(listed.map((each) => each.createdAt).sort()).toEqual([3, 4, 5]);
    expect(logged().some((line) => line.includes('more job records than are read at once'))).toBe(true);
  });

  it('gives two processes writing one record whole records only, and exactly one of them each end', async () => {
    const dir = stateDir();
    const store = new FileJobStore(dir);
    const shared = record();
    await store.put(shared);
    const ends = Array.from({ length: 40 }, () => newJobId());
    const storeModule = resolve(import.meta.dirname, '../../../relay/job-files.ts');
    // Each writer puts the shared record 300 times, with a command big enough that a write takes a while, and claims every end.
    const script = `
      const { FileJobStore } = await import(${JSON.stringify(storeModule)});
      const [dir, who, base, ends] = [process.argv[1], process.argv[2], JSON.parse(process.argv[3]), JSON.parse(process.argv[4])];
      const store = new FileJobStore(dir);
      let claimed = 0;
      for (let i = 0; i < 300; i++) {
        await store.put({ ...base, command: who + ' ' + i + ' ' + 'y'.repeat(60000) });
        const end = ends[i % ends.length];
        if (i < ends.length && (await store.claimEnd(end))) claimed++;
      }
      process.stdout.write(String(claimed));
    `;
    const writers = ['A', 'B'].map((who) =>
      spawn(process.execPath, ['--input-type=module', '-e', script, dir, who, JSON.stringify(shared), JSON.stringify(ends)], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LOG_LEVEL: 'error' },
      }),
    );
    const results = writers.map(
      (child) =>
        new Promise<{ code: number | null; out: string; err: string }>((done) => {
          let out = '';
          let err = '';
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
          child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
          child.on('close', (code) => done({ code, out, err }));
        }),
    );
    let finished = false;
    void Promise.all(results).then(() => (finished = true));
    // Read all the while (bounded): every read is a whole record of one writer or the other.
    const until = Date.now() + 60_000;
    let reads = 0;
    while (!finished && Date.now() < until) {
      const seen = await store.get(shared.jobId);
      expect(seen?.jobId).toBe(shared.jobId);
      reads++;
      await new Promise((next) => setImmediate(next));
    }
    const [a, b] = await Promise.all(results);
    expect(a, a?.err).toMatchObject({ code: 0 });
    expect(b, b?.err).toMatchObject({ code: 0 });
    expect(reads).toBeGreaterThan(0);
    expect(Number(a?.out) + Number(b?.out)).toBe(ends.length);
    expect((await store.get(shared.jobId))?.command).toMatch(/^[AB] 299 /);
    // No temporary file survives the writes.
    expect(readdirSync(join(dir, 'jobs')).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});
