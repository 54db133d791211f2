/**
 * Tool definitions, written once and served by both the Worker and the stdio mode: names,
 * descriptions, input and output schemas, annotations. Input schemas are strict: unknown fields are
 * refused, so a misspelt argument is an error rather than silently ignored.
 */
import { z } from 'zod';
import { schemaOnce } from './schema-once.ts';
import { RELAY_NAME_PATTERN, RELAY_NAME_RULE } from './relay-credential.ts';
import { execStructuredOutput } from './exec-output.ts';
import {
  DEFAULT_PTY_COLS,
  DEFAULT_PTY_ROWS,
  MAX_COMMAND_LENGTH,
  MAX_HOST_NAME_LENGTH,
  MAX_PTY_COLS,
  MAX_PTY_ROWS,
  MAX_TIMEOUT_SECONDS,
  MIN_TIMEOUT_SECONDS,
} from './limits.ts';
import { formatCount } from './format-count.ts';

export interface ToolSettings {
  /** CHARACTER_LIMIT: characters of output returned per call. */
  characterLimit: number;
  /** TIMEOUT: seconds a command may run when the call gives no timeout. */
  defaultTimeoutSeconds: number;
}

export const hostArgument = z
  .string({ error: 'host must be a string (a name from ssh_list_hosts)' })
  .min(1, 'host must not be empty; omit it to use the only configured host')
  .max(MAX_HOST_NAME_LENGTH, `host must be at most ${MAX_HOST_NAME_LENGTH} characters`)
  .optional()
  .describe('Host name from ssh_list_hosts. Required when more than one host is configured.');

export const responseFormat = z
  .enum(['text', 'json'], { error: 'response_format must be "text" or "json"' })
  .default('text')
  .describe('"text": readable sections for stdout, stderr and exit code. "json": one JSON object (also returned as structured content).');

/** A command to run: not empty, not only whitespace, bounded, and with no NUL byte (no shell can receive one). */
export function commandArgument(description: string) {
  return z
    .string({ error: 'command must be a string' })
    .min(1, 'command must not be empty')
    .max(MAX_COMMAND_LENGTH, `command must be at most ${formatCount(MAX_COMMAND_LENGTH)} characters`)
    .refine((value) => value.trim().length > 0, 'command must contain something other than whitespace')
    .refine((value) => !value.includes('\0'), 'command must not contain NUL bytes (no shell can receive them)')
    .describe(description);
}

export function execCommandInput(settings: ToolSettings) {
  return schemaOnce(`ssh_exec_command timeout=${settings.defaultTimeoutSeconds}`, () => buildExecCommandInput(settings));
}

