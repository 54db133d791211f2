/**
 * The Worker's configuration, read from vars and secrets once per isolate and validated with
 * messages that say what to set and where.
 */
import { z } from 'zod';
import {
  DEFAULT_CHARACTER_LIMIT,
  DEFAULT_MAX_FILE_SIZE,
  WORKER_WRITE_BYTES_PER_CALL,
  DEFAULT_TIMEOUT_SECONDS,
  MAX_TIMEOUT_SECONDS,
  MIN_TIMEOUT_SECONDS,
  DEFAULT_JOBS_PER_USER,
  DEFAULT_JOB_OUTPUT_KEEP_BYTES,
  DEFAULT_JOB_RETENTION_HOURS,
} from '../shared/limits.ts';
import type { JobLimits } from '../shared/job-ledger.ts';
import type { FileToolSettings } from '../shared/file-tools.ts';
import { ImageKitConfigError, readImageKitConfig, type ImageKitConfig } from '../shared/imagekit/config.ts';

/**
 * A tool result leaves the Worker as one message: the content as text and again as structured
 * content. Clients hold a result whole, so reads return at most 1 MiB per call (1.4 MB of base64,
 * twice) and larger files are read in parts.
 */
export const WORKER_READ_BYTES_PER_CALL = 1024 * 1024;
/** Audit rows are kept a year unless AUDIT_RETENTION_DAYS says otherwise. */
export const DEFAULT_AUDIT_RETENTION_DAYS = 365;
/** Transfer links last 15 minutes unless TRANSFER_LINK_TTL_SECONDS says otherwise. */
export const DEFAULT_LINK_TTL_SECONDS = 15 * 60;

export interface WorkerSettings {
  /** Origin clients use, e.g. https://mcp.example.com (no trailing slash). */
  publicUrl: string;
  /** The protected resource: publicUrl + "/mcp". Tokens are bound to exactly this. */
  resource: string;
  /**
   * ALLOWED_HOSTNAMES: more names this deployment answers to (a custom domain, a second name), as
   * lowercase hostnames. The host of PUBLIC_URL is always allowed and is not repeated here.
   */
  allowedHostnames: string[];
  tools: FileToolSettings;
  /** TRANSFER_LINK_TTL_SECONDS: how long a one-time transfer link stays valid. */
  linkTtlSeconds: number;
  /** AUDIT_RETENTION_DAYS: audit rows older than this are deleted. */
  auditRetentionDays: number;
  /** ImageKit transfers, when ENABLE_IMAGEKIT is on. */
  imagekit: ImageKitConfig | null;
  /** JOBS_PER_USER, JOB_OUTPUT_KEEP_BYTES, JOB_RETENTION_HOURS. */
  jobs: JobLimits;
}

const numberVar = (name: string, min: number, max: number, fallback: number) =>
  z
    .string()
    .optional()
    .transform((value, context) => {
      if (value === undefined || value.trim() === '') return fallback;
      const parsed = Number(value);
      if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
        context.addIssue({
          code: 'custom',
          message: `${name} must be a whole number from ${min} to ${max} (wrangler.toml [vars] or .dev.vars), not "${value}"`,
        });
        return z.NEVER;
      }
      return parsed;
    });

/** A DNS name (letters, digits, hyphens, dots; IDNs in their xn-- form) or a bracketed IPv6 address. */
const HOSTNAME = /^(?:[a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/;

/**
 * A comma-separated list of bare hostnames (no scheme, port, path or wildcard). Each must also
 * survive a URL parse unchanged, so what the admin wrote is exactly what a Host header's hostname
 * is compared with.
 */
const hostnameList = z
  .string()
  .optional()
  .transform((value, context) => {
    const names = (value ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== '');
    for (const name of names) {
      if (!HOSTNAME.test(name) || URL.parse(`https://${name}`)?.host !== name) {
        context.addIssue({
          code: 'custom',
          message: `ALLOWED_HOSTNAMES must be comma-separated hostnames such as mcp.example.com (no scheme, port, path or wildcard; IDNs as xn--…), not "${name}"`,
        });
        return z.NEVER;
      }
    }
    return [...new Set(names)];
  });

const settingsSchema = z.object({
  PUBLIC_URL: z
    .string({ error: 'PUBLIC_URL is not set: set it in wrangler.toml [vars] to the URL clients use, e.g. https://mcp.example.com' })
    .transform((value, context) => {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        context.addIssue({ code: 'custom', message: `PUBLIC_URL "${value}" is not a URL; use e.g. https://mcp.example.com` });
        return z.NEVER;
      }
      const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
        context.addIssue({ code: 'custom', message: `PUBLIC_URL must use https (plain http only on a loopback address), not "${value}"` });
        return z.NEVER;
      }
      return url.origin;
    }),
  CHARACTER_LIMIT: numberVar('CHARACTER_LIMIT', 100, 1_000_000, DEFAULT_CHARACTER_LIMIT),
  TIMEOUT: numberVar('TIMEOUT', MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS),
  MAX_FILE_SIZE: numberVar('MAX_FILE_SIZE', 1, 1024 * 1024 * 1024, DEFAULT_MAX_FILE_SIZE),
  TRANSFER_LINK_TTL_SECONDS: numberVar('TRANSFER_LINK_TTL_SECONDS', 1, 7 * 24 * 3600, DEFAULT_LINK_TTL_SECONDS),
  AUDIT_RETENTION_DAYS: numberVar('AUDIT_RETENTION_DAYS', 1, 100 * 365, DEFAULT_AUDIT_RETENTION_DAYS),
  ALLOWED_HOSTNAMES: hostnameList,
  JOBS_PER_USER: numberVar('JOBS_PER_USER', 1, 1000, DEFAULT_JOBS_PER_USER),
  JOB_OUTPUT_KEEP_BYTES: numberVar('JOB_OUTPUT_KEEP_BYTES', 64 * 1024, 64 * 1024 * 1024 * 1024, DEFAULT_JOB_OUTPUT_KEEP_BYTES),
  JOB_RETENTION_HOURS: numberVar('JOB_RETENTION_HOURS', 1, 24 * 366, DEFAULT_JOB_RETENTION_HOURS),
});

