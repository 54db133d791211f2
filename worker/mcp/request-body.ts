/**
 * The JSON body of an /mcp request, parsed once. The Worker's entry has already read every /mcp
 * body whole (worker/body-limits.ts); it keeps those bytes here against the request it hands on,
 * so the MCP route parses them instead of cloning the request and reading the body a second time.
 */
const heldBodies = new WeakMap<Request, Uint8Array>();
const utf8 = new TextDecoder();

/** Remember the bytes of `request`'s body (the very bytes it carries). */
export function holdBody(request: Request, bytes: Uint8Array): void {
  heldBodies.set(request, bytes);
}

/**
 * The body as JSON, or undefined (not a POST, or not JSON). The request stays readable. Decoding
 * as Request.json() does (UTF-8, a byte order mark dropped), so both ways read the same message.
 */
export async function bodyJson(request: Request): Promise<unknown> {
  if (request.method !== 'POST') return undefined;
  const held = heldBodies.get(request);
  // Empty also when the runtime took the buffer over for the body stream: then read the body itself.
  if (held === undefined || held.byteLength === 0) {
    return request
      .clone()
      .json()
      .catch(() => undefined);
  }
  try {
    return JSON.parse(utf8.decode(held));
  } catch {
    return undefined;
  }
}

/** The method a JSON-RPC body names, if it names one. */
export function methodOf(body: unknown): string | undefined {
  return typeof body === 'object' && body !== null && 'method' in body && typeof body.method === 'string' ? body.method : undefined;
}

/** Whether a JSON-RPC message carries an id (a request or an answer; a notification has none). */
export function hasId(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'id' in body;
}

/** The tool a tools/call names, if it names one. */
export function calledTool(body: unknown): string | undefined {
  if (methodOf(body) !== 'tools/call' || typeof body !== 'object' || body === null || !('params' in body)) return undefined;
  const params = body.params;
  return typeof params === 'object' && params !== null && 'name' in params && typeof params.name === 'string' ? params.name : undefined;
}
