/** The seed's output and time limits, and the background-job limits, read from the environment for the stdio mode. */
import {
  DEFAULT_CHARACTER_LIMIT,
  DEFAULT_JOB_OUTPUT_KEEP_BYTES,
  DEFAULT_JOB_RETENTION_HOURS,
  DEFAULT_JOBS_PER_USER,
  DEFAULT_MAX_FILE_SIZE,
  DEFAULT_TIMEOUT_SECONDS,
  MAX_TIMEOUT_SECONDS,
  MIN_TIMEOUT_SECONDS,
} from '../shared/limits.ts';
import type { FileToolSettings } from '../shared/file-tools.ts';
import { ConfigError } from './config.ts';
import { formatCount } from '../shared/format-count.ts';

export type StdioSettings = FileToolSettings;

function wholeNumber(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${formatCount(min)} to ${formatCount(max)}, not "${raw}".`);
  }
  return value;
}

export function readStdioSettings(env: NodeJS.ProcessEnv): StdioSettings {
  const maxFileSize = wholeNumber(env, 'MAX_FILE_SIZE', 1, 1024 * 1024 * 1024, DEFAULT_MAX_FILE_SIZE);
  return {
    characterLimit: wholeNumber(env, 'CHARACTER_LIMIT', 100, 1_000_000, DEFAULT_CHARACTER_LIMIT),
    defaultTimeoutSeconds: wholeNumber(env, 'TIMEOUT', MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS),
    maxFileSize,
    // Over stdio a whole file fits in one result.
    readBytesPerCall: maxFileSize,
    // stdio has no transport limit on a request: a whole file fits in one call.
    writeBytesPerCall: maxFileSize,
  };
}

export interface JobSettings {
  /** Jobs running at once (stdio has one user: all of this machine's stdio servers together). */
  perUser: number;
  /** Bytes of each stream a job keeps on the host. */
  keepBytes: number;
  /** How long an ended job's output stays on the host. */
  retentionMs: number;
  /** The longest the server waits between looks at its jobs (running ones, and ended ones due for cleanup). */
  checkMs: number;
}

/** Default for JOB_CHECK_MS: running jobs are looked at when due anyway; this also notices jobs another stdio server started. */
export const DEFAULT_JOB_CHECK_MS = 60_000;

export function readJobSettings(env: NodeJS.ProcessEnv): JobSettings {
  return {
    perUser: wholeNumber(env, 'JOBS_PER_USER', 1, 1_000, DEFAULT_JOBS_PER_USER),
    // The bounds the job_start operation accepts (64 KiB to 64 GiB).
    keepBytes: wholeNumber(env, 'JOB_OUTPUT_KEEP_BYTES', 64 * 1024, 64 * 1024 * 1024 * 1024, DEFAULT_JOB_OUTPUT_KEEP_BYTES),
    retentionMs: wholeNumber(env, 'JOB_RETENTION_HOURS', 1, 24 * 366, DEFAULT_JOB_RETENTION_HOURS) * 3600_000,
    // Tests shorten it so an ended job is noticed in a fraction of a second.
    checkMs: wholeNumber(env, 'JOB_CHECK_MS', 100, 3_600_000, DEFAULT_JOB_CHECK_MS),
  };
}
