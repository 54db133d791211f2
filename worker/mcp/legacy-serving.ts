/**
 * 2025-era MCP requests (protocol 2025-06-18 / 2025-11-25: initialize, then everything carrying
 * Mcp-Session-Id), served by the Worker itself, one SDK v2 server per request, as 2026-07-28
 * requests are. The session travels in its id (worker/mcp/session-id.ts): each request's server is
 * given the session's initialize again before it serves the request, so it knows the client's
 * capabilities (whether it can be asked a question) without a lookup. A tool call therefore makes
 * the same Durable Object calls in both eras: the team directory and the relay hub.
 *
 * What a session still shares between requests goes through its mailbox (session-mailbox.ts), off
 * the ordinary path:
 * - a question a tool asks its caller (elicitation) goes out on the call's own stream under a
 *   random wire id; the client's answer comes back as a POST, is put in the mailbox, and the asking
 *   call takes it from there;
 * - notifications/cancelled comes as a POST too and goes to the mailbox; a call that is still
 *   running after a second watches the mailbox for its own cancel (a cancel that came earlier is
 *   kept there for it).
 * A client that drops the call's HTTP request cancels it as well. The running side of all this is
 * worker/mcp/legacy-call.ts.
 *
 * Sessions hold nothing, so there is nothing to end: DELETE is answered 405, as the protocol allows
 * ("the server does not allow clients to terminate sessions"), and an id stays usable by its user.
 */
import {
  isInitializeRequest,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResponse,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { logEvent } from '../log.ts';
import { mailboxOf, QUESTION_ID, RunningCall } from './legacy-call.ts';
import { calledTool, hasId, methodOf } from './request-body.ts';
import type { Caller } from './policed-executor.ts';
import { OFFER_ALL, offerFor, STREAM_KEEPALIVE_MS, workerMcpServer, type ToolOffer } from './server-factory.ts';
import { MAX_ANSWER_CHARS } from './session-mailbox.ts';
import { mintSession, readSession, type Session } from './session-id.ts';
import { grantIdOf, type SessionProps } from './session-props.ts';

/** The requests that may run long, ask a question or be cancelled: every other one answers at once. */
const LONG_METHODS: ReadonlySet<string> = new Set(['tools/call', 'tasks/result']);

function jsonRpcError(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ jsonrpc: '2.0', error: { code, message }, id: null }, { status, headers });
}

export function sessionNotFound(): Response {
  return jsonRpcError(404, -32001, 'Session not found');
}

/** A 2025-era request, served here. */
export async function serveLegacy(request: Request, env: Env, ctx: ExecutionContext, props: SessionProps, body: unknown): Promise<Response> {
  // No standalone GET stream (this server sends nothing outside a call) and no ending of sessions.
  if (request.method === 'GET') return new Response(null, { status: 405, headers: { Allow: 'POST' } });
  if (request.method === 'DELETE') {
    return jsonRpcError(405, -32000, 'This server does not end sessions on request: a session holds nothing between requests. Stop using its id.', {
      Allow: 'POST',
    });
  }
  if (request.method !== 'POST') return new Response(null, { status: 405, headers: { Allow: 'POST' } });
  const caller: Caller = { userId: props.userId, username: props.username, client: props.client ?? null, grantId: grantIdOf(request) };

  const header = request.headers.get('mcp-session-id');
  if (header === null) {
    if (methodOf(body) !== 'initialize') return jsonRpcError(400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    // Params the server refuses get a throwaway id: its refusal, which says what is wrong, carries no session.
    const minted = isInitializeRequest(body) ? mintSession(props.userId, body.params) : null;
    return serve(request, env, ctx, caller, body, minted?.id ?? 'refused', null);
  }
  const session = readSession(header, props.userId);
  if (session === null) return sessionNotFound();

  // A message with a method is a request or a notification; only one without is an answer. Asked
  // first, because the SDK's checks are schema parses whose failures build error reports.
  const method = methodOf(body);
  // The client's answer to a question a call asked: for the mailbox, where that call waits.
  if (method === undefined && isJSONRPCResponse(body)) {
    // Only an answer that can be one (a question's wire id, a small form) goes on to the mailbox.
    if (typeof body.id === 'string' && QUESTION_ID.test(body.id) && JSON.stringify(body).length <= MAX_ANSWER_CHARS) {
      await mailboxOf(env, session).answer(body.id, body);
    }
    return new Response(null, { status: 202 });
  }
  if (method !== undefined && !hasId(body) && isJSONRPCNotification(body)) {
    const requestId: unknown = body.params?.requestId;
    if (body.method === 'notifications/cancelled' && (typeof requestId === 'string' || typeof requestId === 'number')) {
      await mailboxOf(env, session).cancel(requestId);
    }
    // Any other notification (initialized, roots changed) changes nothing here.
    return new Response(null, { status: 202 });
  }
  return serve(request, env, ctx, caller, body, session.id, session);
}

/** One request on a server built for it; `session` null for the initialize that opens one. */
async function serve(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  caller: Caller,
  body: unknown,
  sessionId: string,
  session: Session | null,
): Promise<Response> {
  // Only a listing reads the caller's standing; a tools/call registers just the tool it names (server-factory.ts).
  const offer: ToolOffer = methodOf(body) === 'tools/list' ? await offerFor(env, caller) : OFFER_ALL;
  const server = workerMcpServer(env, caller, 'legacy', offer, calledTool(body));
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: () => sessionId, keepAliveMs: STREAM_KEEPALIVE_MS });
  // Only requests that can run long (a tool call, a task's result) can be asked about or cancelled by message.
  const call = session && isJSONRPCRequest(body) && LONG_METHODS.has(body.method) ? new RunningCall(env, ctx, session, transport, body.id) : null;
  await server.connect(transport);
  if (session) {
    const replayed = await replayInitialize(transport, session);
    if (!replayed) return sessionNotFound();
  }
  const response = await transport.handleRequest(request, body !== undefined ? { parsedBody: body } : undefined);
  if (!call) return response;
  return call.follow(response);
}

/** Give this request's server the session's initialize, as the client sent it when the session opened. */
async function replayInitialize(transport: WebStandardStreamableHTTPServerTransport, session: Session): Promise<boolean> {
  const replay = await transport.handleRequest(
    new Request('http://session/mcp', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: '{}',
    }),
    { parsedBody: { jsonrpc: '2.0', id: 'session', method: 'initialize', params: session.initialize } },
  );
  // Read to its end: the server answers the replay on its stream, and a cancelled stream would make that answer an error.
  await replay.text();
  if (!replay.ok) logEvent('warn', 'a 2025-era session id named an initialize the server refuses', { status: replay.status });
  return replay.ok;
}
