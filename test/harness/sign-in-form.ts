/**
 * Playing the browser on our sign-in page: fetch the form, post it back with its CSRF field, the
 * consent handle and their cookies, report where it redirects. Runtime-neutral (takes the fetch to use), so both the
 * Workers-pool tests (SELF.fetch) and the end-to-end harness (global fetch) use it.
 */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

export interface Credentials {
  username: string;
  password: string;
}

export interface SignInResult {
  status: number;
  location: string | null;
  body: string;
}

export function hiddenField(html: string, name: string): string | null {
  const match = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`).exec(html);
  return match?.[1] ?? null;
}

export function cookiesFrom(response: Response): string {
  return response.headers
    .getSetCookie()
    .map((cookie) => cookie.split(';')[0])
    .join('; ');
}

export async function signInThroughForm(
  fetcher: FetchLike,
  authorizationUrl: string | URL,
  credentials: Credentials,
  action: 'approve' | 'deny' = 'approve',
): Promise<SignInResult> {
  const formPage = await fetcher(authorizationUrl, { redirect: 'manual' });
  const html = await formPage.text();
  if (formPage.status !== 200) return { status: formPage.status, location: formPage.headers.get('location'), body: html };
  const csrf = hiddenField(html, 'csrf');
  if (!csrf) throw new Error(`sign-in page has no CSRF field:\n${html.slice(0, 2000)}`);
  // The consent handle binds the form to this browser (the OAuth library's __Host- cookie).
  const handle = hiddenField(html, 'handle') ?? '';
  const posted = await fetcher(authorizationUrl, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookiesFrom(formPage) },
    body: new URLSearchParams({ csrf, handle, username: credentials.username, password: credentials.password, action }),
  });
  return { status: posted.status, location: posted.headers.get('location'), body: await posted.text() };
}
