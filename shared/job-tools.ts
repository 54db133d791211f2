/**
 * The background-job tools, offered where the executor runs jobs (shared/jobs.ts JobExecutor):
 * start a command that outlives the call, look at it, page through its whole output, stop it,
 * list them. Every client can use these; clients with MCP tasks also get jobs behind
 * ssh_exec_command (shared/task-calls.ts).
 */
import type { CallToolResult, InputRequiredResult, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { decodeUtf8Prefix, toBase64 } from './file-tools.ts';
import { confirmationFor } from './confirm-call.ts';
import type { ProtocolEra } from './mcp-server.ts';
import { JOB_ID_PATTERN, JOB_STATES, type JobExecutor, type JobPage, type JobView } from './jobs.ts';
import { DEFAULT_JOB_PAGE_BYTES, DEFAULT_JOB_TIMEOUT_SECONDS, MAX_JOB_PAGE_BYTES, MAX_JOB_TIMEOUT_SECONDS, MAX_LISTED_JOBS } from './limits.ts';
import { guestIdSchema } from './proxmox.ts';
import { schemaOnce } from './schema-once.ts';
import { commandArgument, hostArgument, responseFormat } from './tool-catalog.ts';
import { errorResult } from './tool-results.ts';
import { registerTool } from './tool-registration.ts';
import { formatCount } from './format-count.ts';

const jobIdArgument = z
  .string({ error: 'job_id must be a string (the id ssh_start_job returned)' })
  .regex(JOB_ID_PATTERN, 'job_id must be the 32 hexadecimal digits ssh_start_job returned');

export function startJobInput() {
  return schemaOnce('ssh_start_job', () =>
    z
      .object({
        command: commandArgument('Shell command to run in the background with the login shell of the SSH user on the host.'),
        host: hostArgument,
        timeout: z
          .number({ error: `timeout must be a number of seconds between 1 and ${MAX_JOB_TIMEOUT_SECONDS}` })
          .int('timeout must be a whole number of seconds')
          .min(1, 'timeout must be at least 1 second')
          .max(MAX_JOB_TIMEOUT_SECONDS, `timeout must be at most ${MAX_JOB_TIMEOUT_SECONDS} seconds (24 hours)`)
          .default(DEFAULT_JOB_TIMEOUT_SECONDS)
          .describe(
            `Seconds before the job is stopped with its whole process tree. Default ${DEFAULT_JOB_TIMEOUT_SECONDS} (1 hour), at most 86400 (24 hours).`,
          ),
        name: z
          .string({ error: 'name must be a string' })
          .min(1, 'name must not be empty')
          .max(80, 'name must be at most 80 characters')
          .regex(/^[^\p{Cc}\p{Cf}]+$/u, 'name must not contain control or formatting characters')
          .optional()
          .describe('A short label shown in ssh_list_jobs.'),
        ctid: guestIdSchema.optional().describe('Run inside this Proxmox container on the host (pct exec).'),
        vmid: guestIdSchema.optional().describe('Run inside this Proxmox VM on the host (qm guest exec).'),
      })
      .strict()
      .refine((args) => args.ctid === undefined || args.vmid === undefined, { message: 'give ctid or vmid, not both', path: ['vmid'] }),
  );
}

export function jobIdInput() {
  return schemaOnce('job_id', () => z.object({ job_id: jobIdArgument, response_format: responseFormat }).strict());
}

export function jobOutputInput() {
  return schemaOnce('ssh_job_output', () =>
    z
      .object({
        job_id: jobIdArgument,
        stream: z.enum(['stdout', 'stderr'], { error: 'stream must be "stdout" or "stderr"' }).default('stdout'),
        offset: z
          .number({ error: 'offset must be a number of bytes' })
          .int('offset must be a whole number of bytes')
          .min(0, 'offset must be 0 or more')
          .default(0)
          .describe('Byte offset in the stream to read from. Each answer gives next_offset.'),
        limit: z
          .number({ error: 'limit must be a number of bytes' })
          .int('limit must be a whole number of bytes')
          .min(1, 'limit must be at least 1 byte')
          .max(MAX_JOB_PAGE_BYTES, `limit must be at most ${formatCount(MAX_JOB_PAGE_BYTES)} bytes`)
          .default(DEFAULT_JOB_PAGE_BYTES)
          .describe(`Bytes to read at most. Default ${formatCount(DEFAULT_JOB_PAGE_BYTES)}.`),
        response_format: responseFormat,
      })
      .strict(),
  );
}

export function listJobsInput() {
  return schemaOnce('ssh_list_jobs', () =>
    z
      .object({
        host: hostArgument,
        state: z
          .enum([...JOB_STATES, 'active', 'ended'], { error: `state must be one of ${[...JOB_STATES, 'active', 'ended'].join(', ')}` })
          .optional()
          .describe('Only jobs in this state; "active" is starting or running, "ended" any end.'),
        all_users: z.boolean({ error: 'all_users must be true or false' }).default(false).describe("Admins only: every user's jobs."),
        response_format: responseFormat,
      })
      .strict(),
  );
}

const jobOutput = z.object({
  job_id: z.string(),
  name: z.string().nullable(),
  host: z.string(),
  guest: z.object({ kind: z.string(), id: z.string() }).nullable(),
  command: z.string(),
  owner: z.string().optional(),
  state: z.enum(JOB_STATES),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  timeout_seconds: z.number(),
  stdout_bytes: z.number().int(),
  stderr_bytes: z.number().int(),
  stdout_dropped_bytes: z.number().int(),
  stderr_dropped_bytes: z.number().int(),
  stdout_tail: z.string(),
  stderr_tail: z.string(),
  stop_confirmed: z.boolean().nullable(),
  processes_may_still_run: z.array(z.string()),
  files_deleted_at: z.string().nullable(),
  note: z.string().optional(),
});
type JobOutput = z.infer<typeof jobOutput>;

const jobListOutput = z.object({
  jobs: z.array(jobOutput),
  /** Older jobs that match were left out (at most MAX_LISTED_JOBS are listed). */
  more: z.boolean(),
});

const jobPageOutput = z.object({
  job_id: z.string(),
  stream: z.enum(['stdout', 'stderr']),
  offset: z.number().int(),
  bytes: z.number().int(),
  encoding: z.enum(['utf-8', 'base64']),
  data: z.string(),
  next_offset: z.number().int(),
  stream_bytes: z.number().int(),
  dropped_bytes: z.number().int(),
  complete: z.boolean(),
});

function jobStructured(view: JobView): JobOutput {
  return {
    job_id: view.jobId,
    name: view.name,
    host: view.host,
    guest: view.guest,
    command: view.command,
    ...(view.owner !== undefined ? { owner: view.owner } : {}),
    state: view.state,
    exit_code: view.exitCode,
    signal: view.signal,
    created_at: view.createdAt,
    started_at: view.startedAt,
    ended_at: view.endedAt,
    timeout_seconds: view.timeoutMs / 1000,
    stdout_bytes: view.stdoutBytes,
    stderr_bytes: view.stderrBytes,
    stdout_dropped_bytes: view.stdoutDropped,
    stderr_dropped_bytes: view.stderrDropped,
    stdout_tail: view.stdoutTail,
    stderr_tail: view.stderrTail,
    stop_confirmed: view.stopConfirmed,
    processes_may_still_run: view.processesLeft,
    files_deleted_at: view.cleanupAt,
    ...(view.staleReason !== undefined ? { note: view.staleReason } : {}),
  };
}

export function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** One line: what the job is doing, or how it ended. */
export function describeJobState(view: JobView, now = Date.now()): string {
  const started = view.startedAt ? Date.parse(view.startedAt) : Date.parse(view.createdAt);
  const ran = view.endedAt ? duration(Date.parse(view.endedAt) - started) : null;
  switch (view.state) {
    case 'starting':
      return 'starting (not yet confirmed by the host)';
    case 'running':
      return `running for ${duration(now - started)} (stopped after ${duration(view.timeoutMs)})`;
    case 'exited':
      return `exited with code ${view.exitCode ?? '?'}${ran ? ` after ${ran}` : ''}`;
    case 'killed':
      return `killed by signal ${view.signal ?? '?'}${ran ? ` after ${ran}` : ''} (an exit code above 128 reads the same way)`;
    case 'timed_out':
      return `timed out: stopped after ${duration(view.timeoutMs)}${view.stopConfirmed === false ? ', but not every process could be confirmed stopped' : ''}`;
    case 'cancelled':
      return `cancelled${ran ? ` after ${ran}` : ''}${view.stopConfirmed === false ? ', but not every process could be confirmed stopped' : ''}`;
    case 'lost':
      return 'lost: it ended without an exit status (killed from outside, out of memory, or the host restarted)';
    case 'cleaned':
      return 'ended, and its output has been deleted';
  }
}

function streamLine(name: string, bytes: number, dropped: number): string {
  return `${name} ${formatCount(bytes)} bytes${dropped > 0 ? ` (the first ${formatCount(dropped)} dropped to keep within the output limit)` : ''}`;
}

export function formatJob(view: JobView): string {
  const where = view.guest ? `${view.guest.kind === 'lxc' ? 'container' : 'VM'} ${view.guest.id} on ${view.host}` : view.host;
  const lines = [
    `Job ${view.jobId}${view.name ? ` "${view.name}"` : ''} on ${where}${view.owner !== undefined ? `, started by ${view.owner}` : ''}`,
    `State: ${describeJobState(view)}`,
    `Command: ${view.command}`,
    `Started: ${view.startedAt ?? view.createdAt}${view.endedAt ? `; ended: ${view.endedAt}` : ''}`,
    `Output: ${streamLine('stdout', view.stdoutBytes, view.stdoutDropped)}; ${streamLine('stderr', view.stderrBytes, view.stderrDropped)}`,
  ];
  if (view.processesLeft.length > 0) lines.push(`SOME PROCESSES MAY STILL RUN on the host: ${view.processesLeft.join(', ')}.`);
  if (view.stdoutTail) lines.push(`Last stdout lines:\n${view.stdoutTail}`);
  if (view.stderrTail) lines.push(`Last stderr lines:\n${view.stderrTail}`);
  if (view.cleanupAt) lines.push(`Its output is deleted from the host after ${view.cleanupAt}.`);
  if (view.staleReason) lines.push(`Note: ${view.staleReason}`);
  lines.push(
    view.state === 'running' || view.state === 'starting'
      ? `Next: ssh_job_status(job_id) to look again; ssh_job_output(job_id) pages through the whole output; ssh_cancel_job(job_id) stops it.`
      : view.processesLeft.length > 0 && (view.state === 'exited' || view.state === 'killed' || view.state === 'lost')
        ? `Next: ssh_cancel_job(job_id) stops the processes it left running (else they are stopped at its timeout); ssh_job_output(job_id, stream, offset) pages through the whole output.`
        : `Next: ssh_job_output(job_id, stream, offset) pages through the whole output.`,
  );
  return lines.join('\n');
}

export function jobResult(view: JobView, format: 'text' | 'json'): CallToolResult {
  const structured = jobStructured(view);
  return { content: [{ type: 'text', text: format === 'json' ? JSON.stringify(structured, null, 2) : formatJob(view) }], structuredContent: structured };
}

/** A page as text when it is UTF-8 (stopping before a character cut at the page's end), else base64. */
function pageResult(page: JobPage, format: 'text' | 'json'): CallToolResult {
  const decoded = decodeUtf8Prefix(page.data);
  // A page that is not UTF-8, or so short that nothing whole fits, goes as base64: exact either way.
  const asText = decoded !== null && (decoded.bytes > 0 || page.data.length === 0);
  const bytes = asText ? decoded.bytes : page.data.length;
  const structured = {
    job_id: page.jobId,
    stream: page.stream,
    offset: page.offset,
    bytes,
    encoding: asText ? ('utf-8' as const) : ('base64' as const),
    data: asText ? decoded.text : toBase64(page.data),
    next_offset: page.offset + bytes,
    stream_bytes: page.size,
    dropped_bytes: page.dropped,
    complete: page.complete && bytes === page.data.length,
  };
  if (format === 'json') return { content: [{ type: 'text', text: JSON.stringify(structured, null, 2) }], structuredContent: structured };
  const header = `${page.stream} of job ${page.jobId}, bytes ${formatCount(page.offset)} to ${formatCount(page.offset + bytes)} of ${formatCount(page.size)}${
    structured.encoding === 'base64' ? ' (not UTF-8: base64)' : ''
  }`;
  const footer = structured.complete
    ? '[end of output: the job has ended]'
    : page.offset + bytes >= page.size
      ? `[no more output yet; the job is still running: read again from offset ${formatCount(structured.next_offset)} later]`
      : `[more output: call ssh_job_output with offset=${structured.next_offset}]`;
  return { content: [{ type: 'text', text: `${header}\n${structured.data}\n${footer}` }], structuredContent: structured };
}

export function registerJobTools(server: McpServer, jobs: JobExecutor, era: ProtocolEra = 'modern'): void {
  registerTool(
    server,
    'ssh_start_job',
    {
      title: 'Start a background job over SSH',
      description:
        'Start a shell command on a host as a background job and return its id at once. The job keeps running when this call, the client, ' +
        'the relay or the server go away; its whole output is kept on the host. Use it for anything that may take longer than a minute ' +
        '(upgrades, builds, backups, log follows). Then ssh_job_status, ssh_job_output, ssh_cancel_job.',
      inputSchema: startJobInput(),
      outputSchema: jobOutput,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult | InputRequiredResult> => {
      const guest =
        args.ctid !== undefined ? { kind: 'lxc' as const, id: args.ctid } : args.vmid !== undefined ? { kind: 'qemu' as const, id: args.vmid } : undefined;
      const { confirm, inputRequired } = confirmationFor(server, ctx, era);
      const outcome = await jobs.startJob(
        {
          ...(args.host !== undefined ? { host: args.host } : {}),
          ...(confirm ? { confirm } : {}),
          ...(guest ? { guest } : {}),
          ...(args.name !== undefined ? { name: args.name } : {}),
          command: args.command,
          timeoutMs: args.timeout * 1000,
        },
        ctx.mcpReq.signal,
      );
      return outcome.ok ? jobResult(outcome.value, 'text') : (inputRequired(outcome) ?? errorResult(outcome.error));
    },
  );

  registerTool(
    server,
    'ssh_job_status',
    {
      title: 'Look at a background job',
      description:
        'State of one of your background jobs (running, exited with code, killed, timed out, cancelled, lost), its times, output sizes and last lines.',
      inputSchema: jobIdInput(),
      outputSchema: jobOutput,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const outcome = await jobs.jobStatus({ jobId: args.job_id }, ctx.mcpReq.signal);
      return outcome.ok ? jobResult(outcome.value, args.response_format) : errorResult(outcome.error);
    },
  );

  registerTool(
    server,
    'ssh_job_output',
    {
      title: "Read a background job's output",
      description:
        "Read part of a background job's stdout or stderr, byte-exact, from any offset, any number of times, while it runs or after it ended. " +
        'Follow next_offset to read on.',
      inputSchema: jobOutputInput(),
      outputSchema: jobPageOutput,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const outcome = await jobs.jobOutput({ jobId: args.job_id, stream: args.stream, offset: args.offset, limit: args.limit }, ctx.mcpReq.signal);
      return outcome.ok ? pageResult(outcome.value, args.response_format) : errorResult(outcome.error);
    },
  );

  registerTool(
    server,
    'ssh_cancel_job',
    {
      title: 'Stop a background job',
      description:
        'Stop one of your background jobs: its whole process tree gets TERM, then KILL. Says what happened, and whether anything could not be stopped.',
      inputSchema: jobIdInput(),
      outputSchema: jobOutput,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const outcome = await jobs.cancelJob({ jobId: args.job_id }, ctx.mcpReq.signal);
      return outcome.ok ? jobResult(outcome.value, args.response_format) : errorResult(outcome.error);
    },
  );

  registerTool(
    server,
    'ssh_list_jobs',
    {
      title: 'List background jobs',
      description: `Your background jobs, newest first (at most ${MAX_LISTED_JOBS}), optionally only on one host or in one state.`,
      inputSchema: listJobsInput(),
      outputSchema: jobListOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const outcome = await jobs.listJobs(
        { ...(args.host !== undefined ? { host: args.host } : {}), ...(args.state !== undefined ? { state: args.state } : {}), everyone: args.all_users },
        ctx.mcpReq.signal,
      );
      if (!outcome.ok) return errorResult(outcome.error);
      const shown = outcome.value.slice(0, MAX_LISTED_JOBS);
      const more = outcome.value.length > MAX_LISTED_JOBS;
      const structured = { jobs: shown.map(jobStructured), more };
      const moreNote = more ? `\nThe newest ${MAX_LISTED_JOBS} are shown; older ones match too: narrow the list with host or state.` : '';
      const text =
        args.response_format === 'json'
          ? JSON.stringify(structured, null, 2)
          : shown.length === 0
            ? 'No jobs.'
            : shown
                .map(
                  (view) =>
                    `${view.jobId}  ${describeJobState(view)}  on ${view.host}${view.owner !== undefined ? `  by ${view.owner}` : ''}${view.name ? `  "${view.name}"` : ''}\n    ${view.command.length > 120 ? `${view.command.slice(0, 120)}…` : view.command}`,
                )
                .join('\n') + moreNote;
      return { content: [{ type: 'text', text }], structuredContent: structured };
    },
  );
}
