/**
 * A minimal browser for the admin page in the Workers pool: keeps cookies, follows nothing by
 * itself, and posts forms with the CSRF token of the last page it saw (or a given one). It sends
 * its own CF-Connecting-IP, which the Worker ignores here: PUBLIC_URL is on loopback, the local
 * mode, where every client shares one rate-limit bucket (worker/auth/accounts.ts).
 */
import { SELF } from 'cloudflare:test';
import { BASE_URL } from './relay-socket.ts';

export interface PageReply {
  status: number;
  location: string | null;
  headers: Headers;
  html: string;
}

export function csrfOf(html: string): string | null {
  return /<input type="hidden" name="csrf" value="([^"]*)"/.exec(html)?.[1] ?? null;
}

export class PageClient {
  readonly cookies = new Map<string, string>();
  readonly address: string;
  lastHtml = '';

  constructor(address = `198.51.100.${Math.floor(Math.random() * 250) + 1}`) {
    this.address = address;
  }

  private remember(response: Response): void {
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = cookie.split(';');
      const equals = pair.indexOf('=');
      const name = pair.slice(0, equals).trim();
      const value = pair.slice(equals + 1).trim();
      if (attributes.some((attribute) => /^\s*max-age=0\s*$/i.test(attribute))) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async fetch(path: string, init: RequestInit = {}): Promise<PageReply> {
    const headers = new Headers(init.headers);
    headers.set('CF-Connecting-IP', this.address);
    if (this.cookies.size > 0) headers.set('Cookie', [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; '));
    const response = await SELF.fetch(`${BASE_URL}${path}`, { ...init, headers, redirect: 'manual' });
    this.remember(response);
    const html = await response.text();
    if ((response.headers.get('Content-Type') ?? '').startsWith('text/html')) this.lastHtml = html;
    return { status: response.status, location: response.headers.get('Location'), headers: response.headers, html };
  }

  get(path: string): Promise<PageReply> {
    return this.fetch(path);
  }

  /** POST a form; `csrf` defaults to the token on the last page seen, `null` leaves it out. */
  post(path: string, fields: Record<string, string> | FormData, csrf: string | null | undefined = undefined): Promise<PageReply> {
    const token = csrf === undefined ? csrfOf(this.lastHtml) : csrf;
    if (fields instanceof FormData) {
      if (token !== null) fields.set('csrf', token);
      return this.fetch(path, { method: 'POST', body: fields });
    }
    const body = new URLSearchParams(fields);
    if (token !== null) body.set('csrf', token);
    return this.fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
  }

  /** Sign in through the admin page's form; returns the answer to the POST. */
  async signIn(username: string, password: string): Promise<PageReply> {
    await this.get('/admin');
    return this.post('/admin/sign-in', { username, password, next: '/admin' });
  }
}
