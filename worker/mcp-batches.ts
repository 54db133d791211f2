/**
 * JSON-RPC batches on /mcp are refused at the Worker's entry, before the OAuth provider and the MCP
 * transport. Protocol revisions 2025-06-18 and later removed batching, yet the SDK transports still
 * accept arrays (up to 100 messages), so one POST could fan out into many tool calls that each pass
 * the per-request checks. Refusing here leaves one request = one message for everything behind.
 */

/** JSON-RPC 2.0 "Invalid Request". */
export const INVALID_REQUEST = -32600;

const BYTE_ORDER_MARK = [0xef, 0xbb, 0xbf] as const;

/**
 * Whether a body's first JSON token is `[`. The UTF-8 byte order mark and JSON whitespace before it
 * are skipped, as `Request.json()` skips them (the fetch standard's UTF-8 decode drops a BOM), so a
 * BOM cannot slip an array past this check to a transport that parses with it.
 */
export function startsWithArray(bytes: Uint8Array): boolean {
  let at = 0;
  if (BYTE_ORDER_MARK.every((byte, index) => bytes[index] === byte)) at = BYTE_ORDER_MARK.length;
  while (at < bytes.length) {
    const byte = bytes[at];
    // JSON whitespace (RFC 8259 §2): space, tab, line feed, carriage return.
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) {
      at += 1;
      continue;
    }
    return byte === 0x5b;
  }
  return false;
}

/**
 * A JSON-RPC error (HTTP 400) when `request` is a POST to the MCP endpoint whose body is a batch;
 * undefined otherwise. `bytes` is the whole body as worker/body-limits.ts read it (it reads every
 * /mcp body whole, up to its limit, before this runs); null when there is none.
 */
export function batchRefusal(request: Request, bytes: Uint8Array | null): Response | undefined {
  if (request.method !== 'POST' || bytes === null) return undefined;
  const { pathname } = new URL(request.url);
  if (pathname !== '/mcp' && !pathname.startsWith('/mcp/')) return undefined;
  if (!startsWithArray(bytes)) return undefined;
  return Response.json(
    {
      jsonrpc: '2.0',
      error: {
        code: INVALID_REQUEST,
        message: 'Invalid Request: JSON-RPC batches are not supported (MCP 2025-06-18 and later have none); send one message per request.',
      },
      id: null,
    },
    { status: 400, headers: { 'Cache-Control': 'no-store' } },
  );
}
