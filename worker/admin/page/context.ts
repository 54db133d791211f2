/**
 * What every admin page handler gets, and the ways it answers. By the time a section sees an
 * AdminContext the router has checked the session, rechecked from the team directory that the
 * user is a deployment admin, and (for a POST) checked the CSRF token, so sections only do their job.
 */
import { csrfCookie, csrfFromCookie, newCsrfToken } from '../../auth/csrf.ts';
import { pageHeaders } from '../../auth/html.ts';
import { readUpTo } from '../../../shared/byte-streams.ts';

export interface AdminContext {
  request: Request;
  env: Env;
  url: URL;
  /** The signed-in deployment admin's user name, for the log lines of what they change. */
  admin: string;
  /** This browser's CSRF token, for the forms on the page being rendered. */
  csrf: string;
  /** The submitted form of a POST (already CSRF-checked); null for GET. */
  form: FormData | null;
}

/**
 * A section of the admin page: answers the requests for its own paths and returns null for the
 * rest, so the router can ask each section in turn.
 */
export type AdminSection = (context: AdminContext) => Promise<Response | null>;

/** The most a form may carry: a policy file is at most 256 KiB, plus the multipart framing. */
export const MAX_FORM_BYTES = 300 * 1024;
const MAX_FIELD_CHARS = MAX_FORM_BYTES;

/**
 * The browser's CSRF token: the one in its cookie when there is one, so several open admin tabs
 * keep working; a fresh one otherwise. The cookie is (re)set with every page.
 */
export function csrfTokenFor(request: Request): string {
  const existing = csrfFromCookie(request);
  return existing && /^[A-Za-z0-9_-]{32}$/.test(existing) ? existing : newCsrfToken();
}

/** An HTML page with the strict page headers (no framing, no script, no caching) and the CSRF cookie. */
export function htmlResponse(url: URL, csrf: string, status: number, html: string, extraCookies: string[] = []): Response {
  const headers = pageHeaders();
  headers.append('Set-Cookie', csrfCookie(url, csrf));
  for (const cookie of extraCookies) headers.append('Set-Cookie', cookie);
  return new Response(html, { status, headers });
}

/** Redirect after a successful POST, so reloading the result page does not repeat the change. */
export function seeOther(url: URL, location: string, extraCookies: string[] = []): Response {
  const headers = new Headers({ Location: new URL(location, url).toString(), 'Cache-Control': 'no-store' });
  for (const cookie of extraCookies) headers.append('Set-Cookie', cookie);
  return new Response(null, { status: 303, headers });
}

/** A downloaded file: attachment, never rendered by the browser, never cached. */
export function download(body: string, contentType: string, filename: string): Response {
  return new Response(body, {
    headers: {
      'Content-Type': contentType,
      'Content-Disposition': `attachment; filename="${filename}"`,
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
    },
  });
}

/** A text field of the form, or null when it is missing, a file, or implausibly long. */
export function field(form: FormData | null, name: string): string | null {
  const value = form?.get(name);
  return typeof value === 'string' && value.length <= MAX_FIELD_CHARS ? value : null;
}

/**
 * The request's form (urlencoded or multipart), read up to MAX_FORM_BYTES so a huge body cannot
 * tie up the isolate; null when it is too large or not a form.
 */
export async function readForm(request: Request): Promise<FormData | null> {
  const declared = Number(request.headers.get('Content-Length') ?? '0');
  if (declared > MAX_FORM_BYTES) return null;
  const contentType = request.headers.get('Content-Type') ?? '';
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(contentType)) return null;
  const body = request.body ? await readUpTo(request.body, MAX_FORM_BYTES) : new Uint8Array();
  if (body === null) return null;
  try {
    return await new Response(body, { headers: { 'Content-Type': contentType } }).formData();
  } catch {
    return null;
  }
}
