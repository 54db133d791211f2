/** A job start run by the real /bin/sh against a jobs directory on disk (relay/host-jobs.ts startScript), for the job script tests. */
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';
import { parseStartRefusal, startJobArgs } from '../../relay/host-jobs.ts';
import { newRunId } from '../../relay/host-stop.ts';
import { newJobId } from '../../shared/jobs.ts';

/** Start a job in `base` with a limit of one job; the command is `true`, so a job let through ends at once. Its refusal, or null. */
export function startWithLimitOfOne(base: string): ReturnType<typeof parseStartRefusal> {
  const [command, ...args] = startJobArgs({
    jobsDir: base,
    jobId: newJobId(),
    runId: newRunId(),
    timeoutMs: 60_000,
    keepBytes: 1024,
    maxJobs: 1,
    command: 'true',
  });
  const ran = spawnSync(command as string, args, { timeout: 10_000 });
  expect(ran.status).toBe(0);
  return parseStartRefusal(ran.stdout);
}
