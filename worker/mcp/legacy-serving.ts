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
 *   running after CANCEL_WATCH_AFTER_MS watches the mailbox for its own cancel (a cancel that came
 *   earlier is kept there for it).
 * A client that drops the call's HTTP request cancels it as well (cancelOnDrop).
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
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { besideCriticalPath } from '../do-call-count.ts';
import { logEvent } from '../log.ts';
import { calledTool, methodOf } from './request-body.ts';
import type { Caller } from './policed-executor.ts';
import { OFFER_ALL, offerFor, STREAM_KEEPALIVE_MS, workerMcpServer, type ToolOffer } from './server-factory.ts';
import { MAX_ANSWER_CHARS } from './session-mailbox.ts';
import { mintSession, readSession, type Session } from './session-id.ts';
import type { SessionProps } from './session-props.ts';

/** The requests that may run long, ask a question or be cancelled: every other one answers at once. */
const LONG_METHODS: ReadonlySet<string> = new Set(['tools/call', 'tasks/result']);
/** A question's wire id: this prefix and a random UUID; an answer under any other id is no answer to us. */
const QUESTION_PREFIX = 'q-';
const QUESTION_ID = /^q-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A call still running this long after it started begins to watch its session's mailbox for a cancel. */
export const CANCEL_WATCH_AFTER_MS = 1000;
/** One watch (or wait for an answer) lasts at most this long; the call then watches again while it runs. */
const MAILBOX_POLL_MS = 30_000;
/** A mailbox wait that fails (the mailbox restarted) is asked again this many times in all, this long apart. */
const MAILBOX_ATTEMPTS = 3;
const MAILBOX_RETRY_MS = 250;
/** A question's answer is waited for at most this long (the asking tool gives up sooner, with its own timeout). */
const ANSWER_WAIT_MS = 15 * 60_000;
/**
 * A cancel counts for a call when it reached the mailbox at most this long before the call began:
 * it may overtake its own request on the way (another connection), and the clocks of this isolate
 * and the mailbox differ slightly. Kept short so that a cancel of an earlier request with the same
 * JSON-RPC id (a client that started counting again) does not stop a new one.
 */
const CLOCK_SLACK_MS = 1000;

type MailboxStub = DurableObjectStub<import('./session-mailbox.ts').McpSession>;

function jsonRpcError(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ jsonrpc: '2.0', error: { code, message }, id: null }, { status, headers });
}

export function sessionNotFound(): Response {
  return jsonRpcError(404, -32001, 'Session not found');
}

