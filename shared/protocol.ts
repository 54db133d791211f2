/**
 * The Worker ⇄ relay wire protocol: one zod discriminated union per direction. Every frame
 * received on either side goes through parseRelayFrame / parseHubFrame (safeParse), never a cast.
 *
 * Frames are JSON text. Requests carry an id and a relative deadline (clocks on the relay and in
 * the Worker are not assumed to agree, so deadlines travel as durations and each side measures
 * them from when it saw the frame). Output streams back as `output` frames; the `result` or
 * `error` frame with the same id ends the request. Nothing is ever re-sent: if the socket drops,
 * outstanding requests fail with `relay_disconnected` (outcome unknown).
 */
import { z } from 'zod';
import { MAX_MESSAGE_CHARS } from './bounded-text.ts';
import { ERROR_CODES } from './errors.ts';
import {
  MAX_COMMAND_LENGTH,
  MAX_HOST_NAME_LENGTH,
  MAX_JOB_PAGE_BYTES,
  MAX_JOB_TIMEOUT_SECONDS,
  MAX_PTY_COLS,
  MAX_PTY_ROWS,
  MAX_TIMEOUT_SECONDS,
} from './limits.ts';
import { JOB_ID_PATTERN, JOB_HOST_STATES } from './jobs.ts';
import { GUEST_KINDS, guestIdWire, PVE_ACTIONS } from './proxmox.ts';

export const PROTOCOL_VERSION = 1;

/** Frames above this many characters are refused unread; far below the 32 MiB a Durable Object accepts. */
export const MAX_FRAME_CHARS = 1024 * 1024;
/** Output frames carry at most this many characters each, so no frame comes near the limits. */
export const MAX_OUTPUT_CHUNK_CHARS = 64 * 1024;
/** The heartbeat frames are fixed strings so the hub can answer them without waking (auto-response). */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';
/**
 * Both sides detect a half-open socket within two of these: the relay pings several times per
 * interval and gives up after HEARTBEAT_SILENCE_INTERVALS of silence; the hub checks as often.
 */
export const HEARTBEAT_INTERVAL_MS = 15_000;
/** Pings per interval: frequent enough that the silence threshold below is never reached by a healthy socket. */
export const PINGS_PER_INTERVAL = 4;
/** A peer silent this many intervals is gone; with a check every 1/PINGS_PER_INTERVAL, detection stays under two intervals. */
export const HEARTBEAT_SILENCE_INTERVALS = 1.5;
/** Heartbeat intervals a test may configure (RELAY_HEARTBEAT_MS); outside this range the default applies. */
export const MIN_HEARTBEAT_INTERVAL_MS = 100;
export const MAX_HEARTBEAT_INTERVAL_MS = 300_000;

/** The heartbeat interval a setting asks for (milliseconds as text), or the default when unset or out of range. */
export function heartbeatIntervalMs(setting: string | undefined): number {
  const value = Number(setting);
  if (!setting || !Number.isInteger(value) || value < MIN_HEARTBEAT_INTERVAL_MS || value > MAX_HEARTBEAT_INTERVAL_MS) return HEARTBEAT_INTERVAL_MS;
  return value;
}

const requestId = z.string().min(1).max(64);
/** "/" is reserved for relay/host, and names never carry blanks or control characters. */
const hostName = z
  .string()
  .min(1)
  .max(MAX_HOST_NAME_LENGTH)
  .regex(/^[^/\s\p{Cc}]+$/u, 'a host name has no "/", blanks or control characters');
const errorCode = z.enum(ERROR_CODES);

export const hostInventoryEntry = z.object({
  name: hostName,
  /** `user@address:port`: where the relay connects. Not a secret; helps a person tell hosts apart. */
  target: z.string().max(512),
  labels: z.record(z.string().max(64), z.string().max(256)),
  capabilities: z.array(z.string().max(32)).max(32),
});
export type HostInventoryEntry = z.infer<typeof hostInventoryEntry>;

