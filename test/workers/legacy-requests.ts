/**
 * 2025-era /mcp requests made straight to the API handler as a given user (the OAuth provider would
 * hand it ctx.props), and session ids edited the way a hostile client would.
 */
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { mcpApiHandler } from '../../worker/mcp/transport.ts';
import { RESOURCE } from './oauth-flow.ts';

export interface SentRequest {
  pending: Promise<Response>;
  /** The context whose waitUntil work callers await when they need it (waitOnExecutionContext). */
  ctx: ExecutionContext;
}

/** Send `body` as `userId` (on session `sessionId` when given); the answer is not awaited. */
export function sendAs(userId: string, body: unknown, sessionId?: string, method = 'POST', workerEnv: Env = env): SentRequest {
  const base = createExecutionContext();
  const ctx = Object.assign(Object.create(Object.getPrototypeOf(base) as object) as ExecutionContext, base, { props: { userId, username: userId } });
  const request = new Request(RESOURCE, {
    method,
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      ...(sessionId !== undefined ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } : {}),
    },
    ...(method === 'POST' ? { body: JSON.stringify(body) } : {}),
  });
  return { pending: mcpApiHandler.fetch(request, workerEnv, ctx), ctx: base };
}

/** Send and await the answer and the request's waitUntil work. */
export async function requestAs(userId: string, body: unknown, sessionId?: string, method = 'POST', workerEnv: Env = env): Promise<Response> {
  const sent = sendAs(userId, body, sessionId, method, workerEnv);
  const response = await sent.pending;
  await waitOnExecutionContext(sent.ctx);
  return response;
}

/** An id as the Worker mints them, with its claims changed by `edit`. */
export function editedSessionId(sessionId: string, edit: (claims: Record<string, unknown>) => void): string {
  const claims = JSON.parse(atob(sessionId.replaceAll('-', '+').replaceAll('_', '/'))) as Record<string, unknown>;
  edit(claims);
  return btoa(JSON.stringify(claims)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}
