/**
 * Signing in to and out of the admin page, and the page for someone signed in who is not an
 * admin. Sign-in goes through the same rate-limited check as every other sign-in and leaves the
 * shared browser session cookie (worker/auth/browser-session.ts), so the consent page knows the
 * person too. Both forms carry the CSRF token: a sign-in forced from another site would otherwise
 * sign the browser in as the attacker.
 */
import { clientAddress, signIn } from '../../auth/accounts.ts';
import { clearSessionCookie, sessionCookie } from '../../auth/browser-session.ts';
import { csrfMatches } from '../../auth/csrf.ts';
import { escapeHtml } from '../../auth/html.ts';
import { OWN_APPROVALS_PATH } from '../../approvals/own-approvals-path.ts';
import { logEvent } from '../../log.ts';
import { field, htmlResponse, seeOther } from './context.ts';
import { adminLayout, csrfField, errorBox } from './layout.ts';

const MAX_CREDENTIAL_CHARS = 1024;

/**
 * Where to go after signing in: an admin page path of ours, never another origin, never the
 * sign-in/out endpoints. No dots in the path, so "/admin/../x" cannot climb out.
 */
function safeNext(next: string | null): string {
  // The one page outside /admin that signs people in here: a requester's own approvals.
  if (next === OWN_APPROVALS_PATH) return next;
  if (!next || !/^\/admin(\/[A-Za-z0-9_\/-]*)?(\?[A-Za-z0-9._~%&=+:-]*)?$/.test(next) || next.includes('//')) return '/admin';
  return /^\/admin\/(sign-in|sign-out|api\/)/.test(next) ? '/admin' : next;
}

export function signInPage(url: URL, csrf: string, status: number, state: { next?: string; username?: string; error?: string } = {}): Response {
  const own = safeNext(state.next ?? null) === OWN_APPROVALS_PATH;
  const body = `<section class="card"><h1>${own ? 'Sign in to confirm your commands' : 'Sign in to the admin page'}</h1>
<p class="muted">${own ? 'For any member of this mcp-remote-exec deployment: confirm or reject the commands that wait for your own confirmation.' : 'For the admins of this mcp-remote-exec deployment: manage users, the policy and the audit log.'}</p>
${errorBox(state.error ?? null)}
<form method="post" action="/admin/sign-in">
${csrfField(csrf)}<input type="hidden" name="next" value="${escapeHtml(safeNext(state.next ?? null))}">
<label for="username">User name</label><input id="username" name="username" type="text" autocomplete="username" required value="${escapeHtml(state.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button type="submit">Sign in</button></p>
</form></section>`;
  return htmlResponse(url, csrf, status, adminLayout('Sign in', body, { csrf }));
}

export async function handleSignIn(request: Request, env: Env, url: URL, csrf: string, form: FormData | null): Promise<Response> {
  const next = field(form, 'next');
  const username = (field(form, 'username') ?? '').trim().slice(0, MAX_CREDENTIAL_CHARS);
  if (!csrfMatches(request, field(form, 'csrf'))) {
    return signInPage(url, csrf, 403, { username, error: 'The sign-in form expired or was sent from another site. Please sign in again.' });
  }
  const password = field(form, 'password') ?? '';
  if (!username || !password || password.length > MAX_CREDENTIAL_CHARS)
    return signInPage(url, csrf, 400, { username, error: 'Enter your user name and password.' });
  const result = await signIn(env, username, password, clientAddress(request, env));
  if (!result.ok) {
    switch (result.reason) {
      case 'rate_limited': {
        logEvent('warn', 'admin page sign-in refused: too many failures');
        const minutes = Math.ceil(result.retryAfterSeconds / 60);
        const page = signInPage(url, csrf, 429, { username, error: `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` });
        page.headers.set('Retry-After', String(result.retryAfterSeconds));
        return page;
      }
      case 'not_configured':
        logEvent('error', 'admin page sign-in attempted but ADMIN_PASSWORD_HASH is not set');
        return signInPage(url, csrf, 503, { username, error: 'Sign-in is not set up: the deployment has no ADMIN_PASSWORD_HASH (see the README).' });
      case 'invalid_credentials':
        logEvent('warn', 'admin page sign-in failed');
        return signInPage(url, csrf, 401, { username, ...(next ? { next } : {}), error: 'Wrong user name or password.' });
      default: {
        const unhandled: never = result;
        throw new Error(`unhandled sign-in result ${JSON.stringify(unhandled)}`);
      }
    }
  }
  logEvent('info', 'admin page sign-in', { username: result.identity.username });
  return seeOther(url, safeNext(next), [await sessionCookie(request, env, result.identity, 'builtin')]);
}

export function handleSignOut(request: Request, url: URL, csrf: string, form: FormData | null): Response {
  // Refused without the token: a cross-site sign-out is a nuisance, not a hole, but it costs nothing to stop.
  if (!csrfMatches(request, field(form, 'csrf'))) return signInPage(url, csrf, 403, { error: 'The sign-out form expired; reload the page and try again.' });
  return seeOther(url, '/admin', [clearSessionCookie(request)]);
}

/** For someone signed in whose account is not an admin of the deployment: says so, offers to sign out, shows nothing else. */
export function notAnAdminPage(url: URL, csrf: string, username: string): Response {
  const body = `<section class="card"><h1>Admins only</h1>
<p>You are signed in as <strong>${escapeHtml(username)}</strong>, which is not an admin of this deployment.</p>
<p class="muted">The admin page is for accounts with an admin grant on every host (<code>"role": "admin", "hosts": ["*"]</code>) and for the deployment's own admin account. Ask an admin if you need access, or sign out and sign in as someone else.</p>
</section>`;
  return htmlResponse(url, csrf, 403, adminLayout('Admins only', body, { csrf, signedInAs: username, showNav: false }));
}
