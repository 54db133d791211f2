/**
 * Sign-in through an identity provider (OpenID Connect or GitHub). The sign-in page's button
 * starts it: the library's beginUpstream() stores the MCP client's request server-side with our
 * PKCE verifier and nonce and binds its `state` to this browser; we redirect to the provider.
 * The provider sends the browser to /auth/callback, where finishUpstream() recovers the request
 * (only in the browser that started it, once), we exchange the code and learn who it is, decide
 * membership, record the account, sign the browser in, and go on to consent.
 *
 * Consent comes after the provider rather than before it (the library's proxy pattern): the
 * provider only tells us who the person is and no token reaches the MCP client until that person
 * approved the client on our consent page, so per-client consent still precedes any grant, and it
 * can be remembered per user rather than per browser.
 */
import { randomBytes, toBase64Url } from '../../shared/encoding.ts';
import { AuthorizationError, authorizationErrorRedirect, CimdFetchError, type AuthRequest } from '@cloudflare/workers-oauth-provider';
import { z } from 'zod';
import { logEvent } from '../log.ts';
import { readSettings, SettingsError } from '../settings.ts';
import { teamDirectory } from '../team/team-directory.ts';
import { flowHeaders, grantAuthorization, refuseUnverifiedClient, rememberFor, showConsent } from './authorization-steps.ts';
import { sessionCookie } from './browser-session.ts';
import { GithubError, exchangeGithubCode, githubAuthorizationUrl, githubMemberOrgs, githubUser } from './github-client.ts';
import { withCookies } from './html.ts';
import { readIdentityProviders, type IdentityProviders } from './identity-config.ts';
import { decideGithub, decideOidc, refusalMessage, type MembershipDecision } from './membership.ts';
import { OidcError, authorizationUrl, discover, exchangeCode, verifyWithDiscovery } from './oidc-client.ts';
import { messagePage } from './pages.ts';

export const CALLBACK_PATH = '/auth/callback';

type ProviderKind = 'oidc' | 'github';

/** What beginUpstream keeps for us (encrypted, server-side) until the callback. */
const upstreamDataSchema = z.object({ provider: z.enum(['oidc', 'github']), verifier: z.string().min(43), nonce: z.string().min(16).optional() });

function randomToken(): string {
  return toBase64Url(randomBytes(32));
}

async function s256(verifier: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  return toBase64Url(digest);
}

function callbackUrl(env: Env): string {
  return `${readSettings(env).publicUrl}${CALLBACK_PATH}`;
}

function providerLabel(kind: ProviderKind, providers: IdentityProviders): string {
  return kind === 'oidc' ? (providers.oidc?.displayName ?? 'single sign-on') : 'GitHub';
}

/** Origins the sign-in page's form may end up at when a provider button is pressed (for its form-action policy). */
export async function providerOrigins(providers: IdentityProviders): Promise<string[]> {
  const origins: string[] = [];
  if (providers.oidc) {
    try {
      origins.push(new URL((await discover(providers.oidc)).authorization_endpoint).origin);
    } catch {
      // Unreachable now: the button will say so when pressed; the issuer's origin is the best guess.
      origins.push(new URL(providers.oidc.issuer).origin);
    }
  }
  if (providers.github) origins.push(new URL(providers.github.oauthUrl).origin);
  return origins;
}

/** The sign-in page's "Continue with …" button: off to the provider. */
export async function startUpstream(
  request: Request,
  env: Env,
  oauthRequest: AuthRequest,
  kind: ProviderKind,
  providers: IdentityProviders,
): Promise<Response> {
  const verifier = randomToken();
  const redirectUri = callbackUrl(env);
  const oidc = providers.oidc;
  const github = providers.github;
  if (kind === 'oidc' && oidc) {
    let discovery;
    try {
      // Before beginUpstream, so an unreachable provider leaves nothing stored.
      discovery = await discover(oidc);
    } catch (error) {
      if (!(error instanceof OidcError) && !(error instanceof TypeError) && !(error instanceof DOMException)) throw error;
      logEvent('error', 'OIDC discovery failed', { error: error.message });
      return messagePage(
        502,
        `${oidc.displayName} is not reachable`,
        `Signing in with ${oidc.displayName} is not possible right now. Try again later, or tell the administrator.`,
      );
    }
    const nonce = randomToken();
    const { state, headers } = await env.OAUTH_PROVIDER.beginUpstream(oauthRequest, {
      data: { provider: 'oidc', verifier, nonce },
      headers: flowHeaders(oauthRequest),
    });
    headers.set('Location', authorizationUrl(oidc, discovery, { redirectUri, state, nonce, codeChallenge: await s256(verifier) }));
    return new Response(null, { status: 302, headers });
  }
  if (kind === 'github' && github) {
    const { state, headers } = await env.OAUTH_PROVIDER.beginUpstream(oauthRequest, {
      data: { provider: 'github', verifier },
      headers: flowHeaders(oauthRequest),
    });
    headers.set('Location', githubAuthorizationUrl(github, { redirectUri, state, codeChallenge: await s256(verifier) }));
    return new Response(null, { status: 302, headers });
  }
  return messagePage(400, 'This sign-in method is not offered', 'This deployment does not offer that way of signing in. Start again from your MCP client.');
}

