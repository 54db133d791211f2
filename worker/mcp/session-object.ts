/**
 * One Durable Object per 2025-era MCP session (protocol 2025-06-18 / 2025-11-25, SDK v2): an
 * McpServer connected to a WebStandardStreamableHTTPServerTransport, kept in memory, so a tool can
 * ask its caller a question mid-call (elicitation: the question goes out on the call's stream,
 * the answer comes back as a POST to this same object) and notifications/cancelled reaches the
 * running call. 2026-07-28 requests never come here (worker/mcp/transport.ts).
 *
 * Identity comes only from the Worker, which passes the OAuth props of the request in a header it
 * always overwrites. The session records its owner at initialize; anyone else, and any request to
 * a session that was never opened, gets the same 404.
 *
 * After eviction the transport is gone from memory; the session is rebuilt by replaying the
 * stored initialize (client capabilities included) before the request is served, so a client
 * keeps its session id.
 *
 * Sessions that clients abandon without a DELETE would keep their stored owner and initialize
 * forever: an alarm closes a session once it has gone unused for SESSION_IDLE_MS.
 */
import { DurableObject } from 'cloudflare:workers';
import { isJSONRPCRequest, WebStandardStreamableHTTPServerTransport, type McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { countingEnv, countingOn, DO_CALLS_HEADER, withDoCallCount } from '../do-call-count.ts';
import { logEvent } from '../log.ts';
import type { Caller } from './policed-executor.ts';
import { offerFor, STREAM_KEEPALIVE_MS, workerMcpServer } from './server-factory.ts';
import { sessionProps } from './session-props.ts';

/** Set by the Worker on every request it forwards here (after removing any the client sent). */
export const CALLER_HEADER = 'x-mcp-remote-exec-caller';
/** Set by the Worker on an initialize without a session id: the id it minted for the new session. */
export const NEW_SESSION_HEADER = 'x-mcp-remote-exec-new-session';

const OWNER_KEY = 'owner';
/** A session unused this long is closed: its storage is deleted and its id answers 404. */
export const SESSION_IDLE_MS = 24 * 60 * 60 * 1000;
/** Last use is written to storage at most this often (so eviction does not forget it), not on every request. */
const LAST_USED_WRITE_MS = 60 * 60 * 1000;
const LAST_USED_KEY = 'lastUsed';
const INIT_KEY = 'initialize';

/** What is kept of the client's initialize, to replay it after eviction. */
const storedInitialize = z.object({
  protocolVersion: z.string().max(64),
  capabilities: z.record(z.string(), z.unknown()),
  clientInfo: z.object({ name: z.string().max(256), version: z.string().max(256) }).loose(),
});

const storedOwner = z.object({ sessionId: z.string(), caller: sessionProps });

export function sessionNotFound(): Response {
  return Response.json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }, { status: 404 });
}

