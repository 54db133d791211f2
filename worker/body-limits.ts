/**
 * Request body limits, enforced once where a request enters the Worker (before the OAuth provider
 * and any route), so that no handler has to remember them and a route that moves (the MCP endpoint
 * to a new base) keeps its limit by path prefix.
 *
 * A limit holds against what is read, not what the header says: a Content-Length over the limit is
 * refused at once, and every body (chunked, or with a Content-Length that lies) is counted as it is
 * read. Small bodies (JSON-RPC, forms, admin JSON) are read whole up to the limit before the handler
 * sees them, so a body that breaks off or runs over can never make half a request run. Transfer-link
 * uploads stream: the handler gets a counting stream that errors past the limit, and the answer is
 * replaced by 413 whatever the handler made of the error (the relay writes through a temporary file
 * and renames only a complete upload, so a broken stream leaves nothing behind).
 */
import { readUpTo } from '../shared/byte-streams.ts';
import { MCP_MAX_BODY_BYTES } from '../shared/limits.ts';
import { formatCount } from '../shared/format-count.ts';

/**
 * /mcp: the MCP transport's own maximum. ssh_write_file's in-call limit (WORKER_WRITE_BYTES_PER_CALL)
 * is derived from it, so a write one byte over that limit still fits and gets a file_too_large tool
 * error instead of a transport error.
 */
export const MCP_BODY_LIMIT_BYTES = MCP_MAX_BODY_BYTES;
/** /admin/api: users, relays and policy documents as JSON. */
export const ADMIN_API_BODY_LIMIT_BYTES = 256 * 1024;
/** /register: RFC 7591 client metadata (worker/auth/client-registration.ts caps the fields themselves). */
export const REGISTER_BODY_LIMIT_BYTES = 64 * 1024;
/** /token: a form with a code or refresh token, a verifier, a redirect URI and a resource. */
export const TOKEN_BODY_LIMIT_BYTES = 16 * 1024;
/** /authorize POST and every other route: the sign-in and consent forms, which are small. */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;

type BodyRule = { limit: number; stream: false } | { limit: number; stream: true };

const TRANSFER_PREFIX = '/transfer/';

/**
 * The rule for a path. Transfer uploads stream up to MAX_FILE_SIZE (each link checks its own,
 * possibly lower, limit); everything else is read whole.
 */
export function bodyRuleFor(pathname: string, maxFileSize: number): BodyRule {
  if (pathname === '/mcp' || pathname.startsWith('/mcp/')) return { limit: MCP_BODY_LIMIT_BYTES, stream: false };
  if (pathname.startsWith(TRANSFER_PREFIX)) return { limit: maxFileSize, stream: true };
  if (pathname === '/admin/api' || pathname.startsWith('/admin/api/')) return { limit: ADMIN_API_BODY_LIMIT_BYTES, stream: false };
  if (pathname === '/register') return { limit: REGISTER_BODY_LIMIT_BYTES, stream: false };
  if (pathname === '/token') return { limit: TOKEN_BODY_LIMIT_BYTES, stream: false };
  return { limit: DEFAULT_BODY_LIMIT_BYTES, stream: false };
}

export function tooLarge(limit: number, pathname: string): Response {
  const advice = pathname === '/mcp' || pathname.startsWith('/mcp/') ? ' For larger files, use ssh_request_upload (a one-time upload link).' : '';
  return Response.json(
    {
      error: 'request_too_large',
      message: `The request body is over the ${formatCount(limit)} bytes this endpoint accepts; nothing was done.${advice}`,
    },
    { status: 413, headers: { 'Cache-Control': 'no-store', Connection: 'close' } },
  );
}

class BodyTooLarge extends Error {
  override name = 'BodyTooLarge';
}

/**
 * A stream that passes `body` on and errors once more than `limit` bytes went through. It takes
 * the body's reader only when first asked for bytes (highWaterMark 0), and `release` hands the body
 * back afterwards: a handler that answers without reading it (a refused or unknown link) leaves it
 * unread and unlocked, so the runtime can drain it (wrangler dev fails a request whose unread body
 * is still locked).
 */
function countingStream(body: ReadableStream<Uint8Array>, limit: number, onOver: () => void): { stream: ReadableStream<Uint8Array>; release: () => void } {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let reading = false;
  let seen = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller): Promise<void> {
        reader ??= body.getReader();
        reading = true;
        const { done, value } = await reader.read().finally(() => {
          reading = false;
        });
        if (done) {
          controller.close();
          return;
        }
        seen += value.byteLength;
        if (seen > limit) {
          onOver();
          controller.error(new BodyTooLarge(`the body passed ${limit} bytes`));
          await reader.cancel().catch(() => undefined);
          return;
        }
        controller.enqueue(value);
      },
      async cancel(reason: unknown): Promise<void> {
        await (reader ?? body).cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  const release = (): void => {
    if (reader && !reading) reader.releaseLock();
  };
  return { stream, release };
}

/**
 * Run `next` with the body of `request` held to its route's limit; 413 when it is over, whether
 * the header said so or the bytes did. A route whose body is read whole hands `next` those bytes
 * too (null when there is no body or it streams), so later checks need not read it again.
 */
export async function withBodyLimit(
  request: Request,
  maxFileSize: number,
  next: (request: Request, bytes: Uint8Array | null) => Promise<Response>,
): Promise<Response> {
  if (request.body === null) return next(request, null);
  const { pathname } = new URL(request.url);
  const rule = bodyRuleFor(pathname, maxFileSize);
  const declared = request.headers.get('Content-Length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared.trim()) > rule.limit) {
    // Left unread rather than cancelled: the runtime drains or drops it (wrangler dev's proxy turns
    // a cancelled request body into a 500, hiding the 413 from the client).
    return tooLarge(rule.limit, pathname);
  }
  if (!rule.stream) {
    const bytes = await readUpTo(request.body, rule.limit);
    if (bytes === null) return tooLarge(rule.limit, pathname);
    return next(new Request(request, { body: bytes }), bytes);
  }
  let over = false;
  const counted = countingStream(request.body, rule.limit, () => {
    over = true;
  });
  let response: Response;
  try {
    response = await next(new Request(request, { body: counted.stream }), null);
  } finally {
    counted.release();
  }
  // The handler saw its body break; whatever it answered, the reason is the size.
  if (over) {
    await response.body?.cancel().catch(() => undefined);
    return tooLarge(rule.limit, pathname);
  }
  return response;
}
