/**
 * The exec tools (ssh_exec_command, proxmox_container_exec_command, proxmox_vm_exec_command) as
 * MCP tasks, on both protocol eras the server speaks:
 * - 2025-11-25 (experimental core tasks): capability `tasks.requests.tools.call` (+ `cancel`), the
 *   tools carry `execution.taskSupport: "optional"`, a call with `params.task` is answered with
 *   `{task}`, then tasks/get, tasks/result (waits for the end) and tasks/cancel. No tasks/list:
 *   the capability does not offer it and the SDK answers -32601.
 * - 2026-07-28 (extension io.modelcontextprotocol/tasks, SEP-2663): declared in
 *   `capabilities.extensions`; a client opts in per request in `_meta`; a call is answered with a
 *   flat `{resultType: "task", …}`, then tasks/get (carries the result), tasks/update, tasks/cancel.
 *
 * A task is a view of a background job (shared/jobs.ts): taskId = jobId, and the job runs on the
 * host detached from the call, so the task outlives the client. Every call goes through the
 * caller's own executor, which knows only the caller's jobs: another user's task id is answered
 * exactly like an id that never existed. The completed result is built as the synchronous call
 * builds it (formatExecResult of the command's outcome), so a task changes when the answer
 * arrives, never what it says. A call that is not taken over goes to McpServer's own handler,
 * unchanged.
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  MissingRequiredClientCapabilityError,
  ProtocolError,
  ProtocolErrorCode,
  RELATED_TASK_META_KEY,
  type CallToolRequest,
  type CallToolResult,
  type InputRequiredResult,
  type McpServer,
  type RegisteredTool,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import { describeError, type ToolError } from './errors.ts';
import { formatExecResult } from './exec-output.ts';
import { jobExecOutcome } from './job-exec-outcome.ts';
import { ENDED_JOB_STATES, JOB_ID_PATTERN, type JobExecutor, type JobView, type StartJobRequest } from './jobs.ts';
import { DEFAULT_JOB_RETENTION_HOURS, RELAY_REPLY_GRACE_MS } from './limits.ts';
import type { ToolCallHandler } from './tool-call-capture.ts';
import { confirmationFor } from './confirm-call.ts';
import type { ToolSettings } from './tool-catalog.ts';
import { errorResult } from './tool-results.ts';
import { registeredTool, safeResult } from './tool-registration.ts';
import { visibleText } from './visible-text.ts';

export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
/**
 * On 2026-07-28 a task-capable client declares the extension on every request, and the server
 * decides. A command expected to end within this many seconds (its timeout) is answered at once
 * as before: making a 2 s `df` a task only adds polling rounds. 2025-era clients ask per call,
 * and get a task whenever they ask.
 */
export const DEFAULT_TASK_MIN_TIMEOUT_SECONDS = 60;
/** How long a task can be read: the job's own time plus how long its record is kept after it ends. */
const TASK_TTL_EXTRA_MS = DEFAULT_JOB_RETENTION_HOURS * 3_600_000;
/** Poll hints: soon for a task that just started (short commands end soon), then every 5 s. */
const MIN_POLL_MS = 1_000;
const MAX_POLL_MS = 5_000;
/** tasks/result (2025) looks at the job this often while it waits for the end. */
const RESULT_WAIT_STEP_MS = 1_000;

export type TaskEra = 'legacy' | 'modern';
type Format = 'text' | 'json';

export interface TaskCallSpec {
  era: TaskEra;
  /** The caller's jobs (shared/mcp-server.ts jobsOf); null where the executor has none. */
  jobs: JobExecutor | null;
  settings: ToolSettings;
  /** Default DEFAULT_TASK_MIN_TIMEOUT_SECONDS; 2026-07-28 only. */
  minTimeoutSeconds?: number;
}

/** The exec tools and how each one's (validated) arguments become a job. */
const EXEC_TOOLS = {
  ssh_exec_command: null,
  proxmox_container_exec_command: { kind: 'lxc', idArgument: 'ctid' },
  proxmox_vm_exec_command: { kind: 'qemu', idArgument: 'vmid' },
} as const;
type ExecToolName = keyof typeof EXEC_TOOLS;

function isExecTool(name: string): name is ExecToolName {
  return Object.hasOwn(EXEC_TOOLS, name);
}

/** The arguments the exec tools share, as their own schemas leave them (defaults applied). */
const execArgs = z
  .object({
    command: z.string(),
    host: z.string().optional(),
    timeout: z.number().int().positive(),
    response_format: z.enum(['text', 'json']),
    ctid: z.string().optional(),
    vmid: z.string().optional(),
    sudo: z.boolean().optional(),
    pty: z.boolean().optional(),
  })
  .loose();
