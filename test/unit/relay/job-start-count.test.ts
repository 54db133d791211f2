/**
 * The host's count of running jobs at a start (relay/host-jobs.ts startScript), run by the real
 * /bin/sh against a jobs directory on disk. A start does not wait for its runner's pid, so a job
 * whose runner has not written one yet must still count against the limit, as its status says it
 * runs; otherwise starts in quick succession on a loaded host can pass the limit.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { START_GRACE_MS } from '../../../relay/host-jobs.ts';
import { startWithLimitOfOne } from '../../harness/job-start.ts';
import { newRunId } from '../../../relay/host-stop.ts';
import { newJobId } from '../../../shared/jobs.ts';

const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function jobsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mre-jobcount-'));
  dirs.push(dir);
  return dir;
}

/** A job directory as a start leaves it before the runner writes its pid: meta, no pid, no status. */
function startedWithoutPid(base: string, startedAtMs: number): void {
  const dir = join(base, newJobId());
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'meta'), `${newRunId()} 60000 1024 ${startedAtMs}\n`);
}

describe("a start's count of the jobs running on the host", () => {
  it('counts a job whose runner has not written its pid yet', () => {
    const base = jobsDir();
    startedWithoutPid(base, Date.now());
    expect(startWithLimitOfOne(base)).toEqual({ kind: 'limit', running: 1 });
  });

  it('stops counting such a job once the start grace is over (it reads as lost)', () => {
    const base = jobsDir();
    startedWithoutPid(base, Date.now() - START_GRACE_MS - 5_000);
    expect(startWithLimitOfOne(base)).toBeNull();
  });

  it('does not count a job whose meta is unreadable or made up', () => {
    const base = jobsDir();
    const dir = join(base, newJobId());
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'meta'), 'x y z $(touch /tmp/never)\n');
    expect(startWithLimitOfOne(base)).toBeNull();
  });
});