export const hostStatus = z.object({
  name: hostName,
  reachable: z.boolean(),
  code: errorCode.optional(),
  message: z.string().max(MAX_MESSAGE_CHARS).optional(),
  latencyMs: z.number().nonnegative().optional(),
});
export type HostStatus = z.infer<typeof hostStatus>;

// ---- operations: what a request asks the relay to do ----

export const execOperation = z.object({
  op: z.literal('exec'),
  host: hostName,
  command: z.string().min(1).max(MAX_COMMAND_LENGTH),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .max(MAX_TIMEOUT_SECONDS * 1000),
  /** Characters of each stream to keep; the rest is counted, not kept. */
  maxChars: z.number().int().positive().max(10_000_000),
  /** Run inside this Proxmox container (pct exec) or VM (qm guest exec) on the host instead. */
  guest: z.object({ kind: z.enum(GUEST_KINDS), id: guestIdWire }).optional(),
  /** Run under a pseudo-terminal of this size (TERM=dumb); host commands only, not in guests. */
  pty: z
    .object({ rows: z.number().int().min(1).max(MAX_PTY_ROWS), cols: z.number().int().min(1).max(MAX_PTY_COLS) })
    .strict()
    .optional(),
  /** Run under sudo on the host, with the password the relay holds for it (relay/sudo.ts); never in a guest. */
  sudo: z.boolean().optional(),
});
export type ExecOperation = z.infer<typeof execOperation>;

/** A fixed `pct` or `qm` command on a Proxmox host: list, status, start, stop, shutdown. */
export const pveOperation = z.object({
  op: z.literal('pve'),
  host: hostName,
  kind: z.enum(GUEST_KINDS),
  action: z.enum(PVE_ACTIONS),
  id: guestIdWire.optional(),
  verbose: z.boolean().optional(),
  /** shutdown: how long the guest gets before pct/qm gives up. */
  timeoutSeconds: z.number().int().min(1).max(3600).optional(),
});
export type PveOperation = z.infer<typeof pveOperation>;

export const probeOperation = z.object({
  op: z.literal('probe'),
  /** Empty means every configured host. */
  hosts: z.array(hostName).max(1000),
  timeoutMs: z.number().int().positive().max(60_000),
});
export type ProbeOperation = z.infer<typeof probeOperation>;

export const pingOperation = z.object({ op: z.literal('ping') });
export type PingOperation = z.infer<typeof pingOperation>;

const remotePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((value) => !value.includes('\0'), 'path must not contain NUL');
const maxBytes = z
  .number()
  .int()
  .min(0)
  .max(1024 * 1024 * 1024);
/** Where a file operation's path lives: on the host itself, or inside one of its Proxmox containers. */
const inContainer = { ctid: guestIdWire.optional() };

/** The relay streams the bytes back as binary chunks, as the hub grants credit. */
export const readFileOperation = z.object({
  op: z.literal('read_file'),
  host: hostName,
  ...inContainer,
  path: remotePath,
  offset: z.number().int().min(0),
  length: maxBytes,
  maxBytes,
});

/** The hub streams exactly `size` bytes as binary chunks, as the relay grants credit. */
export const writeFileOperation = z.object({
  op: z.literal('write_file'),
  host: hostName,
  ...inContainer,
  path: remotePath,
  size: maxBytes,
  permissions: z.number().int().min(0).max(0o7777).optional(),
  overwrite: z.boolean(),
  createDirs: z.boolean(),
  maxBytes,
});

export const listDirectoryOperation = z.object({ op: z.literal('list_directory'), host: hostName, path: remotePath });

// ---- background jobs (shared/jobs.ts): each operation is short; the job runs detached on the host ----

const jobId = z.string().regex(JOB_ID_PATTERN);
const jobGuest = { guest: z.object({ kind: z.enum(GUEST_KINDS), id: guestIdWire }).optional() };