type ExecArgs = z.infer<typeof execArgs>;

/**
 * Why a call cannot run as a job, when it cannot: jobs run neither under sudo nor with a terminal.
 * Such a call is answered synchronously (2026-07-28) or refused (a 2025-era task request), never
 * run as a job without what it asked for.
 */
function notAsTask(args: ExecArgs): string | null {
  if (args.sudo === true) return 'sudo: true does not run as a task (jobs do not run under sudo); call the tool without a task';
  if (args.pty === true) return 'pty: true does not run as a task (jobs have no terminal); call the tool without a task';
  return null;
}

/**
 * The job's name says it is a task, which tool started it and in which format it answers: the job
 * record is the task's only state, so a later tasks/get (another request, maybe another server
 * instance) can build the same result.
 */
const TASK_NAME = /^mcp-task (ssh_exec_command|proxmox_container_exec_command|proxmox_vm_exec_command) (text|json)$/;

function taskName(tool: ExecToolName, format: Format): string {
  return `mcp-task ${tool} ${format}`;
}

interface TaskOrigin {
  tool: ExecToolName;
  format: Format;
}

function taskOrigin(view: JobView): TaskOrigin | null {
  const match = TASK_NAME.exec(view.name ?? '');
  const tool = match?.[1];
  const format = match?.[2];
  if (tool === undefined || !isExecTool(tool) || (format !== 'text' && format !== 'json')) return null;
  return { tool, format };
}

function startRequest(tool: ExecToolName, args: ExecArgs): StartJobRequest | null {
  const guestSpec = EXEC_TOOLS[tool];
  const guestId = guestSpec === null ? undefined : args[guestSpec.idArgument];
  if (guestSpec !== null && guestId === undefined) return null;
  if (notAsTask(args) !== null) return null;
  return {
    ...(args.host !== undefined ? { host: args.host } : {}),
    ...(guestSpec !== null && guestId !== undefined ? { guest: { kind: guestSpec.kind, id: guestId } } : {}),
    command: args.command,
    timeoutMs: args.timeout * 1000,
    name: taskName(tool, args.response_format),
  };
}

type TaskStatus = 'working' | 'completed' | 'failed' | 'cancelled';

/**
 * A job's state as a task status. An ended command is `completed` whatever its exit code or
 * signal, and a timeout too: the result says so (isError inside the result, as the synchronous
 * call answers), per the spec's "completed includes tool results with isError". `failed` is kept
 * for a request that produced no tool result: a `lost` job (no exit status, its processes gone)
 * has no answer the synchronous call would have given.
 */
function taskStatus(view: JobView): TaskStatus {
  switch (view.state) {
    case 'starting':
    case 'running':
      return 'working';
    case 'exited':
    case 'killed':
    case 'timed_out':
      return 'completed';
    case 'cancelled':
      return 'cancelled';
    case 'lost':
    case 'cleaned':
      return 'failed';
    default: {
      const unhandled: never = view.state;
      return unhandled;
    }
  }
}

const LOST_MESSAGE =
  'The command was lost: it left no exit status and its processes are gone (killed from outside, the host rebooted, or out of memory). What it wrote is still readable with ssh_job_output.';

function pollIntervalMs(view: JobView, now: number): number {
  const age = Math.max(0, now - Date.parse(view.createdAt));
  return Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, Math.round(age / 4)));
}

function taskFields(view: JobView, status: TaskStatus, now: number) {
  return {
    taskId: view.jobId,
    status,
    createdAt: view.createdAt,
    lastUpdatedAt: view.endedAt ?? view.startedAt ?? view.createdAt,
    ttl: view.timeoutMs + RELAY_REPLY_GRACE_MS + TASK_TTL_EXTRA_MS,
    pollInterval: pollIntervalMs(view, now),
    ...(view.state === 'lost' ? { statusMessage: LOST_MESSAGE } : {}),
  };
}

/** The 2026-07-28 wire names of the same fields. */
function modernTaskFields(view: JobView, status: TaskStatus, now: number) {
  const { ttl, pollInterval, ...rest } = taskFields(view, status, now);
  return { ...rest, ttlMs: ttl, pollIntervalMs: pollInterval };
}

const unknownTask = (): ProtocolError =>
  new ProtocolError(ProtocolErrorCode.InvalidParams, 'Unknown task: no task of yours has this id (it may have expired).');

/**
 * A failure as a JSON-RPC error. Its message may quote the host (a job script's stderr) and does
 * not pass through the tool results' escaping (shared/tool-registration.ts), so it is made visible here.
 */
function executorFailure(error: ToolError): ProtocolError {
  return new ProtocolError(
    error.code === 'invalid_argument' ? ProtocolErrorCode.InvalidParams : ProtocolErrorCode.InternalError,
    visibleText(describeError(error)),
  );
}

