/**
 * One Durable Object per MCP session (agents' McpAgent, MCP SDK v1). It serves the shared tool
 * catalog with the hub executor, and remembers which user opened it: worker/mcp/transport.ts
 * refuses the session to anyone else.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { McpAgent } from 'agents/mcp';
import { registerTools } from '../../shared/register-tools.ts';
import { VERSION } from '../../shared/version.ts';
import { readSettings } from '../settings.ts';
import { fleetHosts, policyHost } from '../../shared/fleet.ts';
import { isDeploymentAdmin, roleOn } from '../../shared/policy.ts';
import { PROXMOX_CAPABILITY } from '../../shared/proxmox.ts';
import { registerProxmoxTools } from '../../shared/proxmox-tools.ts';
import { registerImageKitTools } from '../../shared/imagekit-tools.ts';
import { standingAndFleet } from '../team/gate-call.ts';
import { registerAuditTool } from './audit-tool.ts';
import { HubExecutor } from './hub-executor.ts';
import { PolicedExecutor, type Caller } from './policed-executor.ts';
import type { SessionProps } from './session-props.ts';

const OWNER_KEY = 'owner';

export const SERVER_INSTRUCTIONS =
  'Runs commands on the servers your team connected through an SSH relay. Call ssh_list_hosts first to learn the host names. ' +
  'Commands run non-interactively (no terminal, no stdin) with a timeout; prefer commands that finish on their own.';

export class McpSessionAgent extends McpAgent<Env, unknown, SessionProps> {
  server = new McpServer({ name: 'mcp-remote-exec', version: VERSION }, { instructions: SERVER_INSTRUCTIONS });

  async init(): Promise<void> {
    const userId = this.props?.userId;
    if (userId && (await this.ctx.storage.get<string>(OWNER_KEY)) === undefined) {
      await this.ctx.storage.put(OWNER_KEY, userId);
    }
    const settings = readSettings(this.env);
    const caller: Caller = { userId: userId ?? '', username: this.props?.username ?? '', client: this.props?.client ?? null };
    // Every tool goes through policy and audit; the hub executor only runs what was allowed.
    const executor = new PolicedExecutor(new HubExecutor(this.env, caller, settings), this.env, caller);
    registerTools(this.server, executor, settings.tools);
    if (settings.imagekit) registerImageKitTools(this.server, executor, settings.tools);
    const { standing, relays } = await standingAndFleet(this.env, caller.username);
    if (!standing.ok) return;
    const { policy, subject } = standing.value;
    // The Proxmox tools are offered only to someone who can see a Proxmox host.
    if (fleetHosts(relays, (relay, host) => host.capabilities.includes(PROXMOX_CAPABILITY) && roleOn(policy, subject, policyHost(relay, host)) !== null).length > 0) {
      registerProxmoxTools(this.server, executor, settings.tools);
    }
    if (isDeploymentAdmin(policy, subject)) registerAuditTool(this.server, this.env, caller);
  }

  /** The user who opened this session, or null for a session that was never initialized. */
  async sessionOwner(): Promise<string | null> {
    return (await this.ctx.storage.get<string>(OWNER_KEY)) ?? null;
  }
}
