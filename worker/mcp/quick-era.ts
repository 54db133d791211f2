/**
 * Which era an /mcp request belongs to, decided from plain property reads where the answer is
 * certain, so the common request is not validated against the SDK's JSON-RPC schemas twice (once
 * by isLegacyRequest here, again by the handler that serves it). Where it is not certain, the
 * answer is undefined and the SDK's own isLegacyRequest decides, as before.
 *
 * It follows the SDK's body-primary rules (classifyInboundRequest in @modelcontextprotocol/server):
 * - a POST whose MCP-Protocol-Version header names a modern revision is never classified legacy
 *   unless its body is a JSON-RPC response or a batch (both excluded here: a batch was refused at
 *   the entry, worker/mcp-batches.ts); it is modern or refused, and the modern handler refuses it
 *   exactly as it would after isLegacyRequest;
 * - a POST request or notification whose params carry no per-request envelope claim, with no
 *   modern header, is legacy.
 */
import { PROTOCOL_VERSION_META_KEY } from '@modelcontextprotocol/server';

/** The first revision of the stateless protocol; revisions are dates, so later ones sort after it. */
const FIRST_MODERN_REVISION = '2026-07-28';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function quickEra(request: Request, body: unknown): 'legacy' | 'modern' | undefined {
  if (request.method !== 'POST' || !isPlainObject(body) || body.jsonrpc !== '2.0' || typeof body.method !== 'string') return undefined;
  const header = request.headers.get('mcp-protocol-version')?.trim();
  if (header !== undefined && header >= FIRST_MODERN_REVISION) return 'modern';
  const params = body.params;
  if (params !== undefined && !isPlainObject(params)) return undefined;
  const meta = params?._meta;
  if (meta !== undefined && (!isPlainObject(meta) || PROTOCOL_VERSION_META_KEY in meta)) return undefined;
  return 'legacy';
}