/** Start `command` detached on the host (or in a guest), its state in a private directory named by jobId. */
export const jobStartOperation = z.object({
  op: z.literal('job_start'),
  host: hostName,
  ...jobGuest,
  jobId,
  command: z.string().min(1).max(MAX_COMMAND_LENGTH),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .max(MAX_JOB_TIMEOUT_SECONDS * 1000),
  /** Bytes of each stream kept on the host; older output beyond it is dropped. */
  keepBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(64 * 1024 * 1024 * 1024),
});
export type JobStartOperation = z.infer<typeof jobStartOperation>;

/** Read a job's state from the host: what its files and process say now. */
export const jobStatusOperation = z.object({ op: z.literal('job_status'), host: hostName, ...jobGuest, jobId });
export type JobStatusOperation = z.infer<typeof jobStatusOperation>;

/** Bytes [offset, offset+length) of one stream, exactly as the job wrote them. */
export const jobOutputOperation = z.object({
  op: z.literal('job_output'),
  host: hostName,
  ...jobGuest,
  jobId,
  stream: z.enum(['stdout', 'stderr']),
  offset: z.number().int().min(0),
  length: z.number().int().min(1).max(MAX_JOB_PAGE_BYTES),
});
export type JobOutputOperation = z.infer<typeof jobOutputOperation>;

/** Stop the job's whole process tree; answers with the job's state afterwards. */
export const jobCancelOperation = z.object({ op: z.literal('job_cancel'), host: hostName, ...jobGuest, jobId });
export type JobCancelOperation = z.infer<typeof jobCancelOperation>;

/** Delete a finished job's directory on the host. */
export const jobCleanupOperation = z.object({ op: z.literal('job_cleanup'), host: hostName, ...jobGuest, jobId });
export type JobCleanupOperation = z.infer<typeof jobCleanupOperation>;

export const operation = z.discriminatedUnion('op', [
  execOperation,
  pveOperation,
  probeOperation,
  pingOperation,
  readFileOperation,
  writeFileOperation,
  listDirectoryOperation,
  jobStartOperation,
  jobStatusOperation,
  jobOutputOperation,
  jobCancelOperation,
  jobCleanupOperation,
]);
export type Operation = z.infer<typeof operation>;

// ---- results ----

export const execResult = z.object({
  op: z.literal('exec'),
  exitCode: z.number().int().nullable(),
  signal: z.string().max(32).nullable(),
  timedOut: z.boolean(),
  cancelled: z.boolean(),
  /** For a timed-out or cancelled command: whether it was seen to end after being signalled. */
  stopConfirmed: z.boolean(),
  /** Processes of a stopped run seen alive after KILL, as "PID (command)": they may still run. */
  processesLeft: z.array(z.string().max(100)).max(20).optional(),
  stdoutBytes: z.number().int().nonnegative(),
  stderrBytes: z.number().int().nonnegative(),
  /** True when the relay kept less of the stream than the command wrote (it keeps maxChars). */
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  durationMs: z.number().nonnegative(),
});
export type ExecResultFrame = z.infer<typeof execResult>;

/** What a pct/qm command printed (each stream cut to PVE_OUTPUT_CHARS) and how it exited. */
export const pveResult = z.object({
  op: z.literal('pve'),
  /** null when it did not finish in time (timedOut) or ended by a signal. */
  exitCode: z.number().int().nullable(),
  timedOut: z.boolean(),
  stdout: z.string().max(256 * 1024),
  stderr: z.string().max(256 * 1024),
  durationMs: z.number().nonnegative(),
});
export type PveResultFrame = z.infer<typeof pveResult>;

export const probeResult = z.object({ op: z.literal('probe'), hosts: z.array(hostStatus) });
export type ProbeResult = z.infer<typeof probeResult>;

export const pingResult = z.object({ op: z.literal('ping'), relayVersion: z.string().max(64) });
export type PingResult = z.infer<typeof pingResult>;

const fileInfo = z.object({
  path: z.string(),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number().int().min(0),
  mode: z.string().max(8),
  mtime: z.string().max(40),
});

