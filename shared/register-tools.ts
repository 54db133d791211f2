/**
 * Binds the tool catalog to an MCP server with a given executor. Both the Worker's session
 * Durable Object and the stdio mode call this, so the tools look and behave the same everywhere.
 */
import type { CallToolResult, InputRequiredResult, McpServer } from '@modelcontextprotocol/server';
import { confirmationFor } from './confirm-call.ts';
import { formatExecResult } from './exec-output.ts';
import { withExecProgress } from './exec-progress.ts';
import { DEFAULT_PTY_COLS, DEFAULT_PTY_ROWS } from './limits.ts';
import { registerFileTools, type FileToolSettings } from './file-tools.ts';
import {
  execCommandInput,
  execStructuredOutput,
  listHostsInput,
  listHostsOutput,
  relayPingInput,
  relayPingOutput,
  TOOL_DESCRIPTIONS,
  type ListHostsOutput,
  type ToolSettings,
} from './tool-catalog.ts';
import type { ProtocolEra } from './mcp-server.ts';
import type { HostListing, ToolExecutor } from './tool-executor.ts';
import { errorResult } from './tool-results.ts';
import { registerTool } from './tool-registration.ts';

function hostListingOutput(listing: HostListing): ListHostsOutput {
  return {
    relays: listing.relays.map((relay) => ({
      id: relay.id,
      connected: relay.connected,
      ...(relay.version !== undefined ? { version: relay.version } : {}),
      ...(relay.connectedSince !== undefined ? { connected_since: relay.connectedSince } : {}),
    })),
    hosts: listing.hosts.map((host) => ({
      name: host.name,
      relay: host.relay,
      target: host.target,
      labels: host.labels,
      capabilities: host.capabilities,
      reachable: host.reachable,
      ...(host.detail !== undefined ? { detail: host.detail } : {}),
      ...(host.latencyMs !== undefined ? { latency_ms: Math.round(host.latencyMs) } : {}),
      ...(host.role !== undefined ? { role: host.role } : {}),
    })),
  };
}

export function formatHostListing(listing: HostListing): string {
  const lines: string[] = [];
  for (const relay of listing.relays) {
    lines.push(
      `Relay "${relay.id}": ${relay.connected ? `connected${relay.version ? ` (version ${relay.version})` : ''}` : 'NOT connected: hosts behind it cannot be reached until it reconnects'}`,
    );
  }
  if (listing.relays.length === 0) lines.push('No relay has connected yet. Start one (see the README, "Running the relay").');
  if (listing.hosts.length === 0 && (listing.hiddenHosts ?? 0) > 0) {
    lines.push('You have no access to any host yet: ask an admin of this deployment to grant you a role.');
    return lines.join('\n');
  }
  if (listing.hosts.length === 0) {
    lines.push("No hosts are configured. Add HOST=… to the relay's .env, or hosts to its config file, and restart it.");
    return lines.join('\n');
  }
  lines.push('');
  for (const host of listing.hosts) {
    const state =
      host.reachable === null
        ? 'unknown'
        : host.reachable
          ? `reachable${host.latencyMs !== undefined ? ` (${Math.round(host.latencyMs)} ms)` : ''}`
          : 'UNREACHABLE';
    const labels = Object.entries(host.labels)
      .map(([key, value]) => `${key}=${value}`)
      .join(', ');
    const role = host.role !== undefined ? `; your role: ${host.role}` : '';
    lines.push(`- ${host.name} [${host.target}] via relay "${host.relay}": ${state}${labels ? `; labels: ${labels}` : ''}${role}`);
    if (host.detail) lines.push(`    ${host.detail}`);
  }
  return lines.join('\n');
}

/** `era`: whether the requester can be asked to confirm a command during the call (shared/confirm-call.ts). */
export function registerTools(server: McpServer, executor: ToolExecutor, settings: FileToolSettings, era: ProtocolEra = 'modern'): void {
  registerTool(
    server,
    'ssh_list_hosts',
    {
      title: 'List SSH hosts',
      description: TOOL_DESCRIPTIONS.ssh_list_hosts,
      inputSchema: listHostsInput,
      outputSchema: listHostsOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const outcome = await executor.listHosts({ probe: args.check }, ctx.mcpReq.signal);
      if (!outcome.ok) return errorResult(outcome.error);
      const structured = hostListingOutput(outcome.value);
      const text = args.response_format === 'json' ? JSON.stringify(structured, null, 2) : formatHostListing(outcome.value);
      return { content: [{ type: 'text', text }], structuredContent: structured };
    },
  );

  registerTool(
    server,
    'ssh_exec_command',
    {
      title: 'Run a command over SSH',
      description: TOOL_DESCRIPTIONS.ssh_exec_command(settings),
      inputSchema: execCommandInput(settings),
      outputSchema: execStructuredOutput,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async (args, ctx): Promise<CallToolResult | InputRequiredResult> => {
      const timeoutMs = args.timeout * 1000;
      const { confirm, inputRequired } = confirmationFor(server, ctx, era);
      const outcome = await withExecProgress(ctx, args.timeout, (progress) =>
        executor.exec(
          {
            ...(args.host !== undefined ? { host: args.host } : {}),
            command: args.command,
            timeoutMs,
            maxChars: settings.characterLimit,
            ...(args.pty ? { pty: { rows: args.pty_rows ?? DEFAULT_PTY_ROWS, cols: args.pty_cols ?? DEFAULT_PTY_COLS } } : {}),
            ...(args.sudo ? { sudo: true } : {}),
            ...(progress ? { progress } : {}),
            ...(confirm ? { confirm } : {}),
          },
          ctx.mcpReq.signal,
        ),
      );
      if (!outcome.ok) return inputRequired(outcome) ?? errorResult(outcome.error);
      const formatted = formatExecResult(outcome.value, args.response_format, settings.characterLimit);
      return { content: [{ type: 'text', text: formatted.text }], structuredContent: formatted.structured, isError: formatted.isError };
    },
  );

  registerFileTools(server, executor, settings);

  const ping = executor.ping?.bind(executor);
  if (!ping) return;
  registerTool(
    server,
    'relay_ping',
    {
      title: 'Check the relay',
      description: TOOL_DESCRIPTIONS.relay_ping,
      inputSchema: relayPingInput,
      outputSchema: relayPingOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args, ctx): Promise<CallToolResult> => {
      const outcome = await ping(args.relay !== undefined ? { relay: args.relay } : {}, ctx.mcpReq.signal);
      if (!outcome.ok) return errorResult(outcome.error);
      const { relayId, relayVersion, roundTripMs } = outcome.value;
      return {
        content: [{ type: 'text', text: `Relay "${relayId}" (version ${relayVersion}) answered in ${roundTripMs.toFixed(1)} ms.` }],
        structuredContent: { relay_id: relayId, relay_version: relayVersion, round_trip_ms: roundTripMs },
      };
    },
  );
}
