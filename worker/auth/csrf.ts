/**
 * Double-submit CSRF token for our forms: a random value in a host-only, SameSite=Strict cookie
 * and the same value in a hidden field. `__Host-` needs Secure, which plain-http loopback
 * development cannot have, so the prefix is used whenever the page is served over https.
 */
import { randomBytes, toBase64Url } from '../../shared/encoding.ts';
import { equalBytes } from './password-hash.ts';
import { readCookie } from './cookies.ts';

function cookieName(url: URL): string {
  return url.protocol === 'https:' ? '__Host-mre-csrf' : 'mre-csrf';
}

export function newCsrfToken(): string {
  return toBase64Url(randomBytes(24));
}

export function csrfCookie(url: URL, token: string): string {
  const secure = url.protocol === 'https:' ? '; Secure' : '';
  return `${cookieName(url)}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=1800${secure}`;
}

export function csrfFromCookie(request: Request): string | null {
  return readCookie(request, cookieName(new URL(request.url)));
}

export function csrfMatches(request: Request, submitted: string | null): boolean {
  const expected = csrfFromCookie(request);
  if (!expected || !submitted) return false;
  const encoder = new TextEncoder();
  return equalBytes(encoder.encode(expected), encoder.encode(submitted));
}
