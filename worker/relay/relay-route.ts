/**
 * GET /relay: a relay's WebSocket. Who it is gets settled here, before the upgrade:
 * - a token issued to one relay (`name:secret`) is checked against that relay's stored SHA-256;
 * - the deployment-wide token is checked against RELAY_TOKEN_HASH, and the relay is known by the
 *   name it sends in X-Relay-Id.
 * Only then is the request handed to that relay's own hub Durable Object, with the settled name.
 */
import { equalBytes, sha256Hex } from '../auth/password-hash.ts';
import { RELAY_ID_HEADER, RELAY_NAME_PATTERN, RELAY_NAME_RULE, relayNameInToken } from '../../shared/relay-credential.ts';
import { logEvent } from '../log.ts';
import { teamDirectory } from '../team/team-directory.ts';
import { AUTHENTICATED_RELAY_HEADER, relayHub } from './hub-stub.ts';

function unauthorized(message: string): Response {
  return new Response(message, { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="relay"' } });
}

async function deploymentTokenMatches(env: Env, token: string): Promise<boolean | null> {
  const expected = env.RELAY_TOKEN_HASH?.trim().toLowerCase();
  if (!expected || !/^[0-9a-f]{64}$/.test(expected)) return null;
  const encoder = new TextEncoder();
  return equalBytes(encoder.encode(await sha256Hex(token)), encoder.encode(expected));
}

export async function handleRelayConnect(request: Request, env: Env): Promise<Response> {
  if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
    return new Response('The relay endpoint expects a WebSocket upgrade.', { status: 426, headers: { Upgrade: 'websocket' } });
  }
  const match = /^Bearer ([\x21-\x7e]{16,512})$/.exec(request.headers.get('Authorization') ?? '');
  if (!match?.[1]) return unauthorized('A relay token is required (Authorization: Bearer …).');
  const token = match[1];
  const claimed = request.headers.get(RELAY_ID_HEADER)?.trim() || null;
  const issuedTo = relayNameInToken(token);

  let name: string;
  let tokenHash: string | null = null;
  if (issuedTo) {
    if (claimed && claimed !== issuedTo) {
      return unauthorized(
        `This token was issued to relay "${issuedTo}", but the relay calls itself "${claimed}". Set RELAY_ID=${issuedTo} (or relay_id in its config), or leave it unset.`,
      );
    }
    name = issuedTo;
    tokenHash = await sha256Hex(token);
  } else {
    const matches = await deploymentTokenMatches(env, token);
    if (matches === null) {
      logEvent('error', 'a relay came with a token that names no relay, and RELAY_TOKEN_HASH is not set (or not 64 hex digits)');
      return unauthorized('The relay token was refused: issue this relay its own token (mcp-remote-exec admin relays add NAME).');
    }
    if (!matches) {
      logEvent('warn', 'refused a relay connection with a wrong token');
      return unauthorized('The relay token was refused.');
    }
    if (!claimed || !RELAY_NAME_PATTERN.test(claimed)) {
      return new Response(`A relay using the deployment token must name itself in ${RELAY_ID_HEADER} (${RELAY_NAME_RULE}); upgrade the relay.`, {
        status: 400,
      });
    }
    name = claimed;
  }

  const admission = await teamDirectory(env).admitRelay(name, tokenHash);
  if (!admission.ok) {
    logEvent('warn', 'refused a relay connection', { relay: name, reason: admission.message });
    return unauthorized(admission.message);
  }
  // The hub trusts this header only because nothing but this route can reach it.
  const forwarded = new Request(request);
  forwarded.headers.set(AUTHENTICATED_RELAY_HEADER, admission.name);
  return relayHub(env, admission.name).fetch(forwarded);
}