export class SettingsError extends Error {
  override name = 'SettingsError';
}

/**
 * Settings already read, by the env they came from. Every request reads them (several times), and
 * parsing them again each time was measurable CPU on a tool call. An env's vars and secrets do not
 * change while the isolate lives (a new deployment or secret is a new isolate), and a different env
 * object (another test, the test builds' counting env) is simply read afresh.
 */
const readBefore = new WeakMap<Env, WorkerSettings>();

export function readSettings(env: Env): WorkerSettings {
  const known = readBefore.get(env);
  if (known) return known;
  const settings = parseSettings(env);
  readBefore.set(env, settings);
  return settings;
}

function parseSettings(env: Env): WorkerSettings {
  const parsed = settingsSchema.safeParse({
    PUBLIC_URL: env.PUBLIC_URL,
    CHARACTER_LIMIT: env.CHARACTER_LIMIT,
    TIMEOUT: env.TIMEOUT,
    MAX_FILE_SIZE: env.MAX_FILE_SIZE,
    TRANSFER_LINK_TTL_SECONDS: env.TRANSFER_LINK_TTL_SECONDS,
    AUDIT_RETENTION_DAYS: env.AUDIT_RETENTION_DAYS,
    ALLOWED_HOSTNAMES: env.ALLOWED_HOSTNAMES,
    JOBS_PER_USER: env.JOBS_PER_USER,
    JOB_OUTPUT_KEEP_BYTES: env.JOB_OUTPUT_KEEP_BYTES,
    JOB_RETENTION_HOURS: env.JOB_RETENTION_HOURS,
  });
  if (!parsed.success) throw new SettingsError(parsed.error.issues.map((issue) => issue.message).join('; '));
  const { PUBLIC_URL, CHARACTER_LIMIT, TIMEOUT, MAX_FILE_SIZE, TRANSFER_LINK_TTL_SECONDS, AUDIT_RETENTION_DAYS, ALLOWED_HOSTNAMES } = parsed.data;
  const jobs: JobLimits = {
    perUser: parsed.data.JOBS_PER_USER,
    keepBytes: parsed.data.JOB_OUTPUT_KEEP_BYTES,
    retentionMs: parsed.data.JOB_RETENTION_HOURS * 3600_000,
  };
  let imagekit: ImageKitConfig | null;
  try {
    imagekit = readImageKitConfig(env);
  } catch (error) {
    // Enabled but incomplete stops the Worker with the variable named, rather than quietly leaving the tools out.
    if (error instanceof ImageKitConfigError) throw new SettingsError(error.message);
    throw error;
  }
  return {
    publicUrl: PUBLIC_URL,
    resource: `${PUBLIC_URL}/mcp`,
    allowedHostnames: ALLOWED_HOSTNAMES.filter((name) => name !== new URL(PUBLIC_URL).hostname),
    tools: {
      characterLimit: CHARACTER_LIMIT,
      defaultTimeoutSeconds: TIMEOUT,
      maxFileSize: MAX_FILE_SIZE,
      readBytesPerCall: WORKER_READ_BYTES_PER_CALL,
      writeBytesPerCall: WORKER_WRITE_BYTES_PER_CALL,
    },
    linkTtlSeconds: TRANSFER_LINK_TTL_SECONDS,
    auditRetentionDays: AUDIT_RETENTION_DAYS,
    imagekit,
    jobs,
  };
}
