/**
 * Freeze and unfreeze (admin API and admin page): stop every new call of the deployment, one user or
 * one relay at once, and optionally cancel the running jobs of that scope in the same action.
 */
import { describeIssues } from '../../shared/describe-issues.ts';
import { builtInUserId } from '../auth/accounts.ts';
import { jobBook, jobOwners } from '../jobs/job-book.ts';
import { logEvent } from '../log.ts';
import { freezeRequestSchema, type FreezeRequest, type FreezeState } from '../team/freeze.ts';
import { recordCall } from '../team/gate-call.ts';
import { teamDirectory } from '../team/team-directory.ts';
import type { ActionResult } from './admin-actions.ts';

/** Running jobs cancelled by one freeze, at most (each is one call to its host). */
const MAX_CANCELLED = 500;

export interface JobsCancelled {
  /** Running jobs of the scope found. */
  found: number;
  cancelled: number;
  /** Those whose cancel failed (the host or relay could not be reached); they are listed by id. */
  failed: string[];
}

function scopeLabel(request: FreezeRequest): string {
  return request.scope === 'deployment' ? 'deployment' : `${request.scope} ${request.name ?? ''}`;
}

/** The running jobs of the frozen scope, cancelled one by one (bounded), each in its owner's book. */
async function cancelJobsOf(env: Env, request: FreezeRequest): Promise<JobsCancelled> {
  const name = request.name ?? '';
  const owners = request.scope === 'user' ? [(await teamDirectory(env).grantOwner(name)) ?? builtInUserId(name)] : await jobOwners(env);
  const result: JobsCancelled = { found: 0, cancelled: 0, failed: [] };
  for (const owner of owners) {
    const book = jobBook(env, owner);
    for (const job of await book.list(owner, { state: 'active' })) {
      if (request.scope === 'relay') {
        const where = await book.locate(job.jobId);
        if (!where || where.relay === null || where.relay.toLowerCase() !== name.toLowerCase()) continue;
      }
      result.found += 1;
      if (result.found > MAX_CANCELLED) {
        result.failed.push(job.jobId);
        continue;
      }
      const cancelled = await book.cancel(owner, job.jobId);
      if (cancelled.ok) result.cancelled += 1;
      else result.failed.push(job.jobId);
    }
  }
  return result;
}

/** The audit row of a freeze or unfreeze by `admin` at `at`: the scope it named, `extra` after it, and how long it took. */
async function recordFreezeAction(
  env: Env,
  admin: string,
  request: FreezeRequest,
  tool: 'admin_freeze' | 'admin_unfreeze',
  at: string,
  extra: string,
  durationMs: number,
): Promise<void> {
  await recordCall(env, {
    time: at,
    user: admin,
    client: null,
    relay: request.scope === 'relay' ? (request.name ?? null) : null,
    host: null,
    tool,
    target: scopeLabel(request) + extra,
    outcome: 'ok',
    code: null,
    exitCode: null,
    bytes: null,
    durationMs,
  });
}

export async function freeze(env: Env, admin: string, body: unknown): Promise<ActionResult<{ freeze: FreezeState; jobs: JobsCancelled | null }>> {
  const parsed = freezeRequestSchema.safeParse(body);
  if (!parsed.success) return { ok: false, reason: 'invalid_argument', message: `Nothing was frozen: ${describeIssues(parsed.error, 'body')}` };
  const request = parsed.data;
  const at = new Date().toISOString();
  const state = await teamDirectory(env).setFreeze(request.scope, request.name, { by: admin, at });
  // Frozen first, then the jobs: no new job of the scope can start while these are being cancelled.
  const jobs = request.cancelJobs ? await cancelJobsOf(env, request) : null;
  logEvent('info', 'frozen', { admin, scope: request.scope, name: request.name, jobsCancelled: jobs?.cancelled });
  const jobsNote = jobs ? ` (jobs cancelled: ${jobs.cancelled} of ${jobs.found})` : '';
  await recordFreezeAction(env, admin, request, 'admin_freeze', at, jobsNote, Date.now() - new Date(at).getTime());
  return { ok: true, freeze: state, jobs };
}

export async function unfreeze(env: Env, admin: string, body: unknown): Promise<ActionResult<{ freeze: FreezeState }>> {
  const parsed = freezeRequestSchema.safeParse(body);
  if (!parsed.success) return { ok: false, reason: 'invalid_argument', message: `Nothing was unfrozen: ${describeIssues(parsed.error, 'body')}` };
  const request = parsed.data;
  if (request.cancelJobs) return { ok: false, reason: 'invalid_argument', message: 'Nothing was unfrozen: cancelJobs belongs to freeze.' };
  const at = new Date().toISOString();
  const state = await teamDirectory(env).setFreeze(request.scope, request.name, null);
  logEvent('info', 'unfrozen', { admin, scope: request.scope, name: request.name });
  await recordFreezeAction(env, admin, request, 'admin_unfreeze', at, '', 0);
  return { ok: true, freeze: state };
}

export async function readFreeze(env: Env): Promise<FreezeState> {
  return teamDirectory(env).freezeState();
}
