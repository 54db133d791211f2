/**
 * Double-submit CSRF token for our forms: a random value in a host-only, SameSite=Strict cookie
 * and the same value in a hidden field. `__Host-` needs Secure, which plain-http loopback
 * development cannot have, so the prefix is used whenever the page is served over https.
 */
import { equalBytes } from '../../shared/password-hash.ts';

function cookieName(url: URL): string {
  return url.protocol === 'https:' ? '__Host-mre-csrf' : 'mre-csrf';
}

export function newCsrfToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export function csrfCookie(url: URL, token: string): string {
  const secure = url.protocol === 'https:' ? '; Secure' : '';
  return `${cookieName(url)}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=1800${secure}`;
}

export function csrfFromCookie(request: Request): string | null {
  const name = cookieName(new URL(request.url));
  for (const part of (request.headers.get('Cookie') ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return null;
}

export function csrfMatches(request: Request, submitted: string | null): boolean {
  const expected = csrfFromCookie(request);
  if (!expected || !submitted) return false;
  const encoder = new TextEncoder();
  return equalBytes(encoder.encode(expected), encoder.encode(submitted));
}
