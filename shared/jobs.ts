/**
 * Background jobs, in the words every part shares. A job is a command that runs detached on the
 * host (its own session and process group, its output and status in a private directory there),
 * so it outlives the MCP call, the client, the relay and the Worker. The host is the source of
 * truth for what the job is doing; the job's record (owner, host, command, last known state) lives
 * with the server: a Durable Object per user in the Worker, files in the stdio state directory.
 */
import type { ConfirmCall } from './confirm-call.ts';
import type { Outcome } from './errors.ts';
import type { GuestKind } from './proxmox.ts';

/** 128 random bits as 32 lowercase hex digits: unguessable, and safe as a path component. */
export const JOB_ID_PATTERN = /^[0-9a-f]{32}$/;

export function newJobId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * What the host can say of a job. `lost`: no exit status, and its process is gone (killed with
 * SIGKILL from outside, the host rebooted, out of memory). `absent`: no directory for this id
 * (never started there, or cleaned up).
 */
export const JOB_HOST_STATES = ['running', 'exited', 'killed', 'timed_out', 'cancelled', 'lost', 'absent'] as const;
export type JobHostState = (typeof JOB_HOST_STATES)[number];

/**
 * A job's state as its owner sees it. `starting`: the start was sent but its outcome is not known
 * yet (the relay went away mid-start); the next look at the host settles it. `cleaned`: ended, and
 * its files on the host have been deleted after the retention time.
 */
export const JOB_STATES = ['starting', 'running', 'exited', 'killed', 'timed_out', 'cancelled', 'lost', 'cleaned'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const ENDED_JOB_STATES: ReadonlySet<JobState> = new Set(['exited', 'killed', 'timed_out', 'cancelled', 'lost', 'cleaned']);

export type JobStream = 'stdout' | 'stderr';

export interface JobGuest {
  kind: GuestKind;
  id: string;
}

export interface StartJobRequest {
  /** Omitted when the caller sees exactly one host. */
  host?: string;
  guest?: JobGuest;
  command: string;
  timeoutMs: number;
  /** A label the caller chose, shown in listings. */
  name?: string;
  /** Worker: carry on with this approval (ssh_approval_status) instead of asking for a new one. */
  approvalId?: string;
  /** Only when the client can be asked during the call: asks the requester to confirm a command a rule holds for them. */
  confirm?: ConfirmCall;
}

/** Everything a caller may know about one of their jobs. Times are ISO 8601. */
export interface JobView {
  jobId: string;
  name: string | null;
  /** The host as the caller names it (relay/host when several relays serve the team). */
  host: string;
  guest: JobGuest | null;
  command: string;
  /** Set in listings that span users (an admin's): who started it. */
  owner?: string;
  state: JobState;
  exitCode: number | null;
  signal: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  timeoutMs: number;
  stdoutBytes: number;
  stderrBytes: number;
  stdoutDropped: number;
  stderrDropped: number;
  /** The last lines of each stream, as of the last look at the host. */
  stdoutTail: string;
  stderrTail: string;
  stopConfirmed: boolean | null;
  processesLeft: string[];
  /** When the job's files on the host are deleted (ended jobs only). */
  cleanupAt: string | null;
  /** Set when the answer is not fresh from the host, saying why (e.g. the relay is not connected). */
  staleReason?: string;
}

export interface JobPage {
  jobId: string;
  stream: JobStream;
  offset: number;
  data: Uint8Array;
  /** Bytes the stream has written in all; `dropped` of them, from the start, are no longer kept. */
  size: number;
  dropped: number;
  /** The job has ended and this page reaches the end of the stream. */
  complete: boolean;
}

export interface JobListRequest {
  host?: string;
  state?: JobState | 'active' | 'ended';
  /** Admins only: every user's jobs. */
  everyone?: boolean;
}

/**
 * The job methods of a ToolExecutor; the job tools are offered where the executor has them.
 * Another user's job id is answered exactly as an id that never existed (job_not_found).
 */
export interface JobExecutor {
  startJob(request: StartJobRequest, signal: AbortSignal): Promise<Outcome<JobView>>;
  jobStatus(request: { jobId: string }, signal: AbortSignal): Promise<Outcome<JobView>>;
  jobOutput(request: { jobId: string; stream: JobStream; offset: number; limit: number }, signal: AbortSignal): Promise<Outcome<JobPage>>;
  cancelJob(request: { jobId: string }, signal: AbortSignal): Promise<Outcome<JobView>>;
  listJobs(request: JobListRequest, signal: AbortSignal): Promise<Outcome<JobView[]>>;
}
