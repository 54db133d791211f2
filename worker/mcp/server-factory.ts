/**
 * The Worker's MCP server for one caller: the shared catalog (shared/mcp-server.ts) over policy,
 * audit and the relay hub, plus the Worker-only audit_log tool.
 *
 * Which optional tools a caller is offered. The Proxmox tools and audit_log are listed only to
 * someone who can use them, which takes the caller's standing (a TeamDirectory call and the relay
 * inventory). That read happens where a listing is built: on `tools/list`, in either protocol era.
 * Every other request (above all `tools/call`) registers them unread ('all'): each of those tools is gated on every call anyway (policy in
 * PolicedExecutor, the admin check in audit_log), so a tool call costs no extra Durable Object
 * round trip for a decision the gate makes again.
 */
import type { McpServer } from '@modelcontextprotocol/server';
import { fleetHosts, policyHost } from '../team/fleet.ts';
import { buildMcpServer, type ProtocolEra } from '../../shared/mcp-server.ts';
import { isDeploymentAdmin, roleOn } from '../team/policy.ts';
import { PROXMOX_CAPABILITY } from '../../shared/capabilities.ts';
import { readSettings } from '../settings.ts';
import { standingAndFleet } from '../team/gate-call.ts';
import { registerAuditTool } from './audit-tool.ts';
import { registerApprovalTestTool } from '../approvals/approval-test-tool.ts';
import { registerApprovalStatusTool } from '../approvals/approval-status-tool.ts';
import { approvedCallRunner } from '../approvals/run-approved.ts';
import { HubExecutor } from './hub-executor.ts';
import { PolicedExecutor, type Caller } from './policed-executor.ts';
import { workerClassifier } from './worker-classifier.ts';

export const SERVER_INSTRUCTIONS =
  'Runs commands on the servers your team connected through an SSH relay. Call ssh_list_hosts first to learn the host names. ' +
  'Commands run non-interactively (no stdin; no terminal unless pty: true) with a timeout; prefer commands that finish on their own.';

/**
 * A call's response stream carries an SSE comment this often. A client that drops the request is
 * noticed when the stream is next written (workerd, locally at least, learns of a disconnect only
 * on a write, and the first write after it may still land in a buffer), and the call is then
 * cancelled: the relay stops the remote process. At 1 s a dropped 2026-07-28 call reaches the host's
 * stop about 2 s later (it was 4 s at 2 s), for one small write a second per running call.
 */
export const STREAM_KEEPALIVE_MS = 1000;

/** The optional tool groups to register: read from the caller's standing, or all of them (gated per call). */
export interface ToolOffer {
  proxmox: boolean;
  audit: boolean;
}

export const OFFER_ALL: ToolOffer = { proxmox: true, audit: true };

/** What the caller may be offered now; one TeamDirectory read (plus the relay inventory). */
export async function offerFor(env: Env, caller: Caller): Promise<ToolOffer> {
  const { standing, relays } = await standingAndFleet(env, caller.username, caller.grantId);
  if (!standing.ok) return { proxmox: false, audit: false };
  const { policy, subject } = standing.value;
  return {
    proxmox:
      fleetHosts(relays, (relay, host) => host.capabilities.includes(PROXMOX_CAPABILITY) && roleOn(policy, subject, policyHost(relay, host)) !== null).length >
      0,
    audit: isDeploymentAdmin(policy, subject),
  };
}

/** Only the test harness sets this var (wrangler --var), to get the tools in shared/test-tools.ts. */
export function testToolsOn(env: Env): boolean {
  return env.MCP_REMOTE_EXEC_TEST_TOOLS === 'true';
}

/** `onlyTool`: the server answers one tools/call of that tool (a 2026-07-28 request), so only it is registered. */
export function workerMcpServer(env: Env, caller: Caller, era: ProtocolEra, offer: ToolOffer, onlyTool?: string): McpServer {
  const settings = readSettings(env);
  // Every tool goes through policy and audit; the hub executor only runs what was allowed.
  const executor = new PolicedExecutor(new HubExecutor(env, caller, settings), env, caller, workerClassifier);
  return buildMcpServer({
    instructions: SERVER_INSTRUCTIONS,
    executor,
    settings: settings.tools,
    era,
    proxmox: offer.proxmox,
    imagekit: settings.imagekit !== null,
    extraTools: [
      ...(offer.audit ? [(server: McpServer) => registerAuditTool(server, env, caller)] : []),
      (server: McpServer) => registerApprovalStatusTool(server, env, caller, approvedCallRunner(executor, settings.tools)),
      ...(testToolsOn(env) ? [(server: McpServer) => registerApprovalTestTool(server, env, caller)] : []),
    ],
    testTools: testToolsOn(env),
    ...(onlyTool !== undefined ? { onlyTool } : {}),
  });
}