function parseJson(text: string | null): unknown {
  try {
    return text === null ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function callerOf(props: z.infer<typeof sessionProps>): Caller {
  return { userId: props.userId, username: props.username, client: props.client ?? null };
}

interface Live {
  server: McpServer;
  transport: WebStandardStreamableHTTPServerTransport;
}

export class McpSession extends DurableObject<Env> {
  private live: Live | undefined;
  /** A rebuild in progress: requests that arrive meanwhile wait for it instead of building a second server. */
  private restoring: Promise<Live | null> | undefined;
  /** When this instance last served a request (in memory), and the last time that was stored. */
  private lastUsed = 0;
  private lastStored = 0;
  /** The stored owner, once read or written: it never changes while the session lives (close deletes both). */
  private owner: z.infer<typeof storedOwner> | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    // Test builds count the Durable Object calls each request makes (worker/do-call-count.ts).
    super(ctx, countingOn(env) ? countingEnv(env) : env);
  }

  override async fetch(request: Request): Promise<Response> {
    // The Worker sets the header only on a request it counts (and removes any a client sent).
    const counted = request.headers.get(DO_CALLS_HEADER);
    if (!countingOn(this.env) || counted === null) return this.serve(request);
    const start = Number(counted);
    return withDoCallCount(Number.isSafeInteger(start) && start >= 0 ? start : 0, () => this.serve(request));
  }

  private async serve(request: Request): Promise<Response> {
    const props = sessionProps.safeParse(parseJson(request.headers.get(CALLER_HEADER)));
    if (!props.success) return new Response('No caller.', { status: 500 });
    const minted = request.headers.get(NEW_SESSION_HEADER);
    const parsedBody: unknown =
      request.method === 'POST'
        ? await request
            .clone()
            .json()
            .catch(() => undefined)
        : undefined;

    let live: Live;
    if (minted !== null) {
      if ((await this.ctx.storage.get(OWNER_KEY)) !== undefined) return sessionNotFound();
      live = await this.open(minted, callerOf(props.data));
      this.owner = { sessionId: minted, caller: props.data };
      await this.ctx.storage.put(OWNER_KEY, this.owner);
      await this.ctx.storage.setAlarm(Date.now() + SESSION_IDLE_MS);
    } else {
      const owner = await this.storedOwner();
      // Fail closed: a session without a recorded owner is nobody's.
      if (owner === undefined || owner.caller.userId !== props.data.userId) return sessionNotFound();
      const restored =
        this.live ?? (await (this.restoring ??= this.restore(owner.sessionId, callerOf(owner.caller)).finally(() => (this.restoring = undefined))));
      if (!restored) return sessionNotFound();
      live = restored;
    }

    await this.touch();
    const response = await live.transport.handleRequest(request, parsedBody !== undefined ? { parsedBody } : undefined);
    if (minted !== null) await this.remember(parsedBody, response);
    if (request.method === 'DELETE' && response.ok) {
      this.live = undefined;
      this.owner = undefined;
      await this.ctx.storage.deleteAll();
      return response;
    }
    return isJSONRPCRequest(parsedBody) ? cancelOnDrop(response, live.transport, parsedBody.id) : response;
  }

  /** Who opened this session, from memory after the first read; undefined when no owner is recorded. */
  private async storedOwner(): Promise<z.infer<typeof storedOwner> | undefined> {
    if (this.owner) return this.owner;
    const stored = storedOwner.safeParse(await this.ctx.storage.get(OWNER_KEY));
    if (stored.success) this.owner = stored.data;
    return this.owner;
  }

  private async touch(): Promise<void> {
    this.lastUsed = Date.now();
    if (this.lastUsed - this.lastStored < LAST_USED_WRITE_MS) return;
    this.lastStored = this.lastUsed;
    await this.ctx.storage.put(LAST_USED_KEY, this.lastUsed);
  }

  /** Close the session once it has gone unused for SESSION_IDLE_MS (last use known to within LAST_USED_WRITE_MS). */
  override async alarm(): Promise<void> {
    const stored = z.number().safeParse(await this.ctx.storage.get(LAST_USED_KEY));
    const idleSince = Math.max(this.lastUsed, stored.success ? stored.data : 0);
    if (Date.now() - idleSince < SESSION_IDLE_MS) {
      await this.ctx.storage.setAlarm(idleSince + SESSION_IDLE_MS);
      return;
    }
    const live = this.live;
    this.live = undefined;
    this.owner = undefined;
    await live?.server.close().catch(() => undefined);
    await this.ctx.storage.deleteAll();
  }

  private async open(sessionId: string, caller: Caller): Promise<Live> {
    // The one standing read of a 2025 session: which optional tools to list (worker/mcp/server-factory.ts).
    const server = workerMcpServer(this.env, caller, 'legacy', await offerFor(this.env, caller));
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: () => sessionId, keepAliveMs: STREAM_KEEPALIVE_MS });
    await server.connect(transport);
    this.live = { server, transport };
    return this.live;
  }

  /** Keep the initialize params once the transport accepted them. */
  private async remember(parsedBody: unknown, response: Response): Promise<void> {
    if (!response.ok || !isJSONRPCRequest(parsedBody) || parsedBody.method !== 'initialize') return;
    const params = storedInitialize.safeParse(parsedBody.params);
    if (params.success) await this.ctx.storage.put(INIT_KEY, params.data);
  }

  /** Rebuild an evicted session by replaying its initialize; null when nothing is stored. */
  private async restore(sessionId: string, caller: Caller): Promise<Live | null> {
    const init = storedInitialize.safeParse(await this.ctx.storage.get(INIT_KEY));
    if (!init.success) return null;
    const live = await this.open(sessionId, caller);
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
    const initialize = await live.transport.handleRequest(
      new Request('http://session/mcp', {
        method: 'POST',
        headers,
        body: JSON.stringify({ jsonrpc: '2.0', id: 'restore', method: 'initialize', params: init.data }),
      }),
    );
    await initialize.text();
    const initialized = await live.transport.handleRequest(
      new Request('http://session/mcp', {
        method: 'POST',
        headers: { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': init.data.protocolVersion },
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      }),
    );
    await initialized.text();
    if (!initialize.ok || !initialized.ok) {
      logEvent('error', 'could not restore an MCP session', { status: initialize.status });
      this.live = undefined;
      return null;
    }
    return live;
  }
}

/**
 * The transport forgets a request whose response stream the client dropped, but the tool keeps
 * running. A dropped stream is a cancel: tell the server so, and the tool's signal aborts (the
 * relay stops the remote process).
 */
function cancelOnDrop(response: Response, transport: WebStandardStreamableHTTPServerTransport, requestId: string | number): Response {
  if (!response.body) return response;
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason): Promise<void> {
      transport.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'client disconnected' } });
      await reader.cancel(reason).catch(() => undefined);
    },
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}
