/**
 * /mcp behind the OAuth provider (which has checked the access token and put the grant's props in
 * ctx.props). One endpoint, two eras:
 *
 * - 2026-07-28 requests (a per-request `_meta` protocol-version claim) go to createMcpHandler from
 *   agents/mcp/server: stateless, one McpServer per request, questions as input_required results.
 * - 2025-era requests (initialize, and everything carrying Mcp-Session-Id) are served here too,
 *   one SDK v2 server per request, the session carried in its id (worker/mcp/legacy-serving.ts).
 *
 * A session id never authenticates anyone: identity comes from the access token on every request,
 * and an id that belongs to another user is answered as a session that does not exist.
 */
import { isLegacyRequest } from '@modelcontextprotocol/server';
import { createMcpHandler } from 'agents/mcp/server';
import { MCP_MAX_BODY_BYTES } from '../../shared/limits.ts';
import { logEvent } from '../log.ts';
import { deploymentNames } from '../rebinding-guard.ts';
import { readSettings } from '../settings.ts';
import type { Caller } from './policed-executor.ts';
import { OFFER_ALL, offerFor, STREAM_KEEPALIVE_MS, workerMcpServer, type ToolOffer } from './server-factory.ts';
import { serveLegacy } from './legacy-serving.ts';
import { grantIdOf, sessionProps } from './session-props.ts';
import { quickEra } from './quick-era.ts';
import { bodyJson, calledTool, methodOf } from './request-body.ts';

/** A 2026-07-28 request: one server for this request only. */
async function stateless(request: Request, env: Env, ctx: ExecutionContext, caller: Caller, body: unknown): Promise<Response> {
  // Only a listing reads the caller's standing (see worker/mcp/server-factory.ts).
  const offer: ToolOffer = methodOf(body) === 'tools/list' ? await offerFor(env, caller) : OFFER_ALL;
  // A tool call answers as a stream from the start (SSE), so its keep-alive comments reveal a
  // client that went away; everything else answers plain JSON unless it has something to stream.
  const responseMode = methodOf(body) === 'tools/call' ? 'sse' : 'auto';
  // Host and Origin were checked at the entry (worker/rebinding-guard.ts); the handler's own check,
  // which by default knows only localhost and workers.dev, gets the same names so a custom domain works.
  const names = [...deploymentNames(readSettings(env)).hostnames];
  // A tools/call needs only the tool it names: the server registers that one (server-factory.ts).
  const onlyTool = calledTool(body);
  const handler = createMcpHandler(({ era }) => workerMcpServer(env, caller, era, offer, onlyTool), {
    legacy: 'reject',
    allowedHostnames: names,
    allowedOriginHostnames: names,
    responseMode,
    keepAliveMs: STREAM_KEEPALIVE_MS,
    maxRequestBodySize: MCP_MAX_BODY_BYTES,
    onerror: (error) => logEvent('warn', 'MCP request failed', { error: error.message }),
  });
  return handler(request, env, ctx);
}

export const mcpApiHandler = {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const props = sessionProps.safeParse(ctx.props);
    if (!props.success) return new Response('The access token carries no user.', { status: 403 });
    const body = await bodyJson(request);
    const era = quickEra(request, body) ?? ((await isLegacyRequest(request, body)) ? 'legacy' : 'modern');
    if (era === 'legacy') return serveLegacy(request, env, ctx, props.data, body);
    const caller: Caller = { userId: props.data.userId, username: props.data.username, client: props.data.client ?? null, grantId: grantIdOf(request) };
    return stateless(request, env, ctx, caller, body);
  },
};