export const readFileResult = z.object({
  op: z.literal('read_file'),
  info: fileInfo,
  offset: z.number().int().min(0),
  bytes: z.number().int().min(0),
  eof: z.boolean(),
});
export const writeFileResult = z.object({
  op: z.literal('write_file'),
  path: z.string(),
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  mode: z.string().max(8),
  replaced: z.boolean(),
});
export const listDirectoryResult = z.object({
  op: z.literal('list_directory'),
  path: z.string(),
  entries: z.array(fileInfo).max(1000),
  truncated: z.boolean(),
});

const epochMs = z.number().int().min(0);

/** What the host says of a job (relay/host-jobs.ts reads it from the job's directory and process). */
export const jobReport = z.object({
  state: z.enum(JOB_HOST_STATES),
  /** The command's exit status when it exited; null otherwise. */
  exitCode: z.number().int().min(0).max(255).nullable(),
  /** The signal that ended it (e.g. "KILL"), when it was killed by one. */
  signal: z.string().max(16).nullable(),
  /** Host clock, milliseconds since the epoch; null when the host has no record (absent). */
  startedAt: epochMs.nullable(),
  endedAt: epochMs.nullable(),
  /** Bytes each stream has written in all, including any dropped. */
  stdoutBytes: z.number().int().min(0),
  stderrBytes: z.number().int().min(0),
  /** Bytes at the start of each stream dropped to keep within keepBytes: offsets below are gone. */
  stdoutDropped: z.number().int().min(0),
  stderrDropped: z.number().int().min(0),
  /** The end of each stream (at most JOB_TAIL_BYTES, cut to whole lines where possible), decoded as UTF-8. */
  stdoutTail: z.string().max(16 * 1024),
  stderrTail: z.string().max(16 * 1024),
  /** For a cancelled or timed-out job: whether every process of it was seen to end. */
  stopConfirmed: z.boolean().nullable(),
  /** Processes seen alive after KILL, as "PID (command)". */
  processesLeft: z.array(z.string().max(100)).max(20),
});
export type JobReport = z.infer<typeof jobReport>;

export const jobStartResult = z.object({ op: z.literal('job_start'), report: jobReport });
export const jobStatusResult = z.object({ op: z.literal('job_status'), report: jobReport });
export const jobCancelResult = z.object({ op: z.literal('job_cancel'), report: jobReport });
export const jobOutputResult = z.object({
  op: z.literal('job_output'),
  offset: z.number().int().min(0),
  /** The bytes, base64; at most MAX_JOB_PAGE_BYTES before encoding. */
  data: z.string().max(Math.ceil(MAX_JOB_PAGE_BYTES / 3) * 4),
  /** Bytes the stream has written in all, and the dropped prefix (offsets below it are gone). */
  size: z.number().int().min(0),
  dropped: z.number().int().min(0),
  /** The job has ended, so the stream will not grow. */
  ended: z.boolean(),
});
export type JobOutputResult = z.infer<typeof jobOutputResult>;
export const jobCleanupResult = z.object({ op: z.literal('job_cleanup'), removed: z.boolean() });

export const operationResult = z.discriminatedUnion('op', [
  execResult,
  pveResult,
  probeResult,
  pingResult,
  readFileResult,
  writeFileResult,
  listDirectoryResult,
  jobStartResult,
  jobStatusResult,
  jobCancelResult,
  jobOutputResult,
  jobCleanupResult,
]);
export type OperationResult = z.infer<typeof operationResult>;

// ---- frames the relay sends ----

export const helloFrame = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  relayId: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/),
  version: z.string().max(64),
  hosts: z.array(hostInventoryEntry).max(1000),
});
export type HelloFrame = z.infer<typeof helloFrame>;

export const outputFrame = z.object({
  type: z.literal('output'),
  id: requestId,
  stream: z.enum(['stdout', 'stderr']),
  data: z.string().max(MAX_OUTPUT_CHUNK_CHARS),
});
export type OutputFrame = z.infer<typeof outputFrame>;