function buildExecCommandInput(settings: ToolSettings) {
  return (
    z
      .object({
        command: commandArgument('Shell command to run with the login shell of the SSH user on the host.'),
        host: hostArgument,
        timeout: z
          .number({ error: `timeout must be a number of seconds between ${MIN_TIMEOUT_SECONDS} and ${MAX_TIMEOUT_SECONDS}` })
          .int('timeout must be a whole number of seconds')
          .min(MIN_TIMEOUT_SECONDS, `timeout must be at least ${MIN_TIMEOUT_SECONDS} second`)
          .max(MAX_TIMEOUT_SECONDS, `timeout must be at most ${MAX_TIMEOUT_SECONDS} seconds`)
          .default(settings.defaultTimeoutSeconds)
          .describe(`Seconds before the command is stopped (its whole process group is killed). Default ${settings.defaultTimeoutSeconds}.`),
        pty: z
          .boolean({ error: 'pty must be true or false' })
          .default(false)
          .describe(
            'Run the command with a pseudo-terminal (TERM=dumb), for programs that refuse to run without one. stderr then arrives merged into stdout, ' +
              'and stdin is the terminal, to which nothing is ever typed: a command that waits for input waits until the timeout.',
          ),
        pty_rows: z
          .number({ error: `pty_rows must be a whole number between 1 and ${MAX_PTY_ROWS}` })
          .int('pty_rows must be a whole number')
          .min(1, 'pty_rows must be at least 1')
          .max(MAX_PTY_ROWS, `pty_rows must be at most ${MAX_PTY_ROWS}`)
          .optional()
          .describe(`Terminal rows with pty: true. Default ${DEFAULT_PTY_ROWS}.`),
        pty_cols: z
          .number({ error: `pty_cols must be a whole number between 1 and ${MAX_PTY_COLS}` })
          .int('pty_cols must be a whole number')
          .min(1, 'pty_cols must be at least 1')
          .max(MAX_PTY_COLS, `pty_cols must be at most ${MAX_PTY_COLS}`)
          .optional()
          .describe(`Terminal columns with pty: true. Default ${DEFAULT_PTY_COLS}.`),
        sudo: z
          .boolean({ error: 'sudo must be true or false' })
          .optional()
          .describe(
            'Run the command as root with sudo on the host (the relay feeds sudo the password it holds for the host; without one, sudo must allow it without a password). ' +
              'Its stdin is empty. Counts as a privileged command for policy. Not with pty.',
          ),
        response_format: responseFormat,
      })
      .strict()
      .refine((args) => args.pty || (args.pty_rows === undefined && args.pty_cols === undefined), {
        message: 'pty_rows and pty_cols apply only with pty: true',
        path: ['pty'],
      })
      // sudo's own words come on stderr, which a terminal merges into stdout (relay/sudo.ts).
      .refine((args) => !(args.pty && args.sudo), { message: 'sudo and pty cannot be combined: use one or the other', path: ['sudo'] })
  );
}

export const listHostsInput = z
  .object({
    check: z
      .boolean({ error: 'check must be true or false' })
      .default(true)
      .describe('Check each host is reachable (opens or reuses an SSH connection). false returns the inventory only.'),
    response_format: responseFormat,
  })
  .strict();

export const relayPingInput = z
  .object({
    relay: z
      .string()
      .regex(RELAY_NAME_PATTERN, RELAY_NAME_RULE)
      .optional()
      .describe('Which relay to ping, when several serve you (ssh_list_hosts names them).'),
  })
  .strict();

export const listHostsOutput = z.object({
  relays: z.array(
    z.object({
      id: z.string(),
      connected: z.boolean(),
      version: z.string().optional(),
      connected_since: z.string().optional(),
    }),
  ),
  hosts: z.array(
    z.object({
      name: z.string(),
      relay: z.string(),
      target: z.string(),
      labels: z.record(z.string(), z.string()),
      capabilities: z.array(z.string()),
      reachable: z.boolean().nullable(),
      detail: z.string().optional(),
      latency_ms: z.number().optional(),
      role: z
        .enum(['viewer', 'operator', 'admin'])
        .optional()
        .describe('What you may do here: viewer reads, operator also runs commands and writes, admin also manages the deployment.'),
    }),
  ),
});
export type ListHostsOutput = z.infer<typeof listHostsOutput>;

export const relayPingOutput = z.object({
  relay_id: z.string(),
  relay_version: z.string(),
  round_trip_ms: z.number(),
});

export const TOOL_DESCRIPTIONS = {
  ssh_list_hosts:
    'List the SSH hosts you can use, the relay each is reached through, their labels, and whether each is reachable right now. Call this first to learn host names.',
  ssh_exec_command: (settings: ToolSettings): string =>
    `Run a shell command on a host over SSH and return its stdout, stderr and exit code. ` +
    `A non-zero exit code is a normal result. Output beyond ${formatCount(settings.characterLimit)} characters is truncated (the result says how much was cut); ` +
    `the command is stopped when the timeout (default ${settings.defaultTimeoutSeconds} s, at most ${MAX_TIMEOUT_SECONDS} s) passes. ` +
    'By default there is no terminal and stdin is empty; pty: true gives the command a terminal (stderr merged into stdout). ' +
    'Nothing is ever typed into a command: interactive commands wait until the timeout.',
  relay_ping: 'Check that the relay is connected and answering, and how long a round trip to it takes.',
} as const;

export { execStructuredOutput };
