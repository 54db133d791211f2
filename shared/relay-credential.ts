/**
 * Relay credentials. An admin issues each relay its own token, `<relay name>:<secret>`: the name
 * tells the Worker whose credential to check before the WebSocket upgrade (and lets the relay
 * call itself by that name without more configuration); the Worker stores only the token's
 * SHA-256. The deployment-wide RELAY_TOKEN_HASH token (no name inside) still admits a relay, under
 * the name it sends in X-Relay-Id, for single-relay set-ups and the local mode.
 */
import { randomBytes, toBase64Url } from './encoding.ts';

export const RELAY_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const RELAY_NAME_RULE = 'a relay name is 1-64 letters, digits, ".", "_" or "-"';
/** The header a relay names itself with when its token does not carry its name. */
export const RELAY_ID_HEADER = 'X-Relay-Id';

const SECRET_PATTERN = /^[A-Za-z0-9_-]{32,256}$/;

/** The relay name an issued token carries, or null for a token without one. */
export function relayNameInToken(token: string): string | null {
  const colon = token.lastIndexOf(':');
  if (colon <= 0) return null;
  const name = token.slice(0, colon);
  const secret = token.slice(colon + 1);
  return RELAY_NAME_PATTERN.test(name) && SECRET_PATTERN.test(secret) ? name : null;
}

/** A new token for relay `name`: 256 random bits after the name. */
export function newRelayToken(name: string): string {
  return `${name}:${toBase64Url(randomBytes(32))}`;
}
