/**
 * TEST DOUBLE of the JobExecutor interface (shared/jobs.ts), for the MCP task seam's unit tests
 * until the real executors (the Worker's JobBook, the stdio file store) land. Not a model of the
 * host: jobs end when the test says so. It keeps the interface's rules the seam depends on: one
 * executor per caller, another caller's job id answered exactly as a made-up one (job_not_found);
 * output paged by bytes with the page size the double chooses (small, so UTF-8 characters split
 * across pages); and a synchronous exec of the same script that keeps the first maxChars
 * characters of each stream as the relay does (relay/exec.ts StreamCapture).
 */
import { failure, success, type Outcome } from '../../../shared/errors.ts';
import { cutAt, type ExecOutcome } from '../../../shared/exec-output.ts';
import { newJobId, type JobExecutor, type JobPage, type JobState, type JobView, type StartJobRequest } from '../../../shared/jobs.ts';
import type { ExecRequest, HostListing, ToolExecutor } from '../../../shared/tool-executor.ts';

export interface Script {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal?: string | null;
  state?: Exclude<JobState, 'starting' | 'running' | 'cleaned'>;
}

interface Job {
  owner: string;
  view: JobView;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

const HOST = 'web1';
const encoder = new TextEncoder();

/** The jobs of every caller, with the commands' scripted results. */
export class JobHostDouble {
  readonly jobs = new Map<string, Job>();
  readonly calls: string[] = [];
  /** Bytes per output page, whatever the caller asks for. */
  pageBytes = 7;
  private readonly scripts = new Map<string, Script>();

  script(command: string, script: Script): void {
    this.scripts.set(command, script);
  }

  scripted(command: string): Script {
    return this.scripts.get(command) ?? { stdout: '', stderr: '', exitCode: 0 };
  }

  /** Ends a running job as its script says. */
  finish(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) throw new Error(`no job ${jobId}`);
    const script = this.scripted(job.view.command);
    job.stdout = encoder.encode(script.stdout);
    job.stderr = encoder.encode(script.stderr);
    const endedAt = job.view.startedAt;
    job.view = {
      ...job.view,
      state: script.state ?? (script.signal ? 'killed' : 'exited'),
      exitCode: script.exitCode,
      signal: script.signal ?? null,
      endedAt,
      stdoutBytes: job.stdout.length,
      stderrBytes: job.stderr.length,
      stopConfirmed: script.state === 'timed_out' || script.state === 'cancelled' ? true : null,
    };
  }
}

function view(jobId: string, request: StartJobRequest): JobView {
  const now = new Date().toISOString();
  return {
    jobId,
    name: request.name ?? null,
    host: request.host ?? HOST,
    guest: request.guest ?? null,
    command: request.command,
    state: 'running',
    exitCode: null,
    signal: null,
    createdAt: now,
    startedAt: now,
    endedAt: null,
    timeoutMs: request.timeoutMs,
    stdoutBytes: 0,
    stderrBytes: 0,
    stdoutDropped: 0,
    stderrDropped: 0,
    stdoutTail: '',
    stderrTail: '',
    stopConfirmed: null,
    processesLeft: [],
    cleanupAt: null,
  };
}

function head(text: string, maxChars: number): { text: string; truncated: boolean } {
  return text.length > maxChars ? { text: cutAt(text, maxChars), truncated: true } : { text, truncated: false };
}

/** One caller's executor over the shared host double. */
export class JobExecutorDouble implements ToolExecutor, JobExecutor {
  private readonly host: JobHostDouble;
  private readonly owner: string;

  constructor(host: JobHostDouble, owner: string) {
    this.host = host;
    this.owner = owner;
  }

  private own(jobId: string): Outcome<Job> {
    const job = this.host.jobs.get(jobId);
    if (job === undefined || job.owner !== this.owner) return failure('job_not_found', `No job ${jobId}.`);
    return success(job);
  }

  async listHosts(): Promise<Outcome<HostListing>> {
    return success({ relays: [], hosts: [] });
  }

  async exec(request: ExecRequest): Promise<Outcome<ExecOutcome>> {
    this.host.calls.push(`exec ${request.command}`);
    const script = this.host.scripted(request.command);
    const stdout = head(script.stdout, request.maxChars);
    const stderr = head(script.stderr, request.maxChars);
    return success({
      host: request.host ?? HOST,
      exitCode: script.exitCode,
      signal: script.signal ?? null,
      timedOut: script.state === 'timed_out',
      cancelled: script.state === 'cancelled',
      stopConfirmed: script.state === 'timed_out' || script.state === 'cancelled',
      processesLeft: [],
      stdout: stdout.text,
      stderr: stderr.text,
      stdoutBytes: encoder.encode(script.stdout).length,
      stderrBytes: encoder.encode(script.stderr).length,
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
      durationMs: 0,
      timeoutMs: request.timeoutMs,
    });
  }

  async startJob(request: StartJobRequest): Promise<Outcome<JobView>> {
    this.host.calls.push(`start ${request.command}`);
    if (request.command === 'refuse me') return failure('access_denied', 'Not allowed here.');
    const jobId = newJobId();
    const job: Job = { owner: this.owner, view: view(jobId, request), stdout: new Uint8Array(), stderr: new Uint8Array() };
    this.host.jobs.set(jobId, job);
    return success(job.view);
  }

  async jobStatus(request: { jobId: string }): Promise<Outcome<JobView>> {
    const job = this.own(request.jobId);
    return job.ok ? success(job.value.view) : job;
  }

  async jobOutput(request: { jobId: string; stream: 'stdout' | 'stderr'; offset: number; limit: number }): Promise<Outcome<JobPage>> {
    const job = this.own(request.jobId);
    if (!job.ok) return job;
    const bytes = request.stream === 'stdout' ? job.value.stdout : job.value.stderr;
    const data = bytes.slice(request.offset, request.offset + Math.min(request.limit, this.host.pageBytes));
    const ended = job.value.view.endedAt !== null;
    return success({
      jobId: request.jobId,
      stream: request.stream,
      offset: request.offset,
      data,
      size: bytes.length,
      dropped: 0,
      complete: ended && request.offset + data.length >= bytes.length,
    });
  }

  async cancelJob(request: { jobId: string }): Promise<Outcome<JobView>> {
    this.host.calls.push(`cancel ${request.jobId}`);
    const job = this.own(request.jobId);
    if (!job.ok) return job;
    if (job.value.view.endedAt === null) {
      job.value.view = { ...job.value.view, state: 'cancelled', endedAt: new Date().toISOString(), stopConfirmed: true };
    }
    return success(job.value.view);
  }

  async listJobs(): Promise<Outcome<JobView[]>> {
    return success([...this.host.jobs.values()].filter((job) => job.owner === this.owner).map((job) => job.view));
  }
}
