/** The seed's output and time limits, read from the environment for the stdio mode. */
import { DEFAULT_CHARACTER_LIMIT, DEFAULT_MAX_FILE_SIZE, DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, MIN_TIMEOUT_SECONDS } from '../shared/limits.ts';
import type { FileToolSettings } from '../shared/file-tools.ts';
import { ConfigError } from './config.ts';

export type StdioSettings = FileToolSettings;

function wholeNumber(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min.toLocaleString('en-US')} to ${max.toLocaleString('en-US')}, not "${raw}".`);
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
