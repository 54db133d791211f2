/**
 * The Proxmox VE tools: containers through `pct` (the seed's tools, names and parameters kept,
 * `host` added) and VMs through `qm`. Offered only where the executor can reach a host marked as
 * Proxmox. Start, stop and shutdown report success only when pct/qm exited 0 and the guest is then
 * seen in the state asked for; otherwise the tool result is an error carrying pct/qm's own words
 * and exit code.
 */
import type { CallToolResult, InputRequiredResult, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { schemaOnce } from './schema-once.ts';
import type { Outcome } from './errors.ts';
import { execStructuredOutput, formatExecResult } from './exec-output.ts';
import { withExecProgress } from './exec-progress.ts';
import { confirmationFor } from './confirm-call.ts';
import type { ProtocolEra } from './mcp-server.ts';
import { MAX_TIMEOUT_SECONDS, MIN_TIMEOUT_SECONDS } from './limits.ts';
import { DEFAULT_SHUTDOWN_SECONDS, guestIdSchema, parsePctList, parseQmList, parseStatus, type GuestKind, type PveAction } from './proxmox.ts';
import { localPathArgument, overwriteArgument, permissionsArgument, runDownload, runUpload, transferOutput, type FileToolSettings } from './file-tools.ts';
import { commandArgument, hostArgument, responseFormat, type ToolSettings } from './tool-catalog.ts';
import type { PveOutcome, ToolExecutor } from './tool-executor.ts';
import { errorResult } from './tool-results.ts';
import { registerTool } from './tool-registration.ts';
import { formatCount } from './format-count.ts';

export type ProxmoxExecutor = ToolExecutor & Required<Pick<ToolExecutor, 'proxmox'>>;

const NOUN: Record<GuestKind, { one: string; many: string; id: 'ctid' | 'vmid'; tool: 'pct' | 'qm' }> = {
  lxc: { one: 'container', many: 'containers', id: 'ctid', tool: 'pct' },
  qemu: { one: 'VM', many: 'VMs', id: 'vmid', tool: 'qm' },
};

function idArgument(kind: GuestKind) {
  return guestIdSchema.describe(`${kind === 'lxc' ? 'Container' : 'VM'} id on the Proxmox host (100-999999999), e.g. 101.`);
}

const containerPathArgument = z
  .string({ error: 'container_path must be a string' })
  .min(1, 'container_path must not be empty')
  .max(4096, 'container_path must be at most 4096 characters')
  .refine((value) => value.startsWith('/'), 'container_path must be absolute (start with /)')
  .refine((value) => !value.includes('\0'), 'container_path must not contain NUL bytes')
  .describe('Absolute path inside the container.');

/** The command of a guest exec, run by bash inside the guest. */
function guestCommand(where: string) {
  return commandArgument(`Command for bash inside the ${where}, passed as one argument to bash -c.`);
}

function timeoutArgument(settings: ToolSettings, what: string) {
  return z
    .number({ error: `timeout must be a number of seconds between ${MIN_TIMEOUT_SECONDS} and ${MAX_TIMEOUT_SECONDS}` })
    .int('timeout must be a whole number of seconds')
    .min(MIN_TIMEOUT_SECONDS, `timeout must be at least ${MIN_TIMEOUT_SECONDS} second`)
    .max(MAX_TIMEOUT_SECONDS, `timeout must be at most ${MAX_TIMEOUT_SECONDS} seconds`)
    .default(settings.defaultTimeoutSeconds)
    .describe(`Seconds before ${what}. Default ${settings.defaultTimeoutSeconds}.`);
}

const containerRow = z.object({ vmid: z.string(), status: z.string(), lock: z.string().nullable(), name: z.string() });
const vmRow = z.object({
  vmid: z.string(),
  name: z.string(),
  status: z.string(),
  mem_mb: z.number().nullable(),
  bootdisk_gb: z.number().nullable(),
  pid: z.number().nullable(),
});
const listOutput = z.object({ host: z.string(), containers: z.array(containerRow).optional(), vms: z.array(vmRow).optional() });
const statusOutput = z.object({ host: z.string(), id: z.string(), status: z.string().nullable(), fields: z.record(z.string(), z.string()) });
const actionOutput = z.object({
  host: z.string(),
  id: z.string(),
  action: z.string(),
  status: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  output: z.string(),
});

/** A pct/qm answer that was not a success: its own words and exit code, as an error result. */
function commandFailed(kind: GuestKind, what: string, outcome: PveOutcome): CallToolResult {
  const said = (outcome.stderr.trim() || outcome.stdout.trim() || '(no output)').slice(0, 4000);
  const how = outcome.timedOut ? `did not finish in time` : `failed with exit code ${outcome.exitCode ?? 'none'}`;
  return { content: [{ type: 'text', text: `${NOUN[kind].tool} ${what} on ${outcome.host} ${how}:\n${said}` }], isError: true };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function listResult(kind: GuestKind, outcome: PveOutcome, format: 'text' | 'json'): CallToolResult {
  if (outcome.exitCode !== 0) return commandFailed(kind, 'list', outcome);
  if (kind === 'lxc') {
    const containers = parsePctList(outcome.stdout);
    const structured = { host: outcome.host, containers };
    const text =
      format === 'json'
        ? JSON.stringify(structured, null, 2)
        : containers.length === 0
          ? `No containers on ${outcome.host}.`
          : `Containers on ${outcome.host} (${containers.length}):\n${table(
              ['CTID', 'STATUS', 'LOCK', 'NAME'],
              containers.map((row) => [row.vmid, row.status, row.lock ?? '', row.name]),
            )}`;
    return { content: [{ type: 'text', text }], structuredContent: structured };
  }
  const vms = parseQmList(outcome.stdout).map((row) => ({
    vmid: row.vmid,
    name: row.name,
    status: row.status,
    mem_mb: row.memMb,
    bootdisk_gb: row.bootDiskGb,
    pid: row.pid,
  }));
  const structured = { host: outcome.host, vms };
  const text =
    format === 'json'
      ? JSON.stringify(structured, null, 2)
      : vms.length === 0
        ? `No VMs on ${outcome.host}.`
        : `VMs on ${outcome.host} (${vms.length}):\n${table(
            ['VMID', 'STATUS', 'NAME', 'MEM(MB)'],
            vms.map((row) => [row.vmid, row.status, row.name, row.mem_mb === null ? '' : String(row.mem_mb)]),
          )}`;
  return { content: [{ type: 'text', text }], structuredContent: structured };
}

const WANTED: Partial<Record<PveAction, string>> = { start: 'running', stop: 'stopped', shutdown: 'stopped' };
const DONE: Partial<Record<PveAction, string>> = {
  start: 'started',
  stop: 'stopped (hard stop: like pulling the power, no clean shutdown)',
  shutdown: 'shut down cleanly',
};

/** The seed's container file tools (stdio mode: "local" is the machine running the server). */
function registerContainerTransferTools(server: McpServer, executor: ProxmoxExecutor, settings: FileToolSettings): void {
  // As in the seed: with ImageKit on, its tools (with ctid) replace these.
  const { uploadFile, downloadFile } = settings.transfersViaImageKit ? {} : executor;
  if (uploadFile) {
    registerTool(
      server,
      'proxmox_upload_file_to_container',
      {
        title: 'Upload a local file into a Proxmox container',
        description: `Copy a file from the machine running this server into an LXC container (pct push through a private temporary file on the host), atomically. Fails if the file exists unless overwrite=true. At most MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes).`,
        inputSchema: schemaOnce('proxmox_upload_file_to_container', () =>
          z
            .object({
              ctid: idArgument('lxc'),
              local_path: localPathArgument('local_path'),
              container_path: containerPathArgument,
              host: hostArgument,
              permissions: permissionsArgument,
              overwrite: overwriteArgument,
            })
            .strict(),
        ),
        outputSchema: transferOutput,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> =>
        runUpload(
          (request, signal) => uploadFile.call(executor, request, signal),
          {
            ...(args.host !== undefined ? { host: args.host } : {}),
            ctid: args.ctid,
            localPath: args.local_path,
            remotePath: args.container_path,
            ...(args.permissions !== undefined ? { permissions: args.permissions } : {}),
            overwrite: args.overwrite,
            maxBytes: settings.maxFileSize,
          },
          ctx,
        ),
    );
  }
  if (downloadFile) {
    registerTool(
      server,
      'proxmox_download_file_from_container',
      {
        title: 'Download a file from a Proxmox container',
        description: `Copy a file out of an LXC container (pct pull through a private temporary file on the host) to the machine running this server, atomically. Fails if the local file exists unless overwrite=true. At most MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes).`,
        inputSchema: schemaOnce('proxmox_download_file_from_container', () =>
          z
            .object({
              ctid: idArgument('lxc'),
              container_path: containerPathArgument,
              local_path: localPathArgument('local_path'),
              host: hostArgument,
              overwrite: overwriteArgument,
            })
            .strict(),
        ),
        outputSchema: transferOutput,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> =>
        runDownload(
          (request, signal) => downloadFile.call(executor, request, signal),
          {
            ...(args.host !== undefined ? { host: args.host } : {}),
            ctid: args.ctid,
            remotePath: args.container_path,
            localPath: args.local_path,
            overwrite: args.overwrite,
            maxBytes: settings.maxFileSize,
          },
          ctx,
        ),
    );
  }
}

export function registerProxmoxTools(server: McpServer, executor: ProxmoxExecutor, settings: FileToolSettings, era: ProtocolEra = 'modern'): void {
  registerContainerTransferTools(server, executor, settings);
  const pve = (request: Parameters<ProxmoxExecutor['proxmox']>[0], signal: AbortSignal): Promise<Outcome<PveOutcome>> => executor.proxmox(request, signal);

  for (const kind of ['lxc', 'qemu'] as const) {
    const noun = NOUN[kind];
    const suffix = kind === 'lxc' ? 'container' : 'vm';
    const host = (value: string | undefined): { host?: string } => (value !== undefined ? { host: value } : {});

    registerTool(
      server,
      kind === 'lxc' ? 'proxmox_list_containers' : 'proxmox_list_vms',
      {
        title: `List Proxmox ${noun.many}`,
        description: `List the ${noun.many} on a Proxmox VE host (${noun.tool} list): id, status${kind === 'lxc' ? ', lock' : ''} and name.`,
        inputSchema: schemaOnce(kind === 'lxc' ? 'proxmox_list_containers' : 'proxmox_list_vms', () =>
          z.object({ host: hostArgument, response_format: responseFormat }).strict(),
        ),
        outputSchema: listOutput,
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
      async (args, ctx): Promise<CallToolResult> => {
        const outcome = await pve({ ...host(args.host), kind, action: 'list' }, ctx.mcpReq.signal);
        return outcome.ok ? listResult(kind, outcome.value, args.response_format) : errorResult(outcome.error);
      },
    );

    registerTool(
      server,
      `proxmox_${suffix}_status`,
      {
        title: `Proxmox ${noun.one} status`,
        description: `Whether a ${noun.one} is running or stopped (${noun.tool} status); verbose adds its resource figures.`,
        inputSchema: schemaOnce(`proxmox_${suffix}_status`, () =>
          z
            .object({
              [noun.id]: idArgument(kind),
              verbose: z.boolean().default(false).describe('Include every field pct/qm reports.'),
              host: hostArgument,
              response_format: responseFormat,
            })
            .strict(),
        ),
        outputSchema: statusOutput,
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
      async (args, ctx): Promise<CallToolResult> => {
        const values = args as Record<string, unknown>;
        const id = String(values[noun.id]);
        const verbose = values.verbose === true;
        const outcome = await pve({ ...host(values.host as string | undefined), kind, action: 'status', id, verbose }, ctx.mcpReq.signal);
        if (!outcome.ok) return errorResult(outcome.error);
        if (outcome.value.exitCode !== 0) return commandFailed(kind, `status ${id}`, outcome.value);
        const parsed = parseStatus(outcome.value.stdout);
        const structured = { host: outcome.value.host, id, status: parsed.status, fields: verbose ? parsed.fields : {} };
        const text =
          values.response_format === 'json'
            ? JSON.stringify(structured, null, 2)
            : [
                `${noun.one} ${id} on ${outcome.value.host}: ${parsed.status ?? 'unknown'}`,
                ...(verbose
                  ? Object.entries(parsed.fields)
                      .filter(([key]) => key !== 'status')
                      .map(([key, value]) => `  ${key}: ${value}`)
                  : []),
              ].join('\n');
        return { content: [{ type: 'text', text }], structuredContent: structured };
      },
    );

    const actions: Array<{ action: 'start' | 'stop' | 'shutdown'; title: string; description: string }> = [
      { action: 'start', title: `Start a Proxmox ${noun.one}`, description: `Start a stopped ${noun.one} (${noun.tool} start).` },
      {
        action: 'stop',
        title: `Stop a Proxmox ${noun.one} (hard)`,
        description: `Stop a ${noun.one} at once (${noun.tool} stop): like pulling the power; processes get no chance to finish. Prefer proxmox_shutdown_${suffix}.`,
      },
      {
        action: 'shutdown',
        title: `Shut down a Proxmox ${noun.one}`,
        description: `Shut a ${noun.one} down cleanly (${noun.tool} shutdown), waiting up to timeout seconds.`,
      },
    ];
    for (const { action, title, description } of actions) {
      // Built inside schemaOnce's callback, so only the first server of the process pays for it.
      const shape = (): z.ZodRawShape => ({
        [noun.id]: idArgument(kind),
        host: hostArgument,
        ...(action === 'shutdown'
          ? {
              timeout: z
                .number()
                .int()
                .min(1)
                .max(3600)
                .default(DEFAULT_SHUTDOWN_SECONDS)
                .describe(`Seconds the ${noun.one} gets to shut down before ${noun.tool} gives up. Default ${DEFAULT_SHUTDOWN_SECONDS}.`),
            }
          : {}),
      });
      registerTool(
        server,
        `proxmox_${action}_${suffix}`,
        {
          title,
          description,
          inputSchema: schemaOnce(`proxmox_${action}_${suffix}`, () => z.object(shape()).strict()),
          outputSchema: actionOutput,
          annotations: { readOnlyHint: false, destructiveHint: action !== 'start', idempotentHint: true, openWorldHint: false },
        },
        async (args, ctx): Promise<CallToolResult> => {
          const values = args as Record<string, unknown>;
          const id = String(values[noun.id]);
          const timeoutSeconds = typeof values.timeout === 'number' ? values.timeout : undefined;
          const target = host(values.host as string | undefined);
          const ran = await pve({ ...target, kind, action, id, ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) }, ctx.mcpReq.signal);
          if (!ran.ok) return errorResult(ran.error);
          if (ran.value.exitCode !== 0) return commandFailed(kind, `${action} ${id}`, ran.value);
          // Exit 0 is not taken on trust: the guest must now be in the state asked for.
          const checked = await pve({ ...target, kind, action: 'status', id }, ctx.mcpReq.signal);
          const status = checked.ok && checked.value.exitCode === 0 ? parseStatus(checked.value.stdout).status : null;
          const output = (ran.value.stdout + ran.value.stderr).trim();
          const structured = { host: ran.value.host, id, action, status, exit_code: ran.value.exitCode, output };
          if (status !== WANTED[action]) {
            return {
              content: [
                {
                  type: 'text',
                  text: `${noun.tool} ${action} ${id} exited 0, but the ${noun.one} is now ${status ?? 'in an unknown state'}, not ${WANTED[action] ?? ''}.${output ? `\n${output}` : ''}`,
                },
              ],
              structuredContent: structured,
              isError: true,
            };
          }
          return {
            content: [
              { type: 'text', text: `${noun.one} ${id} on ${ran.value.host} ${DONE[action] ?? action}; it is now ${status}.${output ? `\n${output}` : ''}` },
            ],
            structuredContent: structured,
          };
        },
      );
    }

    registerTool(
      server,
      kind === 'lxc' ? 'proxmox_container_exec_command' : 'proxmox_vm_exec_command',
      {
        title: kind === 'lxc' ? 'Run a command in a Proxmox container' : 'Run a command in a Proxmox VM',
        description:
          kind === 'lxc'
            ? 'Run a command inside an LXC container (pct exec … -- bash -c COMMAND), with the same limits, formats and timeout as ssh_exec_command: after the timeout the command is stopped inside the container.'
            : 'Run a command inside a VM through the QEMU guest agent (qm guest exec … -- bash -c COMMAND). The agent must be installed and running in the VM. It cannot stop a command: after the timeout the command may go on running in the VM, and the result says so.',
        inputSchema: schemaOnce(
          `${kind === 'lxc' ? 'proxmox_container_exec_command' : 'proxmox_vm_exec_command'} timeout=${settings.defaultTimeoutSeconds}`,
          () =>
            z
              .object({
                [noun.id]: idArgument(kind),
                command: guestCommand(noun.one),
                timeout: timeoutArgument(settings, kind === 'lxc' ? 'the command is stopped' : 'the wait ends'),
                host: hostArgument,
                response_format: responseFormat,
              })
              .strict(),
        ),
        outputSchema: execStructuredOutput,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult | InputRequiredResult> => {
        const values = args as Record<string, unknown>;
        const id = String(values[noun.id]);
        const command = values.command as string;
        const timeoutMs = (values.timeout as number) * 1000;
        const format = values.response_format as 'text' | 'json';
        const { confirm, inputRequired } = confirmationFor(server, ctx, era);
        const outcome = await withExecProgress(ctx, values.timeout as number, (progress) =>
          executor.exec(
            {
              ...host(values.host as string | undefined),
              command,
              timeoutMs,
              maxChars: settings.characterLimit,
              guest: { kind, id },
              ...(progress ? { progress } : {}),
              ...(confirm ? { confirm } : {}),
            },
            ctx.mcpReq.signal,
          ),
        );
        if (!outcome.ok) return inputRequired(outcome) ?? errorResult(outcome.error);
        const formatted = formatExecResult(outcome.value, format, settings.characterLimit);
        return { content: [{ type: 'text', text: formatted.text }], structuredContent: formatted.structured, isError: formatted.isError };
      },
    );
  }
}