export const resultFrame = z.object({ type: z.literal('result'), id: requestId, result: operationResult });
export type ResultFrame = z.infer<typeof resultFrame>;

export const errorFrame = z.object({
  type: z.literal('error'),
  /** Absent when the error is about the connection rather than one request. */
  id: requestId.optional(),
  code: errorCode,
  /** Bounded with boundText before framing: a message that repeats a long path still fits. */
  message: z.string().max(MAX_MESSAGE_CHARS),
});
export type ErrorFrame = z.infer<typeof errorFrame>;

export const pingFrame = z.object({ type: z.literal('ping') });

/** Either direction: the receiver of a byte stream lets the sender send this many more bytes. */
export const creditFrame = z.object({
  type: z.literal('credit'),
  id: requestId,
  bytes: z
    .number()
    .int()
    .positive()
    .max(64 * 1024 * 1024),
});
export type CreditFrame = z.infer<typeof creditFrame>;

export const relayFrame = z.discriminatedUnion('type', [helloFrame, outputFrame, resultFrame, errorFrame, pingFrame, creditFrame]);
export type RelayFrame = z.infer<typeof relayFrame>;

// ---- frames the hub sends ----

export const welcomeFrame = z.object({
  type: z.literal('welcome'),
  protocol: z.number().int(),
  /** Maximum characters per output frame the hub accepts (lets the hub lower it later). */
  maxOutputChunkChars: z.number().int().positive(),
});
export type WelcomeFrame = z.infer<typeof welcomeFrame>;

export const requestFrame = z.object({
  type: z.literal('request'),
  id: requestId,
  /** Milliseconds, from receipt, after which the hub stops waiting for an answer. */
  deadlineMs: z.number().int().positive().max(3_600_000),
  operation,
  /** Who asked (the Worker's user id): the relay shares each host's SSH channels fairly between callers. */
  caller: z.string().min(1).max(128).optional(),
});
export type RequestFrame = z.infer<typeof requestFrame>;

export const cancelFrame = z.object({ type: z.literal('cancel'), id: requestId });
export type CancelFrame = z.infer<typeof cancelFrame>;

export const pongFrame = z.object({ type: z.literal('pong') });

export const hubFrame = z.discriminatedUnion('type', [welcomeFrame, requestFrame, cancelFrame, errorFrame, pongFrame, creditFrame]);
export type HubFrame = z.infer<typeof hubFrame>;

export type FrameParse<T> = { ok: true; frame: T } | { ok: false; reason: string };

function parseWith<T>(schema: z.ZodType<T>, text: string): FrameParse<T> {
  if (text.length > MAX_FRAME_CHARS) return { ok: false, reason: `frame of ${text.length} characters exceeds ${MAX_FRAME_CHARS}` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'frame is not valid JSON' };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: z.prettifyError(parsed.error).slice(0, 1000) };
  return { ok: true, frame: parsed.data };
}

/**
 * The request id a frame that failed validation was about, when it can still be read: the hub
 * uses it to fail that request at once instead of leaving it to its deadline. A frame too large
 * to parse is read only at its start, where JSON.stringify put `type` and `id`.
 */
export function requestIdOf(text: string): string | null {
  if (text.length > MAX_FRAME_CHARS) {
    const head = /^\{"type":"[a-z]{1,16}","id":"([^"\\]{1,64})"/.exec(text.slice(0, 128));
    return head?.[1] ?? null;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const id = typeof raw === 'object' && raw !== null && 'id' in raw ? raw.id : undefined;
  return requestId.safeParse(id).success && typeof id === 'string' ? id : null;
}

/** Validate a frame the relay sent (used by the hub). */
export function parseRelayFrame(text: string): FrameParse<RelayFrame> {
  return parseWith(relayFrame, text);
}

/** Validate a frame the hub sent (used by the relay). */
export function parseHubFrame(text: string): FrameParse<HubFrame> {
  return parseWith(hubFrame, text);
}
