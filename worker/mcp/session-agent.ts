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
import { isDeploymentAdmin } from '../../shared/policy.ts';
import { teamDirectory } from '../team/team-directory.ts';
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
    registerTools(this.server, new PolicedExecutor(new HubExecutor(this.env, caller, settings), this.env, caller), settings.tools);
    const access = await teamDirectory(this.env).access(caller.username);
    if (access.active && isDeploymentAdmin(access.policy, access.subject)) registerAuditTool(this.server, this.env, caller);
  }

  /** The user who opened this session, or null for a session that was never initialized. */
  async sessionOwner(): Promise<string | null> {
    return (await this.ctx.storage.get<string>(OWNER_KEY)) ?? null;
  }
}
