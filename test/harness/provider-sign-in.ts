/**
 * Playing the browser through the whole /authorize flow with a cookie jar: the sign-in page's
 * "Continue with …" button, the identity provider's own login (a function given by the test),
 * the callback, and our consent page. Reports every page it met, so tests can assert when the
 * consent page appeared and when it was skipped.
 */
import { CookieJar, locationOf } from './cookie-jar.ts';
import { hiddenField } from './sign-in-form.ts';

export interface FlowResult {
  status: number;
  location: string | null;
  body: string;
  /** The pages seen, in order: 'sign-in', 'consent', 'refused'. */
  pages: string[];
}

export interface ProviderFlowOptions {
  jar: CookieJar;
  provider: 'oidc' | 'github';
  /** Sign in at the provider from its authorization URL; returns the URL it sends the browser back to. */
  loginAtProvider(jar: CookieJar, url: string): Promise<string>;
  /** What to answer on our consent page. */
  decision?: 'approve' | 'deny';
}

function unescapeHtml(text: string): string {
  return text.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}

export function formAction(html: string, base: string): string {
  const match = /<form method="post" action="([^"]*)"/.exec(html);
  if (!match?.[1]) throw new Error(`page has no form:\n${html.slice(0, 1000)}`);
  return new URL(unescapeHtml(match[1]), base).toString();
}

export function isConsentPage(html: string): boolean {
  return html.includes('name="as"');
}

/** Post our consent page's form with `decision`. */
export async function answerConsent(jar: CookieJar, pageUrl: string, html: string, decision: 'approve' | 'deny'): Promise<Response> {
  const fields = {
    csrf: hiddenField(html, 'csrf') ?? '',
    handle: hiddenField(html, 'handle') ?? '',
    as: unescapeHtml(hiddenField(html, 'as') ?? ''),
    action: decision,
  };
  return jar.post(formAction(html, pageUrl), fields);
}

async function finish(response: Response, url: string, pages: string[], jar: CookieJar, decision: 'approve' | 'deny'): Promise<FlowResult> {
  const body = await response.text();
  if (response.status === 200 && isConsentPage(body)) {
    pages.push('consent');
    const answered = await answerConsent(jar, url, body, decision);
    return { status: answered.status, location: locationOf(answered, url), body: await answered.text(), pages };
  }
  if (response.status === 403) pages.push('refused');
  return { status: response.status, location: locationOf(response, url), body, pages };
}

export async function signInThroughProvider(authorizationUrl: string | URL, options: ProviderFlowOptions): Promise<FlowResult> {
  const { jar } = options;
  const decision = options.decision ?? 'approve';
  const pages: string[] = [];
  const start = authorizationUrl.toString();
  const first = await jar.fetch(start);
  if (first.status !== 200) return finish(first, start, pages, jar, decision);
  const html = await first.text();
  if (isConsentPage(html)) return finish(new Response(html, { status: 200 }), start, pages, jar, decision);
  pages.push('sign-in');
  const csrf = hiddenField(html, 'csrf');
  if (!csrf) throw new Error(`sign-in page has no CSRF field:\n${html.slice(0, 1000)}`);
  const started = await jar.post(formAction(html, start), { csrf, handle: hiddenField(html, 'handle') ?? '', action: options.provider });
  const toProvider = locationOf(started, start);
  if (started.status !== 302 || !toProvider) return { status: started.status, location: toProvider, body: await started.text(), pages };
  const callback = await options.loginAtProvider(jar, toProvider);
  const back = await jar.fetch(callback);
  return finish(back, callback, pages, jar, decision);
}
