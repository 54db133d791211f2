/**
 * The /authorize endpoint. GET: with a browser session, either complete at once (this user already
 * approved this client) or show the consent page; without one, show the sign-in page, which names
 * the client and offers the password form ("Sign in and allow": signing in is consent) and the
 * configured identity providers. POST: the forms of those pages, each checked for its CSRF token;
 * approvals and denials go through the OAuth library's consent handle, which is bound to this
 * browser by a `__Host-` cookie and works once, and the request they act on comes from the
 * library's storage, never from the form.
 */
import { AuthorizationError, CimdFetchError, type AuthRequest } from '@cloudflare/workers-oauth-provider';
import { logEvent } from '../log.ts';
import { SettingsError } from '../settings.ts';
import { teamDirectory } from '../team/team-directory.ts';
import { clientAddress, signIn } from './accounts.ts';
import { flowHeaders, grantAuthorization, refuseUnverifiedClient, rememberFor, showConsent } from './authorization-steps.ts';
import { clearSessionCookie, readSession, sessionCookie } from './browser-session.ts';
import { csrfCookie, csrfMatches, newCsrfToken } from './csrf.ts';
import { withCookies } from './html.ts';
import { readIdentityProviders, type IdentityProviders } from './identity-config.ts';
import { messagePage, signInPage, type ProviderButton } from './pages.ts';
import { providerOrigins, startUpstream } from './upstream-sign-in.ts';

const MAX_FIELD_LENGTH = 1024;

function field(form: FormData, name: string): string | null {
  const value = form.get(name);
  return typeof value === 'string' && value.length <= MAX_FIELD_LENGTH ? value : null;
}

const startAgain = (): Response =>
  messagePage(400, 'This page has expired', 'This sign-in page expired, was already used, or was opened in another browser. Start again from your MCP client.');

async function parseOrExplain(request: Request, env: Env): Promise<AuthRequest | Response> {
  try {
    return await env.OAUTH_PROVIDER.parseAuthRequest(request);
  } catch (error) {
    if (error instanceof AuthorizationError) {
      // Redirect only where the library validated the client's callback; otherwise show the error here.
      if (error.redirectTo) return Response.redirect(error.redirectTo, 302);
      return messagePage(400, 'This sign-in link is not valid', `${error.description.replace(/\.?$/, '.')} Start again from your MCP client.`);
    }
    if (error instanceof CimdFetchError) return refuseUnverifiedClient(error);
    throw error;
  }
}

function providerButtons(providers: IdentityProviders): ProviderButton[] {
  return [
    ...(providers.oidc ? [{ action: 'oidc' as const, label: providers.oidc.displayName }] : []),
    ...(providers.github ? [{ action: 'github' as const, label: 'GitHub' }] : []),
  ];
}

async function showSignIn(
  request: Request,
  env: Env,
  oauthRequest: AuthRequest,
  providers: IdentityProviders,
  status: number,
  state: { username?: string; error?: string } = {},
): Promise<Response> {
  const buttons = providerButtons(providers);
  // With no identity provider the form is always offered, so a fresh deployment explains itself on submit.
  const passwordForm = buttons.length === 0 || (await teamDirectory(env).passwordSignInUsable());
  const details = await env.OAUTH_PROVIDER.describeConsent(oauthRequest);
  const consent = await env.OAUTH_PROVIDER.beginConsent(oauthRequest);
  const csrf = newCsrfToken();
  const url = new URL(request.url);
  const headers = withCookies(flowHeaders(oauthRequest, await providerOrigins(providers)), consent.headers);
  headers.append('Set-Cookie', csrfCookie(url, csrf));
  const html = signInPage({ formAction: url.pathname + url.search, csrf, handle: consent.handle, details, passwordForm, providers: buttons, ...state });
  return new Response(html, { status, headers });
}

