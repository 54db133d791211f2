/**
 * A stand-in for the web servers that host MCP clients' Client ID Metadata Documents (CIMD). A CIMD
 * client_id must be an https URL (workers-oauth-provider refuses anything else, loopback included), so
 * no loopback server can play the client's site: the Workers pool routes the Worker's outbound fetch()
 * here instead (miniflare `outboundService`, vitest.config.ts), and this answers for CIMD_HOST.
 *
 * The first path segment picks the document's behaviour; tests put a fresh nonce after it so no two
 * tests share a URL (the provider caches documents by URL when Cache-Control allows; these say no-store,
 * and the nonce keeps a test honest even if that changed). Runtime-neutral: the pool tests import the
 * URL helpers, the Node side (vitest.config.ts) the handler.
 */
export const CIMD_HOST = 'app.cimd-client.example';

/** The callback every stand-in document lists (the pool tests' loopback redirect URI). */
export const CIMD_REDIRECT_URI = 'http://127.0.0.1:43110/callback';

/** The provider refuses documents over 5 KiB (CIMD_MAX_SIZE_BYTES in workers-oauth-provider 1.2.3). */
const OVERSIZE_BYTES = 6 * 1024;

/**
 * How long the silent site holds a request before giving up. Longer than the provider's 10 s fetch
 * timeout, which aborts first; the timer is unref'd so it never holds the test run open.
 */
const SILENT_HOLD_MS = 30_000;

export type CimdBehaviour =
  /** a valid document whose client_id is its own URL */
  | 'good'
  /** a valid-looking document naming another client_id */
  | 'wrong-id'
  /** a valid document padded past the size limit, with its Content-Length */
  | 'oversize'
  /** the same, streamed with no Content-Length (the limit must count bytes read) */
  | 'oversize-streamed'
  /** never answers in time */
  | 'silent';

export function cimdClientId(behaviour: CimdBehaviour, nonce: string = crypto.randomUUID()): string {
  return `https://${CIMD_HOST}/${behaviour}/${nonce}/client.json`;
}

function document(clientId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_id: clientId,
    client_name: 'Stand-in CIMD client',
    client_uri: `https://${CIMD_HOST}/`,
    redirect_uris: [CIMD_REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  };
}

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), { headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } });
}

function silent(): Promise<Response> {
  return new Promise((resolve) => {
    const timer: unknown = setTimeout(() => resolve(new Response('too late', { status: 504 })), SILENT_HOLD_MS);
    // Node's timers have unref; workerd's do not (and this never runs there).
    if (typeof timer === 'object' && timer !== null && 'unref' in timer && typeof timer.unref === 'function') timer.unref();
  });
}

/**
 * The outbound fetch handler: answers CIMD_HOST by behaviour, refuses everything else with 502 (the
 * pool's Worker has no other business on the network; a stray fetch shows up as a clear failure).
 */
export async function cimdStandIn(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.hostname !== CIMD_HOST || url.protocol !== 'https:') return new Response(`no outbound network in the Workers pool: ${url.origin}`, { status: 502 });
  const clientId = `${url.origin}${url.pathname}`;
  const behaviour = url.pathname.split('/')[1];
  switch (behaviour) {
    case 'good':
      return json(document(clientId));
    case 'wrong-id':
      return json(document(`https://${CIMD_HOST}/good/someone-else/client.json`));
    case 'oversize':
      return json(document(clientId, { description: 'x'.repeat(OVERSIZE_BYTES) }));
    case 'oversize-streamed': {
      const bytes = new TextEncoder().encode(JSON.stringify(document(clientId, { description: 'x'.repeat(OVERSIZE_BYTES) })));
      const body = new ReadableStream<Uint8Array>({
        start(controller): void {
          for (let offset = 0; offset < bytes.length; offset += 1024) controller.enqueue(bytes.slice(offset, offset + 1024));
          controller.close();
        },
      });
      return new Response(body, { headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } });
    }
    case 'silent':
      return silent();
    default:
      return new Response('not found', { status: 404 });
  }
}
