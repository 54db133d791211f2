/**
 * The browser's sign-in session: who signed in on this browser, in a cookie signed with the
 * deployment's key (HMAC-SHA256). The sign-in page, the consent page and the admin page share it,
 * so a person signs in once. A session is only as good as the account behind it: every read asks
 * the team directory whether the account is still active, is still the same identity (an external
 * account's user id), and has not had its sessions ended since (disable, password reset), so
 * those end it at once.
 *
 * `__Host-` needs Secure, which plain-http loopback development cannot have, so the prefix is used
 * whenever the page is served over https (as for the CSRF cookie).
 */
import { fromBase64Url, toBase64Url } from '../../shared/encoding.ts';
import { teamDirectory } from '../team/team-directory.ts';
import { readCookie } from './cookies.ts';

/** How long a browser stays signed in. */
export const SESSION_TTL_SECONDS = 12 * 60 * 60;

export type IdentitySource = 'builtin' | 'oidc' | 'github';

export interface BrowserSession {
  userId: string;
  username: string;
  source: IdentitySource;
  /** Seconds since the epoch, with milliseconds (compared with the account's sessionsValidAfter). */
  issuedAt: number;
  expiresAt: number;
}

function cookieName(url: URL): string {
  return url.protocol === 'https:' ? '__Host-mre-session' : 'mre-session';
}

// One key per isolate: it never changes once made.
let keyPromise: Promise<CryptoKey> | undefined;

async function signingKey(env: Env): Promise<CryptoKey> {
  keyPromise ??= (async () => {
    const secret = await teamDirectory(env).cookieSecret();
    return crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  })().catch((error: unknown) => {
    keyPromise = undefined;
    throw error;
  });
  return keyPromise;
}

/** The deployment's cookie secret as text (for the OAuth library's remembered-consent cookie). */
export async function cookieSecret(env: Env): Promise<string> {
  return teamDirectory(env).cookieSecret();
}

function isSession(value: unknown): value is BrowserSession {
  if (typeof value !== 'object' || value === null) return false;
  const session = value as Record<string, unknown>;
  return (
    typeof session.userId === 'string' &&
    typeof session.username === 'string' &&
    (session.source === 'builtin' || session.source === 'oidc' || session.source === 'github') &&
    typeof session.issuedAt === 'number' &&
    typeof session.expiresAt === 'number'
  );
}

/** The Set-Cookie value that signs `identity` in on this browser. */
export async function sessionCookie(request: Request, env: Env, identity: { userId: string; username: string }, source: IdentitySource): Promise<string> {
  const now = Date.now() / 1000;
  const session: BrowserSession = {
    userId: identity.userId,
    username: identity.username,
    source,
    issuedAt: now,
    expiresAt: Math.floor(now) + SESSION_TTL_SECONDS,
  };
  const payload = new TextEncoder().encode(JSON.stringify(session));
  const signature = new Uint8Array(await crypto.subtle.sign('HMAC', await signingKey(env), payload));
  const url = new URL(request.url);
  const secure = url.protocol === 'https:' ? '; Secure' : '';
  return `${cookieName(url)}=${toBase64Url(payload)}.${toBase64Url(signature)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${SESSION_TTL_SECONDS}${secure}`;
}

/** The Set-Cookie value that signs this browser out. */
export function clearSessionCookie(request: Request): string {
  const url = new URL(request.url);
  const secure = url.protocol === 'https:' ? '; Secure' : '';
  return `${cookieName(url)}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure}`;
}

/** The signed-in session on this request, or null when there is none, it is forged or expired, or the account is no longer active. */
export async function readSession(request: Request, env: Env): Promise<BrowserSession | null> {
  const value = readCookie(request, cookieName(new URL(request.url)));
  if (!value || value.length > 4096) return null;
  const [payloadText, signatureText, extra] = value.split('.');
  if (payloadText === undefined || signatureText === undefined || extra !== undefined) return null;
  const payload = fromBase64Url(payloadText);
  const signature = fromBase64Url(signatureText);
  if (!payload || !signature) return null;
  if (!(await crypto.subtle.verify('HMAC', await signingKey(env), signature, payload))) return null;
  let session: unknown;
  try {
    session = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return null;
  }
  if (!isSession(session) || session.expiresAt <= Date.now() / 1000) return null;
  const access = await teamDirectory(env).access(session.username);
  if (!access.active) return null;
  // Built-in accounts have no stored user id; theirs is derived from the name (builtInUserId).
  if (access.userId !== undefined && access.userId !== session.userId) return null;
  if (access.userId === undefined && session.source !== 'builtin') return null;
  if (access.sessionsValidAfter !== undefined && session.issuedAt * 1000 < access.sessionsValidAfter) return null;
  return session;
}