export async function handleAuthorize(request: Request, env: Env): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'POST') return new Response('Method not allowed', { status: 405, headers: { Allow: 'GET, POST' } });
  let providers: IdentityProviders;
  try {
    providers = readIdentityProviders(env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    logEvent('error', 'configuration error', { error: error.message });
    return messagePage(500, 'Sign-in is not set up correctly', `Configuration error: ${error.message}`);
  }
  const parsed = await parseOrExplain(request, env);
  if (parsed instanceof Response) return parsed;
  const oauthRequest = parsed;
  const oidcName = providers.oidc?.displayName ?? '';

  try {
    const session = await readSession(request, env);
    if (request.method === 'GET') {
      if (!session) return await showSignIn(request, env, oauthRequest, providers, 200);
      if (await env.OAUTH_PROVIDER.isConsentRemembered(request, oauthRequest, await rememberFor(env, session.userId))) {
        return await grantAuthorization(env, oauthRequest, session, flowHeaders(oauthRequest));
      }
      return await showConsent(request, env, oauthRequest, session, oidcName);
    }

    const form = await request.formData();
    if (!csrfMatches(request, field(form, 'csrf'))) {
      const error = 'This form expired or was submitted from elsewhere. Please try again.';
      return session
        ? await showConsent(request, env, oauthRequest, session, oidcName, [], 403)
        : await showSignIn(request, env, oauthRequest, providers, 403, { error });
    }
    const action = field(form, 'action');
    const handle = field(form, 'handle') ?? '';
    switch (action) {
      case 'deny': {
        const denied = await env.OAUTH_PROVIDER.denyConsent(request, handle);
        logEvent('info', 'authorization denied by the user', { clientId: denied.request.clientId });
        return new Response(null, { status: 302, headers: denied.headers });
      }
      case 'switch': {
        // Sign this browser out and show the sign-in page for the same request.
        const url = new URL(request.url);
        const headers = flowHeaders(oauthRequest);
        headers.append('Set-Cookie', clearSessionCookie(request));
        headers.set('Location', url.pathname + url.search);
        return new Response(null, { status: 303, headers });
      }
      case 'oidc':
      case 'github':
        return await startUpstream(request, env, oauthRequest, action, providers);
      case 'approve':
        if (form.has('username')) return await approveWithPassword(request, env, oauthRequest, providers, form, handle);
        if (!session) return await showSignIn(request, env, oauthRequest, providers, 401, { error: 'You were signed out. Please sign in again.' });
        // The page named one person; if the browser has since signed in as someone else, ask that person.
        if (field(form, 'as') !== session.userId) return await showConsent(request, env, oauthRequest, session, oidcName, [], 409);
        {
          const approved = await env.OAUTH_PROVIDER.approveConsent(request, handle, { remember: await rememberFor(env, session.userId) });
          return await grantAuthorization(env, approved.request, session, withCookies(flowHeaders(approved.request), approved.headers));
        }
      default:
        return messagePage(400, 'Unknown action', 'This form sent an action this page does not know. Start again from your MCP client.');
    }
  } catch (error) {
    // approveConsent / denyConsent: the handle is missing, unbound to this browser, expired or used.
    if (error instanceof AuthorizationError) return startAgain();
    if (error instanceof CimdFetchError) return refuseUnverifiedClient(error);
    throw error;
  }
}

async function approveWithPassword(
  request: Request,
  env: Env,
  oauthRequest: AuthRequest,
  providers: IdentityProviders,
  form: FormData,
  handle: string,
): Promise<Response> {
  const username = field(form, 'username') ?? '';
  const password = field(form, 'password') ?? '';
  const signedIn = await signIn(env, username.trim(), password, clientAddress(request, env));
  if (!signedIn.ok) {
    if (signedIn.reason === 'rate_limited') {
      logEvent('warn', 'sign-in refused: too many failures', { clientId: oauthRequest.clientId });
      const minutes = Math.ceil(signedIn.retryAfterSeconds / 60);
      return showSignIn(request, env, oauthRequest, providers, 429, {
        username,
        error: `Too many failed sign-ins. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
      });
    }
    if (signedIn.reason === 'not_configured') {
      logEvent('error', 'sign-in attempted but ADMIN_PASSWORD_HASH is not set');
      return messagePage(503, 'Sign-in is not set up', 'The administrator has not set ADMIN_PASSWORD_HASH for this deployment (see the README).');
    }
    logEvent('warn', 'sign-in failed', { clientId: oauthRequest.clientId });
    return showSignIn(request, env, oauthRequest, providers, 401, { username, error: 'Wrong user name or password.' });
  }
  const { identity } = signedIn;
  const approved = await env.OAUTH_PROVIDER.approveConsent(request, handle, { remember: await rememberFor(env, identity.userId) });
  const headers = withCookies(flowHeaders(approved.request), approved.headers);
  headers.append('Set-Cookie', await sessionCookie(request, env, identity, 'builtin'));
  return grantAuthorization(env, approved.request, identity, headers);
}
