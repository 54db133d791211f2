/**
 * Defaults and hard limits carried over from the Python original (its README is our compatibility
 * baseline). Every one of them can be configured; these are what applies when nothing is set.
 */

/** Characters of command output returned to the model before truncation (seed: CHARACTER_LIMIT). */
export const DEFAULT_CHARACTER_LIMIT = 25_000;
/** Largest file moved by a transfer tool, in bytes (seed: MAX_FILE_SIZE, 10 MiB). */
export const DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024;
/** Command timeout in seconds when the caller gives none (seed: TIMEOUT). */
export const DEFAULT_TIMEOUT_SECONDS = 30;
/** Longest timeout a caller may ask for, in seconds (seed: 300). */
export const MAX_TIMEOUT_SECONDS = 300;
/** Shortest timeout a caller may ask for, in seconds. */
export const MIN_TIMEOUT_SECONDS = 1;
/** Longest command accepted, in characters (seed: 10,000). */
export const MAX_COMMAND_LENGTH = 10_000;
/** Terminal size for `pty: true` when the call gives none, and the bounds a call may ask for. */
export const DEFAULT_PTY_ROWS = 24;
export const DEFAULT_PTY_COLS = 80;
export const MAX_PTY_ROWS = 1000;
export const MAX_PTY_COLS = 1000;
/** Longest host name accepted in a tool argument. */
export const MAX_HOST_NAME_LENGTH = 128;
/**
 * Extra time the Worker waits for the relay's answer beyond the command timeout. The relay
 * enforces the timeout itself and needs a moment to kill the process group and report.
 */
export const RELAY_REPLY_GRACE_MS = 10_000;
/** How long a reachability check of the hosts may take. */
export const PROBE_TIMEOUT_MS = 6_000;
/**
 * The largest MCP request body the Worker's transport takes: the `agents` package's Streamable HTTP
 * server refuses more than 4 MiB (MAXIMUM_MESSAGE_SIZE_BYTES in agents/dist/mcp), so /mcp is held
 * to the same at the Worker's entry (worker/body-limits.ts), counted as read, chunked or not.
 */
export const MCP_MAX_BODY_BYTES = 4 * 1024 * 1024;
/**
 * Room in an /mcp body for the JSON-RPC envelope and the other arguments of an ssh_write_file call
 * (a path of up to 4096 characters that JSON may escape six-fold, host, flags, ids).
 */
export const MCP_JSON_OVERHEAD_BYTES = 64 * 1024;
/**
 * Bytes one ssh_write_file call carries through the Worker: what fits in MCP_MAX_BODY_BYTES as
 * base64 next to the envelope (3,096,576). Larger files go through a transfer link
 * (ssh_request_upload). Stdio has no transport limit.
 */
export const WORKER_WRITE_BYTES_PER_CALL = Math.floor((MCP_MAX_BODY_BYTES - MCP_JSON_OVERHEAD_BYTES) / 4) * 3;

/** Longest a background job may run, in seconds (24 h); synchronous commands keep MAX_TIMEOUT_SECONDS. */
export const MAX_JOB_TIMEOUT_SECONDS = 86_400;
/** Job timeout when the caller gives none: one hour. */
export const DEFAULT_JOB_TIMEOUT_SECONDS = 3_600;
/** Bytes one ssh_job_output call returns at most; the default page is smaller. */
export const MAX_JOB_PAGE_BYTES = 256 * 1024;
export const DEFAULT_JOB_PAGE_BYTES = 64 * 1024;
/** Jobs one user may have running at once (JOBS_PER_USER). */
export const DEFAULT_JOBS_PER_USER = 10;
/** Jobs that may run at once on one host, all users together (JOBS_PER_HOST). */
export const DEFAULT_JOBS_PER_HOST = 32;
/** Bytes of each stream a job keeps on the host; beyond it the oldest are dropped (JOB_OUTPUT_KEEP_BYTES, 64 MiB). */
export const DEFAULT_JOB_OUTPUT_KEEP_BYTES = 64 * 1024 * 1024;
/** How long a finished job and its files are kept before they are deleted (JOB_RETENTION_HOURS, 7 days). */
export const DEFAULT_JOB_RETENTION_HOURS = 168;
/**
 * Jobs one ssh_list_jobs answer shows, newest first: a job's entry carries its command (up to 10,000
 * characters) and two tails (2 KiB each), so 2,000 records in a book would answer tens of MB.
 * Listings ask for one more, so the tool can say that older ones were left out.
 */
export const MAX_LISTED_JOBS = 100;
/** The last output a job status shows: at most this many bytes of each stream, then cut to whole lines. */
export const JOB_TAIL_BYTES = 2048;
