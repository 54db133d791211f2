/**
 * A loopback HTTP reverse proxy that adds `Authorization: Bearer <token>` to every request and
 * forwards it to one upstream origin (the local Worker). It lets a tool that has no way to sign in
 * (the MCP conformance suite) speak to the OAuth-protected `/mcp` with a token the harness obtained.
 *
 * It maps only its own name onto the upstream's, as a reverse proxy does: a Host that is this
 * proxy's loopback address becomes the upstream's Host, an Origin that is this proxy's origin
 * becomes the upstream's origin. Any other Host or Origin is passed on unchanged, so the upstream's
 * own DNS-rebinding checks still see a foreign name and refuse it. Bodies stream both ways
 * unbuffered (SSE responses arrive event by event), except request bodies when `protocolVersion`
 * is set: those are read whole so an initialize can be pinned to that revision.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders, type Server } from 'node:http';
import { listenOnLoopback } from './ports.ts';
import { JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { pinInitializeVersion } from './pin-protocol-version.ts';

export interface BearerProxy {
  port: number;
  /** The proxy's URL for the upstream's `/mcp`. */
  mcpUrl: string;
  /** Requests forwarded so far. */
  forwarded(): number;
  stop(): Promise<void>;
}

const LOOPBACK_NAMES: readonly string[] = ['127.0.0.1', 'localhost', '[::1]'];

/** Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own business, not forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function forwardedHeaders(headers: IncomingHttpHeaders, ownPort: number, upstream: URL, token: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === 'authorization') continue;
    out[name] = value;
  }
  const ownHosts = new Set(LOOPBACK_NAMES.map((name) => `${name}:${ownPort}`));
  if (typeof headers.host === 'string' && ownHosts.has(headers.host.toLowerCase())) out.host = upstream.host;
  if (typeof headers.origin === 'string' && [...ownHosts].some((host) => headers.origin === `http://${host}`)) out.origin = upstream.origin;
  out.authorization = `Bearer ${token}`;
  return out;
}

export interface BearerProxyOptions {
  /** Offer this protocol revision in every initialize instead of the client's (see pin-protocol-version.ts). */
  protocolVersion?: string;
}

const MAX_PINNED_BODY_BYTES = 4 * 1024 * 1024;

/** The body to send upstream: the same bytes, or a pinned initialize. */
function pinnedBody(raw: Buffer, version: string): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return raw;
  }
  const message = JSONRPCMessageSchema.safeParse(parsed);
  if (!message.success) return raw;
  const pinned = pinInitializeVersion(message.data, version);
  return pinned === message.data ? raw : Buffer.from(JSON.stringify(pinned));
}

function readAll(incoming: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_PINNED_BODY_BYTES) reject(new Error('body too large for the pinning proxy'));
      else chunks.push(chunk);
    });
    incoming.once('end', () => resolve(Buffer.concat(chunks)));
    incoming.once('error', reject);
  });
}

export async function startBearerProxy(upstreamUrl: string, token: () => string, options: BearerProxyOptions = {}): Promise<BearerProxy> {
  const upstream = new URL(upstreamUrl);
  let forwardedCount = 0;
  let ownPort = 0;
  const server: Server = createServer((incoming, outgoing) => {
    forwardedCount += 1;
    const headers = forwardedHeaders(incoming.headers, ownPort, upstream, token());
    const pinning = options.protocolVersion !== undefined && incoming.method === 'POST';
    // A rewritten body has a new length; it is sent whole, so with Content-Length.
    if (pinning) delete headers['content-length'];
    const upstreamRequest = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: incoming.method,
        path: incoming.url,
        headers,
      },
      (response) => {
        const headers: OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(response.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
        outgoing.writeHead(response.statusCode ?? 502, headers);
        // Flush SSE headers at once, not with the first body chunk.
        outgoing.flushHeaders();
        response.pipe(outgoing);
        response.once('error', () => outgoing.destroy());
      },
    );
    upstreamRequest.once('error', (error) => {
      if (outgoing.headersSent) outgoing.destroy();
      else outgoing.writeHead(502, { 'Content-Type': 'text/plain' }).end(`bearer proxy: upstream failed: ${error.message}\n`);
    });
    // A client that goes away takes its upstream request with it (an abandoned SSE stream, a cancel).
    outgoing.once('close', () => upstreamRequest.destroy());
    if (!pinning || options.protocolVersion === undefined) {
      incoming.pipe(upstreamRequest);
      return;
    }
    const version = options.protocolVersion;
    readAll(incoming).then(
      (raw) => {
        const body = pinnedBody(raw, version);
        upstreamRequest.setHeader('content-length', body.length);
        upstreamRequest.end(body);
      },
      () => {
        upstreamRequest.destroy();
        if (!outgoing.headersSent) outgoing.writeHead(413).end();
      },
    );
  });
  const listener = await listenOnLoopback(server);
  ownPort = listener.port;
  return {
    port: ownPort,
    mcpUrl: `http://127.0.0.1:${ownPort}${upstream.pathname}`,
    forwarded: () => forwardedCount,
    stop: () => listener.close(),
  };
}