const taskIdParams = z.object({ taskId: z.string() }).loose();

/** The per-request opt-in of a 2026-07-28 client, exactly as the extension defines it (an empty object). */
const modernOptIn = z.object({
  [CLIENT_CAPABILITIES_META_KEY]: z.object({ extensions: z.object({ [TASKS_EXTENSION]: z.strictObject({}) }).loose() }).loose(),
});

function modernClientOptedIn(ctx: ServerContext): boolean {
  return modernOptIn.safeParse(ctx.mcpReq.envelope ?? {}).success;
}

function requireModernOptIn(ctx: ServerContext): void {
  if (!modernClientOptedIn(ctx)) throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } });
}

function abortAfter(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Takes over tools/call for the exec tools when the caller asks for a task, and serves the task
 * methods. `toolCall` is McpServer's own handler (shared/tool-call-capture.ts); without it, or
 * without jobs in the executor, nothing is declared and every call stays synchronous.
 */
export function installTaskCalls(server: McpServer, toolCall: ToolCallHandler | null, spec: TaskCallSpec): void {
  const { era, settings } = spec;
  // Tasks are offered only where the executor runs background jobs.
  if (toolCall === null || spec.jobs === null) return;
  const executor: JobExecutor = spec.jobs;
  const tools = new Map<ExecToolName, RegisteredTool>();
  for (const name of Object.keys(EXEC_TOOLS)) {
    const tool = isExecTool(name) ? registeredTool(server, name) : undefined;
    if (tool !== undefined && isExecTool(name)) tools.set(name, tool);
  }
  if (tools.size === 0) return;
  const minTimeoutSeconds = spec.minTimeoutSeconds ?? DEFAULT_TASK_MIN_TIMEOUT_SECONDS;
  const low = server.server;

  if (era === 'legacy') {
    for (const tool of tools.values()) tool.execution = { taskSupport: 'optional' };
    low.registerCapabilities({ tasks: { requests: { tools: { call: {} } }, cancel: {} } });
  } else {
    low.registerCapabilities({ extensions: { [TASKS_EXTENSION]: {} } });
  }

  /** A job the caller started as a task, by task id; another user's or a made-up id is unknown. */
  async function taskJob(taskId: string, signal: AbortSignal): Promise<{ view: JobView; origin: TaskOrigin }> {
    if (!JOB_ID_PATTERN.test(taskId)) throw unknownTask();
    const status = await executor.jobStatus({ jobId: taskId }, signal);
    if (!status.ok) throw status.error.code === 'job_not_found' ? unknownTask() : executorFailure(status.error);
    const origin = taskOrigin(status.value);
    // A plain job (ssh_start_job) is not a task, and a cleaned one's output is gone: both past the task's reach.
    if (origin === null || status.value.state === 'cleaned') throw unknownTask();
    return { view: status.value, origin };
  }

  /** The completed task's result: what the synchronous call would have answered. */
  async function completedResult(view: JobView, { tool, format }: TaskOrigin, signal: AbortSignal): Promise<CallToolResult> {
    const outcome = await jobExecOutcome(executor, view, settings.characterLimit, signal);
    if (!outcome.ok) return errorResult(outcome.error);
    const formatted = formatExecResult(outcome.value, format, settings.characterLimit);
    const result = safeResult(
      { content: [{ type: 'text', text: formatted.text }], structuredContent: formatted.structured, isError: formatted.isError },
      format === 'json',
    );
    // As McpServer's handler does for the synchronous answer (shared/tool-call-capture.ts).
    return low.projectCallToolResult(result, tools.get(tool)?.outputSchemaJson);
  }

  async function startTask(name: ExecToolName, request: CallToolRequest, ctx: ServerContext): Promise<CallToolResult | InputRequiredResult | null> {
    const tool = tools.get(name);
    if (tool?.inputSchema === undefined) return null;
    const validated = await tool.inputSchema['~standard'].validate(request.params.arguments ?? {});
    const parsed = validated.issues === undefined ? execArgs.safeParse(validated.value) : null;
    const start = parsed?.success === true ? startRequest(name, parsed.data) : null;
    if (start === null || parsed?.success !== true) {
      // Invalid arguments: on 2026-07-28 the synchronous path gives its usual answer; a 2025-era
      // task request must get an error, since its client expects a task or an error.
      if (era === 'modern') return null;
      const why = (parsed?.success === true ? notAsTask(parsed.data) : null) ?? (validated.issues ?? []).map((issue) => issue.message).join('; ');
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid arguments for tool ${name}: ${why}`);
    }
    if (era === 'modern' && parsed.data.timeout < minTimeoutSeconds) return null;
    // A command held for the requester's own confirmation is asked here as the synchronous call asks it.
    const { confirm, inputRequired } = confirmationFor(server, ctx, era);
    const started = await executor.startJob(confirm ? { ...start, confirm } : start, ctx.mcpReq.signal);
    if (!started.ok) {
      // Nothing started: 2026-07-28 answers as the synchronous call would (or with the question); 2025 with an error.
      if (era === 'modern') return inputRequired(started) ?? errorResult(started.error);
      throw executorFailure(started.error);
    }
    const now = Date.now();
    const view = started.value;
    if (era === 'legacy') return { content: [], task: taskFields(view, taskStatus(view), now) };
    // The SDK adds `content: []` to a result without content on this era anyway (and validates it).
    return { content: [], resultType: 'task', ...modernTaskFields(view, taskStatus(view), now) };
  }

  low.setRequestHandler('tools/call', async (request, ctx) => {
    const name = request.params.name;
    const asked = era === 'legacy' ? request.params.task !== undefined : modernClientOptedIn(ctx);
    if (!asked || !isExecTool(name)) return toolCall(request, ctx);
    return (await startTask(name, request, ctx)) ?? toolCall(request, ctx);
  });

  low.setRequestHandler('tasks/get', { params: taskIdParams }, async (params, ctx) => {
    if (era === 'modern') requireModernOptIn(ctx);
    const { view, origin } = await taskJob(params.taskId, ctx.mcpReq.signal);
    const status = taskStatus(view);
    const now = Date.now();
    if (era === 'legacy') return taskFields(view, status, now);
    const fields = modernTaskFields(view, status, now);
    if (status === 'completed') return { ...fields, result: { resultType: 'complete', ...(await completedResult(view, origin, ctx.mcpReq.signal)) } };
    if (status === 'failed') return { ...fields, error: { code: ProtocolErrorCode.InternalError, message: LOST_MESSAGE } };
    return fields;
  });

  low.setRequestHandler('tasks/cancel', { params: taskIdParams }, async (params, ctx) => {
    if (era === 'modern') requireModernOptIn(ctx);
    let found: JobView;
    try {
      found = (await taskJob(params.taskId, ctx.mcpReq.signal)).view;
    } catch (error) {
      // 2026-07-28: the cancel is an acknowledged signal, the same for any id.
      if (era === 'modern' && error instanceof ProtocolError && error.code === ProtocolErrorCode.InvalidParams) return {};
      throw error;
    }
    if (ENDED_JOB_STATES.has(found.state)) {
      if (era === 'modern') return {};
      // 2025-11-25: a task already in a terminal status cannot be cancelled.
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Task already ${taskStatus(found)}: nothing to cancel.`);
    }
    const cancelled = await executor.cancelJob({ jobId: found.jobId }, ctx.mcpReq.signal);
    if (!cancelled.ok) throw cancelled.error.code === 'job_not_found' ? unknownTask() : executorFailure(cancelled.error);
    if (era === 'modern') return {};
    return taskFields(cancelled.value, taskStatus(cancelled.value), Date.now());
  });

  if (era === 'legacy') {
    // Waits for the end, bounded by the job's own deadline (its timeout, stop and reply grace).
    low.setRequestHandler('tasks/result', { params: taskIdParams }, async (params, ctx) => {
      const signal = ctx.mcpReq.signal;
      let { view, origin } = await taskJob(params.taskId, signal);
      const deadline = Date.parse(view.createdAt) + view.timeoutMs + 2 * RELAY_REPLY_GRACE_MS;
      const steps = Math.ceil(Math.max(0, deadline - Date.now()) / RESULT_WAIT_STEP_MS) + 1;
      for (let step = 0; step < steps && taskStatus(view) === 'working' && !signal.aborted; step += 1) {
        await abortAfter(RESULT_WAIT_STEP_MS, signal);
        ({ view, origin } = await taskJob(params.taskId, signal));
      }
      const status = taskStatus(view);
      if (status === 'working') throw new ProtocolError(ProtocolErrorCode.InternalError, 'The task is still running past its deadline; ask again later.');
      if (status === 'failed') throw new ProtocolError(ProtocolErrorCode.InternalError, LOST_MESSAGE);
      const result = await completedResult(view, origin, signal);
      return { ...result, _meta: { ...result._meta, [RELATED_TASK_META_KEY]: { taskId: view.jobId } } };
    });
  } else {
    // No input is ever asked of the client, so an update has nothing to deliver: acknowledged.
    low.setRequestHandler('tasks/update', { params: taskIdParams }, async (_params, ctx) => {
      requireModernOptIn(ctx);
      return {};
    });
  }
}