async function decide(
  kind: ProviderKind,
  providers: IdentityProviders,
  env: Env,
  params: URLSearchParams,
  code: string,
  data: z.infer<typeof upstreamDataSchema>,
): Promise<MembershipDecision | null> {
  if (kind === 'oidc' && providers.oidc && data.nonce) {
    const config = providers.oidc;
    // RFC 9207: a provider that names itself in the response must be the one we sent the user to.
    const iss = params.get('iss');
    if (iss !== null && iss !== config.issuer) throw new OidcError(`the callback names issuer "${iss}", not "${config.issuer}"`);
    const discovery = await discover(config);
    const idToken = await exchangeCode(config, discovery, code, data.verifier, callbackUrl(env));
    const claims = await verifyWithDiscovery(config, discovery, idToken, data.nonce);
    return decideOidc(config, claims);
  }
  if (kind === 'github' && providers.github) {
    const config = providers.github;
    const token = await exchangeGithubCode(config, code, data.verifier, callbackUrl(env));
    const user = await githubUser(config, token);
    // Organisation look-ups only when the login alone does not already decide.
    const orgs = config.allowedLogins.includes(user.login.toLowerCase()) ? [] : await githubMemberOrgs(config, token);
    return decideGithub(config, user, orgs);
  }
  return null;
}

/** GET /auth/callback: the identity provider sends the browser back here. */
export async function handleUpstreamCallback(request: Request, env: Env): Promise<Response> {
  if (request.method !== 'GET') return new Response('Method not allowed', { status: 405, headers: { Allow: 'GET' } });
  let providers: IdentityProviders;
  try {
    providers = readIdentityProviders(env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    return messagePage(500, 'Sign-in is not set up correctly', `Configuration error: ${error.message}`);
  }
  let resumed;
  try {
    resumed = await env.OAUTH_PROVIDER.finishUpstream<unknown>(request);
  } catch (error) {
    if (error instanceof AuthorizationError) {
      return messagePage(
        400,
        'This sign-in has expired',
        'This sign-in expired, was already finished, or was started in another browser. Start again from your MCP client.',
      );
    }
    throw error;
  }
  const original = resumed.request;
  const data = upstreamDataSchema.safeParse(resumed.data);
  if (!data.success) throw new Error('upstream sign-in data is not what startUpstream stored');
  const kind = data.data.provider;
  const label = providerLabel(kind, providers);
  const params = new URL(request.url).searchParams;
  const refusal = (status: number, title: string, message: string): Response =>
    messagePage(status, title, message, withCookies(flowHeaders(original), resumed.headers));

  // The person declined at the provider, or it failed there: the MCP client hears access_denied.
  const code = params.get('code');
  if (params.has('error') || !code) {
    logEvent('info', 'identity provider returned no code', { provider: kind, error: (params.get('error') ?? 'missing code').slice(0, 64) });
    const headers = withCookies(flowHeaders(original), resumed.headers);
    headers.set('Location', authorizationErrorRedirect(original, 'access_denied', `${label} sign-in did not complete`));
    return new Response(null, { status: 302, headers });
  }

  let decision: MembershipDecision | null;
  try {
    decision = await decide(kind, providers, env, params, code, data.data);
  } catch (error) {
    if (
      !(error instanceof OidcError) &&
      !(error instanceof GithubError) &&
      !(error instanceof TypeError) &&
      !(error instanceof DOMException) &&
      !(error instanceof SyntaxError)
    )
      throw error;
    logEvent('warn', 'identity provider sign-in failed', { provider: kind, error: error.message });
    return refusal(
      502,
      'Sign-in failed',
      `${label} did not confirm who you are, so you are not signed in. Start again from your MCP client; if it keeps failing, tell the administrator.`,
    );
  }
  if (!decision)
    return refusal(400, 'This sign-in method is not offered', `This deployment no longer offers ${label} sign-in. Start again from your MCP client.`);
  if (!decision.ok) {
    logEvent('warn', 'sign-in refused', { provider: kind, reason: decision.reason, who: decision.who.slice(0, 128) });
    return refusal(403, 'You cannot sign in here', refusalMessage(decision.reason, label));
  }
  const recorded = await teamDirectory(env).recordExternalSignIn({
    username: decision.username,
    userId: decision.userId,
    source: kind,
    idpGroups: decision.groups,
  });
  if (!recorded.ok) {
    logEvent('warn', 'sign-in refused', { provider: kind, reason: recorded.reason, username: decision.username });
    return refusal(403, 'You cannot sign in here', refusalMessage(recorded.reason, label));
  }
  const identity = { userId: decision.userId, username: recorded.username };
  logEvent('info', 'signed in', { provider: kind, userId: identity.userId });
  const signedIn = new Headers({ 'Set-Cookie': await sessionCookie(request, env, identity, kind) });
  try {
    if (await env.OAUTH_PROVIDER.isConsentRemembered(request, original, await rememberFor(env, identity.userId))) {
      return await grantAuthorization(env, original, identity, withCookies(flowHeaders(original), resumed.headers, signedIn));
    }
    return await showConsent(request, env, original, { ...identity, source: kind }, providers.oidc?.displayName ?? '', [resumed.headers, signedIn]);
  } catch (error) {
    // A CIMD client's document is fetched again here (the library caches it only as its host allows).
    if (error instanceof CimdFetchError) return refuseUnverifiedClient(error, withCookies(flowHeaders(original), resumed.headers, signedIn));
    throw error;
  }
}
