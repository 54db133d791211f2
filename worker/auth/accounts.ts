/**
 * Who may sign in: the deployment's own admin account (ADMIN_USERNAME with the
 * ADMIN_PASSWORD_HASH secret) and the built-in users admins create (worker/team). Failures are
 * rate-limited per account and per address. Later identity sources (OIDC, GitHub) return the
 * same Identity.
 */
import { parsePasswordHash, verifyPassword, type ParsedPasswordHash } from './password-hash.ts';
import { readSettings } from '../settings.ts';
import { teamDirectory } from '../team/team-directory.ts';

export interface Identity {
  /** Stable id stored with grants; never contains ':' (the OAuth provider forbids it). */
  userId: string;
  username: string;
}

export type SignInResult =
  | { ok: true; identity: Identity }
  | { ok: false; reason: 'invalid_credentials' | 'not_configured' }
  | { ok: false; reason: 'rate_limited'; retryAfterSeconds: number };

/** A hash nothing matches (all zeros), so an unknown user name or a missing hash costs the same PBKDF2 work. */
const DUMMY_HASH: ParsedPasswordHash = { iterations: 100_000, salt: new Uint8Array(16), hash: new Uint8Array(32) };

export function builtInUserId(username: string): string {
  return `builtin/${encodeURIComponent(username.toLowerCase())}`;
}

/** Host names of a PUBLIC_URL that means the local mode (settings.ts allows plain http only on these). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** The one rate-limit bucket of the local mode, where every peer is this machine. */
export const LOCAL_ADDRESS = 'loopback';

/**
 * The address a request came from, for sign-in rate limits: only what the platform vouches for,
 * never a header a client chose (X-Forwarded-For and X-Real-IP are never read).
 *
 * On Cloudflare the edge sets CF-Connecting-IP to the connecting address and replaces any value a
 * client sent. Under `wrangler dev` (the local mode, PUBLIC_URL on loopback) miniflare copies the
 * socket's peer into CF-Connecting-IP only when the request has none, so a client-sent header
 * passes through untouched and would pick its own bucket. The local Worker listens on 127.0.0.1
 * only (scripts/start-local.ts), so its peer is always this machine: one bucket for all.
 */
export function clientAddress(request: Request, env: Env): string {
  if (LOOPBACK_HOSTS.has(new URL(readSettings(env).publicUrl).hostname)) return LOCAL_ADDRESS;
  return request.headers.get('CF-Connecting-IP') ?? 'unknown';
}

export async function signIn(env: Env, username: string, password: string, address: string): Promise<SignInResult> {
  const directory = teamDirectory(env);
  const gate = await directory.beginSignIn(username, address);
  if (gate.locked) return { ok: false, reason: 'rate_limited', retryAfterSeconds: gate.retryAfterSeconds };
  const stored = gate.passwordHash ? parsePasswordHash(gate.passwordHash) : null;
  // Always do the PBKDF2 work, so timing says nothing about which user names exist.
  const matches = await verifyPassword(password, stored ?? DUMMY_HASH);
  const succeeded = matches && stored !== null && !gate.disabled;
  await directory.finishSignIn(username, address, succeeded);
  if (!succeeded) {
    if (gate.bootstrap && !stored) return { ok: false, reason: 'not_configured' };
    return { ok: false, reason: 'invalid_credentials' };
  }
  return { ok: true, identity: { userId: builtInUserId(gate.username), username: gate.username } };
}
