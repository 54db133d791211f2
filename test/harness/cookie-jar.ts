/**
 * A browser's cookie handling, enough for sign-in flows over loopback: cookies are kept per host
 * (not per port, as browsers do), sent back on every request to that host, replaced by name and
 * dropped on Max-Age=0. Redirects are never followed automatically, so a test sees each hop.
 */
export class CookieJar {
  private readonly byHost = new Map<string, Map<string, string>>();

  store(url: string | URL, response: Response): void {
    const host = new URL(url).hostname;
    const cookies = this.byHost.get(host) ?? new Map<string, string>();
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const equals = pair.indexOf('=');
      if (equals <= 0) continue;
      const name = pair.slice(0, equals).trim();
      const expired = attributes.some((attribute) => /^\s*max-age\s*=\s*0\s*$/i.test(attribute));
      if (expired) cookies.delete(name);
      else cookies.set(name, pair.slice(equals + 1).trim());
    }
    this.byHost.set(host, cookies);
  }

  header(url: string | URL): string {
    const cookies = this.byHost.get(new URL(url).hostname);
    return cookies ? [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') : '';
  }

  names(url: string | URL): string[] {
    return [...(this.byHost.get(new URL(url).hostname)?.keys() ?? [])];
  }

  /** Forget one cookie (to test what happens without it). */
  remove(url: string | URL, name: string): void {
    this.byHost.get(new URL(url).hostname)?.delete(name);
  }

  /** fetch with this jar, never following redirects. */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.header(url);
    if (cookie) headers.set('Cookie', cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(url, response);
    return response;
  }

  /** POST a form with this jar. */
  async post(url: string | URL, fields: Record<string, string>): Promise<Response> {
    return this.fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
  }
}

/** Where a redirect goes, resolved against the URL that answered it. */
export function locationOf(response: Response, from: string | URL): string | null {
  const location = response.headers.get('location');
  return location ? new URL(location, from).toString() : null;
}
