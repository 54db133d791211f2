/**
 * How MCP reaches the session Durable Objects: Streamable HTTP via McpAgent.serve (MCP protocol
 * 2025-11-25, sessions, progress, cancellation). Kept in this one file so the transport can be
 * swapped for the stateless handler later.
 *
 * McpAgent routes by the Mcp-Session-Id header alone and overwrites the session's props with the
 * caller's, so a session id must never be enough to use a session: a request whose token belongs
 * to another user than the session's owner gets the same 404 as an unknown session.
 */
import { getAgentByName } from 'agents';
import { sessionProps } from './session-props.ts';
import { McpSessionAgent } from './session-agent.ts';

const served = McpSessionAgent.serve('/mcp', { binding: 'MCP_SESSION' });

function sessionNotFound(): Response {
  return Response.json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }, { status: 404 });
}

export const mcpApiHandler = {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const props = sessionProps.safeParse(ctx.props);
    if (!props.success) return new Response('The access token carries no user.', { status: 403 });
    const sessionId = request.headers.get('mcp-session-id');
    if (sessionId) {
      const session = await getAgentByName(env.MCP_SESSION, `streamable-http:${sessionId}`);
      const owner = await session.sessionOwner();
      // Fail closed: a session without a recorded owner is nobody's.
      if (owner !== props.data.userId) return sessionNotFound();
    }
    return served.fetch(request, env, ctx);
  },
};
