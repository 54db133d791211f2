/**
 * /admin: the admin page, for people in a browser (the JSON API under /admin/api is for scripts).
 * Server-rendered forms, no script. Every request goes through the same gate here, in this order:
 *
 *   1. sign-in and sign-out (POST, CSRF-checked) need no session;
 *   2. otherwise a valid browser session is needed (else the sign-in page);
 *   3. the session's account is looked up in the team directory on every request and must be a
 *      deployment admin now (never remembered in the cookie), else a 403 page;
 *   4. a POST must carry this browser's CSRF token, else nothing is changed;
 *   5. then each section is asked in turn to answer.
 */
import { isDeploymentAdmin } from '../team/policy.ts';
import { readSession } from '../auth/browser-session.ts';
import { csrfMatches } from '../auth/csrf.ts';
import { escapeHtml } from '../auth/html.ts';
import { teamDirectory } from '../team/team-directory.ts';
import { ADMIN_API_PREFIX } from './admin-api.ts';
import { approvalsSection } from './page/approvals.ts';
import { auditSection } from './page/audit.ts';
import { freezeSection } from './page/freeze.ts';
import { csrfTokenFor, field, htmlResponse, readForm, MAX_FORM_BYTES, type AdminContext, type AdminSection } from './page/context.ts';
import { adminLayout, errorBox } from './page/layout.ts';
import { policySection } from './page/policy.ts';
import { handleSignIn, handleSignOut, notAnAdminPage, signInPage } from './page/sign-in.ts';
import { relaysSection } from './page/relays.ts';
import { usersSection } from './page/users.ts';

/** Asked in order; the first to answer wins. A new section adds itself here and to ADMIN_NAV (page/layout.ts). */
const SECTIONS: readonly AdminSection[] = [usersSection, relaysSection, policySection, approvalsSection, auditSection, freezeSection];

/** Whether `pathname` belongs to the admin page (and not to the admin API). */
export function isAdminPagePath(pathname: string): boolean {
  return pathname === '/admin' || (pathname.startsWith('/admin/') && !pathname.startsWith(ADMIN_API_PREFIX));
}

function messagePage(context: Pick<AdminContext, 'url' | 'csrf' | 'admin'>, status: number, title: string, message: string): Response {
  const body = `<h1>${escapeHtml(title)}</h1>${errorBox(message)}<p><a href="/admin">Back to the admin page</a></p>`;
  return htmlResponse(context.url, context.csrf, status, adminLayout(title, body, { csrf: context.csrf, signedInAs: context.admin, showNav: true }));
}

export async function handleAdminPage(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const csrf = csrfTokenFor(request);
  if (request.method !== 'GET' && request.method !== 'POST') {
    return new Response('Method not allowed\n', { status: 405, headers: { Allow: 'GET, POST', 'Cache-Control': 'no-store' } });
  }
  let form: FormData | null = null;
  if (request.method === 'POST') {
    form = await readForm(request);
    if (!form)
      return new Response(`Send a form (urlencoded or multipart) of at most ${MAX_FORM_BYTES} bytes.\n`, {
        status: 400,
        headers: { 'Cache-Control': 'no-store' },
      });
  }

  if (url.pathname === '/admin/sign-in' && request.method === 'POST') return handleSignIn(request, env, url, csrf, form);
  if (url.pathname === '/admin/sign-out' && request.method === 'POST') return handleSignOut(request, url, csrf, form);

  const session = await readSession(request, env);
  if (!session) {
    if (request.method === 'GET') return signInPage(url, csrf, 200, { next: url.pathname + url.search });
    return signInPage(url, csrf, 401, { error: 'You are not signed in (or your session ended); nothing was changed. Please sign in.' });
  }
  const access = await teamDirectory(env).access(session.username);
  if (!access.active || !isDeploymentAdmin(access.policy, access.subject)) return notAnAdminPage(url, csrf, session.username);

  const context: AdminContext = { request, env, url, admin: session.username, csrf, form };
  if (request.method === 'POST' && !csrfMatches(request, field(form, 'csrf'))) {
    return messagePage(
      context,
      403,
      'Form expired',
      'This form expired or was sent from another site, so nothing was changed. Go back, reload the page and try again.',
    );
  }
  for (const section of SECTIONS) {
    const answer = await section(context);
    if (answer) return answer;
  }
  return messagePage(context, 404, 'Not found', `There is no admin page at ${request.method} ${url.pathname}.`);
}
