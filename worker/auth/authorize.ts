/**
 * The /authorize endpoint: a sign-in form that also names the client being authorized (so signing
 * in is the user's consent for that client). GET renders it; POST checks the CSRF token and the
 * credentials, then completes the authorization and redirects to the client's registered callback.
 * The OAuth request stays in the form's action URL and is re-validated by parseAuthRequest on POST.
 */
import { AuthorizationError, authorizationErrorRedirect, type AuthRequest, type ClientInfo } from '@cloudflare/workers-oauth-provider';
import { logEvent } from '../log.ts';
import { clientAddress, signIn } from './accounts.ts';
import { csrfCookie, csrfMatches, newCsrfToken } from './csrf.ts';
import { escapeHtml, page, pageHeaders } from './html.ts';

const MAX_FIELD_LENGTH = 1024;

interface FormState {
  csrf: string;
  username?: string;
  error?: string;
}

function redirectOrigin(oauthRequest: AuthRequest): string {
  try {
    return new URL(oauthRequest.redirectUri).origin;
  } catch {
    return '';
  }
}

function loginForm(request: Request, oauthRequest: AuthRequest, client: ClientInfo | null, state: FormState): string {
  const clientName = client?.clientName?.trim() || 'An MCP client';
  const callbackHost = (() => {
    try {
      return new URL(oauthRequest.redirectUri).host;
    } catch {
      return oauthRequest.redirectUri;
    }
  })();
  const action = new URL(request.url);
  return page(
    'Sign in: mcp-remote-exec',
    `<h1>Sign in to mcp-remote-exec</h1>
<p class="client"><strong>${escapeHtml(clientName)}</strong> wants to run commands on your servers through this bridge.<br><small>It will be sent back to <strong>${escapeHtml(callbackHost)}</strong> after you sign in.</small></p>
${state.error ? `<p class="error" role="alert">${escapeHtml(state.error)}</p>` : ''}
<form method="post" action="${escapeHtml(action.pathname + action.search)}">
<input type="hidden" name="csrf" value="${escapeHtml(state.csrf)}">
<label for="username">User name</label><input id="username" name="username" type="text" autocomplete="username" required value="${escapeHtml(state.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<div class="buttons"><button type="submit" name="action" value="approve">Sign in and allow</button><button class="secondary" type="submit" name="action" value="deny" formnovalidate>Deny</button></div>
</form>
<p><small>Only sign in if you started this from a client you trust.</small></p>`,
  );
}

function errorPage(status: number, title: string, message: string): Response {
  return new Response(page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`), { status, headers: pageHeaders() });
}

function field(form: FormData, name: string): string | null {
  const value = form.get(name);
  return typeof value === 'string' && value.length <= MAX_FIELD_LENGTH ? value : null;
}

async function parseOrExplain(request: Request, env: Env): Promise<AuthRequest | Response> {
  try {
    return await env.OAUTH_PROVIDER.parseAuthRequest(request);
  } catch (error) {
    if (error instanceof AuthorizationError) {
      // Redirect only where the library validated the client's callback; otherwise show the error here.
      if (error.redirectTo) return Response.redirect(error.redirectTo, 302);
      return errorPage(400, 'This sign-in link is not valid', `${error.description} Start again from your MCP client.`);
    }
    throw error;
  }
}

export async function handleAuthorize(request: Request, env: Env): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'POST') return new Response('Method not allowed', { status: 405, headers: { Allow: 'GET, POST' } });
  const parsed = await parseOrExplain(request, env);
  if (parsed instanceof Response) return parsed;
  const oauthRequest = parsed;
  const client = await env.OAUTH_PROVIDER.lookupClient(oauthRequest.clientId);
  const url = new URL(request.url);
  const formTargets = [redirectOrigin(oauthRequest)].filter(Boolean);

  const render = (status: number, state: Omit<FormState, 'csrf'>): Response => {
    const csrf = newCsrfToken();
    const headers = pageHeaders(formTargets);
    headers.append('Set-Cookie', csrfCookie(url, csrf));
    return new Response(loginForm(request, oauthRequest, client, { ...state, csrf }), { status, headers });
  };

  if (request.method === 'GET') return render(200, {});

  const form = await request.formData();
  if (!csrfMatches(request, field(form, 'csrf'))) {
    return render(403, { error: 'Your sign-in form expired or was submitted from elsewhere. Please sign in again.' });
  }
  if (field(form, 'action') === 'deny') {
    return Response.redirect(authorizationErrorRedirect(oauthRequest, 'access_denied'), 302);
  }
  const username = field(form, 'username') ?? '';
  const password = field(form, 'password') ?? '';
  const signedIn = await signIn(env, username.trim(), password, clientAddress(request));
  if (!signedIn.ok) {
    if (signedIn.reason === 'rate_limited') {
      logEvent('warn', 'sign-in refused: too many failures', { clientId: oauthRequest.clientId });
      const minutes = Math.ceil(signedIn.retryAfterSeconds / 60);
      return render(429, { username, error: `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` });
    }
    if (signedIn.reason === 'not_configured') {
      logEvent('error', 'sign-in attempted but ADMIN_PASSWORD_HASH is not set');
      return errorPage(503, 'Sign-in is not set up', 'The administrator has not set ADMIN_PASSWORD_HASH for this deployment (see the README).');
    }
    logEvent('warn', 'sign-in failed', { clientId: oauthRequest.clientId });
    return render(401, { username, error: 'Wrong user name or password.' });
  }
  const { identity } = signedIn;
  const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
    request: oauthRequest,
    userId: identity.userId,
    metadata: { username: identity.username, clientName: client?.clientName ?? null },
    scope: oauthRequest.scope,
    props: { userId: identity.userId, username: identity.username, client: (client?.clientName?.trim() || oauthRequest.clientId).slice(0, 256) },
  });
  logEvent('info', 'authorization granted', { userId: identity.userId, clientId: oauthRequest.clientId });
  return Response.redirect(redirectTo, 302);
}
