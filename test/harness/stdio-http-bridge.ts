/**
 * Serves the built stdio command over Streamable HTTP on loopback, so a tool that speaks only HTTP
 * (the MCP conformance suite) can test the stdio server. The simplest honest bridge: one child
 * process per MCP session, JSON-RPC forwarded both ways unchanged. The HTTP side is the MCP SDK's
 * own server transport (SDK v1, test harness only), so what a run checks is the stdio server's MCP
 * behaviour; the bridge's HTTP layer (sessions, SSE, Host checks) is the SDK's, not the product's.
 *
 * Routing back to HTTP: answers go to the request they answer (by id), progress notifications to
 * the request that carried their progress token; everything else the server sends on its own
 * (log messages, list changes, requests to the client) goes to the session's GET stream, as stdio
 * gives no other way to know which request it belongs to.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOnLoopback } from './ports.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, isJSONRPCNotification, isJSONRPCRequest, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { pinInitializeVersion } from './pin-protocol-version.ts';
import { CLI } from './stdio.ts';

export interface StdioHttpBridge {
  mcpUrl: string;
  /** Stdio children started so far (one per session). */
  sessionsStarted(): number;
  /** The children's stderr, for failure messages. */
  stderr(): string;
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const MAX_SESSIONS = 64;

interface Session {
  http: StreamableHTTPServerTransport;
  child: StdioClientTransport;
  /** progressToken → the id of the request that carried it. */
  progressOwners: Map<string | number, RequestId>;
}

function readBody(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        request.destroy();
        reject(new Error('body too large'));
        return;
      }
      chunks.push(chunk);
    });
    request.once('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        resolve(undefined);
      }
    });
    request.once('error', reject);
  });
}

function jsonRpcError(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

function progressTokenOf(message: JSONRPCMessage): string | number | undefined {
  if (!isJSONRPCRequest(message)) return undefined;
  const token: unknown = message.params?._meta?.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}

export interface StdioHttpBridgeOptions {
  /** Arguments for the command. */
  args?: string[];
  /** Offer this protocol revision in every initialize instead of the client's (see pin-protocol-version.ts). */
  protocolVersion?: string;
}

export async function startStdioHttpBridge(env: Record<string, string>, options: StdioHttpBridgeOptions = {}): Promise<StdioHttpBridge> {
  const args = options.args ?? [];
  /** Initialized sessions by id; `live` also holds those still initializing. */
  const sessions = new Map<string, Session>();
  const live = new Set<Session>();
  let started = 0;
  let stderr = '';
  let hosts: string[] = [];

  async function openSession(): Promise<Session> {
    const child = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, ...args],
      env,
      cwd: mkdtempSync(join(tmpdir(), 'mre-bridge-cwd-')),
      stderr: 'pipe',
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-65536);
    });
    const http = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, session);
      },
      // The bridge is a loopback server: it answers only under its own names.
      enableDnsRebindingProtection: true,
      allowedHosts: hosts,
      allowedOrigins: hosts.map((host) => `http://${host}`),
    });
    const session: Session = { http, child, progressOwners: new Map() };
    http.onmessage = (message) => {
      const token = progressTokenOf(message);
      if (token !== undefined && isJSONRPCRequest(message)) session.progressOwners.set(token, message.id);
      void child.send(pinInitializeVersion(message, options.protocolVersion)).catch(() => undefined);
    };
    child.onmessage = (message) => {
      let relatedRequestId: RequestId | undefined;
      if (isJSONRPCNotification(message) && message.method === 'notifications/progress') {
        const token: unknown = message.params?.progressToken;
        if (typeof token === 'string' || typeof token === 'number') relatedRequestId = session.progressOwners.get(token);
      }
      if ('id' in message && !('method' in message)) {
        // An answer ends its request: forget the progress tokens it carried.
        for (const [token, owner] of session.progressOwners) if (owner === message.id) session.progressOwners.delete(token);
      }
      void http.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId }).catch(() => undefined);
    };
    let closed = false;
    const closeBoth = (): void => {
      if (closed) return;
      closed = true;
      live.delete(session);
      if (http.sessionId) sessions.delete(http.sessionId);
      void http.close().catch(() => undefined);
      void child.close().catch(() => undefined);
    };
    http.onclose = closeBoth;
    child.onclose = closeBoth;
    live.add(session);
    await child.start();
    started += 1;
    return session;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const sessionId = request.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId);
      if (!session) return jsonRpcError(response, 404, 'Session not found');
      const body = request.method === 'POST' ? await readBody(request) : undefined;
      return session.http.handleRequest(request, response, body);
    }
    if (request.method !== 'POST') return jsonRpcError(response, 400, 'Bad Request: Mcp-Session-Id header is required');
    const body = await readBody(request);
    if (!isInitializeRequest(body)) return jsonRpcError(response, 400, 'Bad Request: Mcp-Session-Id header is required');
    if (live.size >= MAX_SESSIONS) return jsonRpcError(response, 503, 'Too many sessions');
    const session = await openSession();
    await session.http.handleRequest(request, response, body);
    // An initialize the transport refused (e.g. a foreign Host) leaves no session: stop its child.
    if (!session.http.sessionId) await session.child.close();
  }

  const server: Server = createServer((request, response) => {
    if (new URL(request.url ?? '/', 'http://127.0.0.1').pathname !== '/mcp') {
      response.writeHead(404).end();
      return;
    }
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) jsonRpcError(response, 500, `bridge: ${error instanceof Error ? error.message : String(error)}`);
      else response.destroy();
    });
  });
  const listener = await listenOnLoopback(server);
  const port = listener.port;
  hosts = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
  return {
    mcpUrl: `http://127.0.0.1:${port}/mcp`,
    sessionsStarted: () => started,
    stderr: () => stderr,
    async stop() {
      await Promise.all(
        [...live].map(async (session) => Promise.all([session.http.close().catch(() => undefined), session.child.close().catch(() => undefined)])),
      );
      await listener.close();
    },
  };
}
