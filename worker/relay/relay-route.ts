/**
 * GET /relay: the relay's WebSocket. The bearer token is checked here, before the upgrade, by
 * comparing its SHA-256 with RELAY_TOKEN_HASH in constant time; only then is the request handed
 * to the hub Durable Object.
 */
import { equalBytes, sha256Hex } from '../../shared/password-hash.ts';
import { logEvent } from '../log.ts';
import { relayHub } from './hub-stub.ts';

function unauthorized(message: string): Response {
  return new Response(message, { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="relay"' } });
}

export async function handleRelayConnect(request: Request, env: Env): Promise<Response> {
  if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
    return new Response('The relay endpoint expects a WebSocket upgrade.', { status: 426, headers: { Upgrade: 'websocket' } });
  }
  const expected = env.RELAY_TOKEN_HASH?.trim().toLowerCase();
  if (!expected || !/^[0-9a-f]{64}$/.test(expected)) {
    logEvent('error', 'a relay tried to connect but RELAY_TOKEN_HASH is not set (or not 64 hex digits)');
    return new Response('Relay connections are not configured on this server (RELAY_TOKEN_HASH).', { status: 503 });
  }
  const header = request.headers.get('Authorization') ?? '';
  const match = /^Bearer ([\x21-\x7e]{16,512})$/.exec(header);
  if (!match?.[1]) return unauthorized('A relay token is required (Authorization: Bearer …).');
  const encoder = new TextEncoder();
  if (!equalBytes(encoder.encode(await sha256Hex(match[1])), encoder.encode(expected))) {
    logEvent('warn', 'refused a relay connection with a wrong token');
    return unauthorized('The relay token was refused.');
  }
  return relayHub(env).fetch(request);
}
