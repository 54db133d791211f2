/**
 * A job whose runner has not written its pid yet (a start does not wait for it) is running for
 * every job script, as its status says, run by the real /bin/sh against a job directory on disk:
 * a cleanup keeps its directory, a page does not call its output complete, and a cancel records
 * its stop, after which a runner that comes up runs nothing (nor one that comes up after the grace,
 * when the job already reads as lost). A cancelled one is ended for a page and the count, but a
 * cleanup keeps it while its runner may still come up. Before, only the start's count knew:
 * a cleanup right after a start deleted a running job's directory (CI caught it once).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cancelJobArgs, cleanupJobArgs, pageJobArgs, parsePage, runnerScript, START_GRACE_MS } from '../../../relay/host-jobs.ts';
import { startWithLimitOfOne } from '../../harness/job-start.ts';
import { newRunId } from '../../../relay/host-stop.ts';
import { newJobId } from '../../../shared/jobs.ts';

const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A jobs directory with one job as a start leaves it before its runner writes a pid: cmd, meta (started at `startedAtMs`), no pid. */
function startingJob(startedAtMs: number, command = 'true'): { base: string; jobId: string; dir: string; runId: string } {
  const base = mkdtempSync(join(tmpdir(), 'mre-jobstarting-'));
  dirs.push(base);
  const jobId = newJobId();
  const dir = join(base, jobId);
  const runId = newRunId();
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'cmd'), command);
  writeFileSync(join(dir, 'out'), 'partial output\n');
  writeFileSync(join(dir, 'err'), '');
  writeFileSync(join(dir, 'meta'), `${runId} 60000 1024 ${startedAtMs}\n`);
  return { base, jobId, dir, runId };
}

function run(argv: string[]): Buffer {
  const [command, ...args] = argv;
  const ran = spawnSync(command as string, args, { timeout: 20_000 });
  expect(ran.status).toBe(0);
  return ran.stdout;
}

describe('a job whose runner has not written its pid yet', () => {
  it('is kept by a cleanup, as a running job is', () => {
    const job = startingJob(Date.now());
    expect(run(cleanupJobArgs(job.base, job.jobId)).toString()).toBe('mre-cleanup running\n');
    expect(existsSync(job.dir)).toBe(true);
  });

  it('has output that a page does not call complete', () => {
    const job = startingJob(Date.now());
    const page = parsePage(run(pageJobArgs(job.base, job.jobId, 'stdout', 0, 1024)), 1024);
    expect(page).toMatchObject({ ended: false, size: 15 });
  });

  it('is cancelled by a cancel: the stop is recorded, and a runner that comes up after it runs nothing', () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'mre-jobstarting-ran-')), 'ran');
    dirs.push(join(marker, '..'));
    const job = startingJob(Date.now(), `touch ${marker}`);
    run(cancelJobArgs(job.base, job.jobId));
    expect(readFileSync(join(job.dir, 'stopped'), 'utf8')).toMatch(/^cancel [0-9]+\n$/);
    const deadline = Math.floor(Date.now() / 1000) + 60;
    const runner = spawnSync('setsid', ['sh', '-c', runnerScript(), 'mre-job', job.dir, job.runId, String(deadline), '5', '1024'], { timeout: 20_000 });
    expect(runner.status).toBe(0);
    expect(existsSync(join(job.dir, 'pid'))).toBe(true);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(job.dir, 'status'))).toBe(false);
  });

  it('once cancelled, is ended for a page and not counted by a start, yet kept by a cleanup while its runner may still come up', () => {
    const job = startingJob(Date.now());
    run(cancelJobArgs(job.base, job.jobId));
    expect(parsePage(run(pageJobArgs(job.base, job.jobId, 'stdout', 0, 1024)), 1024)).toMatchObject({ ended: true });
    expect(startWithLimitOfOne(job.base)).toBeNull();
    expect(run(cleanupJobArgs(job.base, job.jobId)).toString()).toBe('mre-cleanup running\n');
  });

  it('runs nothing when its runner comes up after the start grace (the job reads as lost by then, for good)', () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'mre-jobstarting-ran-')), 'ran');
    dirs.push(join(marker, '..'));
    const job = startingJob(Date.now() - START_GRACE_MS - 5_000, `touch ${marker}`);
    const deadline = Math.floor(Date.now() / 1000) + 60;
    const runner = spawnSync('setsid', ['sh', '-c', runnerScript(), 'mre-job', job.dir, job.runId, String(deadline), '5', '1024'], { timeout: 20_000 });
    expect(runner.status).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(job.dir, 'status'))).toBe(false);
  });

  it('is no longer running once the start grace is over: a cleanup removes it, and a page calls it ended', () => {
    const job = startingJob(Date.now() - START_GRACE_MS - 5_000);
    expect(parsePage(run(pageJobArgs(job.base, job.jobId, 'stdout', 0, 1024)), 1024)).toMatchObject({ ended: true });
    expect(run(cleanupJobArgs(job.base, job.jobId)).toString()).toBe('mre-cleanup removed\n');
    expect(existsSync(job.dir)).toBe(false);
  });
});
