/**
 * The steps the sign-in routes share: rendering the consent page for a signed-in person,
 * checking a remembered approval, and granting the authorization. Kept apart from the routes so
 * the password form (/authorize) and the identity providers' callback (/auth/callback) end the
 * same way.
 */
import type { AuthRequest, CimdFetchError } from '@cloudflare/workers-oauth-provider';
import { logEvent } from '../log.ts';
import type { Identity } from './accounts.ts';
import { cookieSecret, type IdentitySource } from './browser-session.ts';
import { newCsrfToken, csrfCookie } from './csrf.ts';
import { pageHeaders, withCookies } from './html.ts';
import { clientNotVerifiedPage, consentPage } from './pages.ts';

/** How a session's source is named on the consent page. */
export function sourceLabel(source: IdentitySource, oidcDisplayName: string): string {
  switch (source) {
    case 'builtin':
      return 'password';
    case 'oidc':
      return oidcDisplayName;
    case 'github':
      return 'GitHub';
    default: {
      const unhandled: never = source;
      return unhandled;
    }
  }
}

/** The remembered-consent options for a user: approvals are bound to the user as well as the browser. */
export async function rememberFor(env: Env, userId: string): Promise<{ secret: string; subject: string }> {
  return { secret: await cookieSecret(env), subject: userId };
}

/**
 * The /authorize URL that asks for `oauthRequest` again. Used as the consent form's target where
 * the original query is gone (after an identity provider's redirect); parsing it re-validates
 * everything, and the approval itself always comes from the library's stored copy.
 */
export function authorizePathFor(oauthRequest: AuthRequest): string {
  const params = new URLSearchParams({ response_type: oauthRequest.responseType, client_id: oauthRequest.clientId, redirect_uri: oauthRequest.redirectUri });
  if (oauthRequest.scope.length > 0) params.set('scope', oauthRequest.scope.join(' '));
  if (oauthRequest.state) params.set('state', oauthRequest.state);
  if (oauthRequest.codeChallenge) params.set('code_challenge', oauthRequest.codeChallenge);
  if (oauthRequest.codeChallengeMethod) params.set('code_challenge_method', oauthRequest.codeChallengeMethod);
  if (oauthRequest.resource) params.set('resource', oauthRequest.resource);
  return `/authorize?${params.toString()}`;
}

function redirectOrigin(oauthRequest: AuthRequest): string[] {
  try {
    return [new URL(oauthRequest.redirectUri).origin];
  } catch {
    return [];
  }
}

/**
 * Headers for our pages in this flow: the form may post to us and redirect on to the client's
 * callback, or to `extraTargets` (identity providers: browsers apply form-action to the redirects
 * that follow a form post, too).
 */
export function flowHeaders(oauthRequest: AuthRequest, extraTargets: string[] = []): Headers {
  return pageHeaders([...redirectOrigin(oauthRequest), ...extraTargets]);
}

export interface ConsentIdentity extends Identity {
  source: IdentitySource;
}

/** Render the consent page; `cookies` carries Set-Cookie headers to pass on (a new session, a cleared binding). */
export async function showConsent(
  request: Request,
  env: Env,
  oauthRequest: AuthRequest,
  identity: ConsentIdentity,
  oidcDisplayName: string,
  cookies: Headers[] = [],
  status = 200,
): Promise<Response> {
  // describeConsent first: a failed client lookup then leaves nothing in KV.
  const details = await env.OAUTH_PROVIDER.describeConsent(oauthRequest);
  const consent = await env.OAUTH_PROVIDER.beginConsent(oauthRequest);
  const csrf = newCsrfToken();
  const headers = withCookies(flowHeaders(oauthRequest), ...cookies, consent.headers);
  headers.append('Set-Cookie', csrfCookie(new URL(request.url), csrf));
  const html = consentPage({
    formAction: authorizePathFor(oauthRequest),
    csrf,
    handle: consent.handle,
    details,
    username: identity.username,
    userId: identity.userId,
    via: sourceLabel(identity.source, oidcDisplayName),
  });
  return new Response(html, { status, headers });
}

/**
 * A CIMD client whose metadata document failed (at /authorize, or when the identity provider's
 * callback looks the client up again): logged for the operator, explained to the person, no grant
 * and no redirect, since none of the client's redirect URIs could be checked.
 */
export function refuseUnverifiedClient(error: CimdFetchError, headers?: Headers): Response {
  logEvent('warn', 'client metadata document refused', { clientId: error.metadataUrl.slice(0, 512), reason: error.detail.slice(0, 512) });
  return clientNotVerifiedPage(error, headers);
}

/**
 * How the audit log names the client: its self-chosen name, and for a CIMD client (whose client_id
 * is the https URL of its metadata document; registered clients get opaque ids) the verified domain
 * after it, so a name cannot pass for another app's.
 */
export function clientLabel(clientId: string, clientName: string | null): string {
  const name = clientName?.trim() || clientId;
  let domain: string | null = null;
  if (clientId.startsWith('https://')) {
    try {
      domain = new URL(clientId).hostname;
    } catch {
      domain = null;
    }
  }
  return (domain ? `${name.slice(0, 200)} (${domain})` : name).slice(0, 256);
}

/** Complete the authorization for `identity` and send the browser to the client with the code. */
export async function grantAuthorization(env: Env, oauthRequest: AuthRequest, identity: Identity, headers: Headers): Promise<Response> {
  const client = await env.OAUTH_PROVIDER.lookupClient(oauthRequest.clientId);
  const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
    request: oauthRequest,
    userId: identity.userId,
    metadata: { username: identity.username, clientName: client?.clientName ?? null },
    scope: oauthRequest.scope,
    props: { userId: identity.userId, username: identity.username, client: clientLabel(oauthRequest.clientId, client?.clientName ?? null) },
  });
  logEvent('info', 'authorization granted', { userId: identity.userId, clientId: oauthRequest.clientId });
  headers.set('Location', redirectTo);
  headers.set('Cache-Control', 'no-store');
  return new Response(null, { status: 302, headers });
}