function mailboxOf(env: Env, session: Session): MailboxStub {
  // Named by user and nonce: a user who names someone else's nonce reaches a mailbox of their own.
  return env.MCP_SESSION.get(env.MCP_SESSION.idFromName(`${session.userId}\n${session.nonce}`));
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
  const caller: Caller = { userId: props.userId, username: props.username, client: props.client ?? null };

  const header = request.headers.get('mcp-session-id');
  if (header === null) {
    if (methodOf(body) !== 'initialize') return jsonRpcError(400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    // Params the server refuses get a throwaway id: its refusal, which says what is wrong, carries no session.
    const minted = isInitializeRequest(body) ? mintSession(props.userId, body.params) : null;
    return serve(request, env, ctx, caller, body, minted?.id ?? 'refused', null);
  }
  const session = readSession(header, props.userId);
  if (session === null) return sessionNotFound();

  // The client's answer to a question a call asked: for the mailbox, where that call waits.
  if (isJSONRPCResponse(body)) {
    // Only an answer that can be one (a question's wire id, a small form) goes on to the mailbox.
    if (typeof body.id === 'string' && QUESTION_ID.test(body.id) && JSON.stringify(body).length <= MAX_ANSWER_CHARS) {
      await mailboxOf(env, session).answer(body.id, body);
    }
    return new Response(null, { status: 202 });
  }
  if (isJSONRPCNotification(body)) {
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

/**
 * A request of a session while it runs: its questions to the client travel under wire ids the
 * mailbox knows, a cancel that comes by message reaches it, and a dropped stream cancels it.
 */
class RunningCall {
  private readonly started = Date.now();
  /** Wire id → the id the server gave the question. */
  private readonly questions = new Map<string, string | number>();
  private ended = false;
  /** Whether the call has begun watching the mailbox for a cancel (it then has a wait there to release). */
  private watching = false;
  private watchTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly env: Env;
  private readonly ctx: ExecutionContext;
  private readonly session: Session;
  private readonly transport: WebStandardStreamableHTTPServerTransport;
  private readonly requestId: string | number;

  constructor(env: Env, ctx: ExecutionContext, session: Session, transport: WebStandardStreamableHTTPServerTransport, requestId: string | number) {
    this.env = env;
    this.ctx = ctx;
    this.session = session;
    this.transport = transport;
    this.requestId = requestId;
    const send = transport.send.bind(transport);
    transport.send = async (message, options): Promise<void> => send(this.outgoing(message), options);
  }

  /** Questions go out under a fresh random id; a cancel of one names it by that id too. */
  private outgoing(message: JSONRPCMessage): JSONRPCMessage {
    if (isJSONRPCRequest(message)) {
      const wireId = `${QUESTION_PREFIX}${crypto.randomUUID()}`;
      this.questions.set(wireId, message.id);
      void this.awaitAnswer(wireId, message.id);
      return { ...message, id: wireId };
    }
    if (isJSONRPCNotification(message) && message.method === 'notifications/cancelled') {
      const asked = [...this.questions].find(([, id]) => id === message.params?.requestId);
      if (asked) return { ...message, params: { ...message.params, requestId: asked[0] } };
    }
    return message;
  }

  private async awaitAnswer(wireId: string, serverId: string | number): Promise<void> {
    const answer = await this.fromMailbox("a client's answer", (mailbox) => mailbox.awaitAnswer(wireId, ANSWER_WAIT_MS));
    this.questions.delete(wireId);
    if (this.ended) return;
    if (isJSONRPCResponse(answer) && JSON.stringify(answer).length <= MAX_ANSWER_CHARS) {
      this.transport.onmessage?.({ ...answer, id: serverId });
      return;
    }
    // No answer will come this way (the wait ran out, was turned away, or kept failing): the asking
    // tool learns so now, rather than at its own timeout.
    this.transport.onmessage?.({ jsonrpc: '2.0', id: serverId, error: { code: -32603, message: "The client's answer could not be received." } });
  }

  /**
   * A wait on the mailbox, asked again (on a fresh stub) when it fails: the mailbox restarting drops
   * the waits in progress, while what it keeps survives. Null when it keeps failing or the call ended.
   */
  private async fromMailbox<T>(what: string, wait: (mailbox: MailboxStub) => Promise<T>): Promise<T | null> {
    for (let attempt = 1; attempt <= MAILBOX_ATTEMPTS && !this.ended; attempt += 1) {
      try {
        return await wait(mailboxOf(this.env, this.session));
      } catch (error) {
        logEvent('warn', `could not wait for ${what}`, { attempt, error: String(error) });
        if (attempt < MAILBOX_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, MAILBOX_RETRY_MS));
      }
    }
    return null;
  }

  /** The response, watched: its end releases what the call waits for, its drop cancels the call. */
  follow(response: Response): Response {
    if (!response.body) {
      this.end();
      return response;
    }
    // Beside the call, never holding up its answer: not on the critical path (test builds count that).
    this.watchTimer = setTimeout(() => void besideCriticalPath(() => this.watchForCancel()), CANCEL_WATCH_AFTER_MS);
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller): Promise<void> => {
        const { done, value } = await reader.read();
        if (done) {
          this.end();
          controller.close();
        } else controller.enqueue(value);
      },
      cancel: async (reason): Promise<void> => {
        // The transport forgets a request whose stream the client dropped, but the tool keeps
        // running: a dropped stream is a cancel, so the tool's signal aborts (the relay stops the remote process).
        this.cancelCall('client disconnected');
        this.end();
        await reader.cancel(reason).catch(() => undefined);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }

  private cancelCall(reason: string): void {
    this.transport.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: this.requestId, reason } });
  }

  private async watchForCancel(): Promise<void> {
    if (this.ended) return;
    this.watching = true;
    // Bounded by the call's life (it ends when its stream does), each watch by MAILBOX_POLL_MS, and
    // a mailbox that turns the watch away (too many wait there) or keeps failing ends the watching:
    // a dropped request still cancels.
    while (!this.ended) {
      const watch = await this.fromMailbox('a cancel', (mailbox) => mailbox.awaitCancel(this.requestId, this.started - CLOCK_SLACK_MS, MAILBOX_POLL_MS));
      if (watch === 'cancelled' && !this.ended) this.cancelCall('cancelled by the client');
      if (watch !== 'again') return;
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.watchTimer !== null) clearTimeout(this.watchTimer);
    const watching = this.watching;
    if (this.questions.size === 0 && !watching) return;
    // Let go of the mailbox waits now rather than at their timeouts; after the answer, not before it.
    this.ctx.waitUntil(
      mailboxOf(this.env, this.session)
        .release([...this.questions.keys()], watching ? this.requestId : null)
        .catch(() => undefined),
    );
  }
}
