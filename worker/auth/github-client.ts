/**
 * GitHub sign-in through a GitHub OAuth app: the authorize URL, the code exchange, `GET /user`,
 * and organisation membership (`GET /user/memberships/orgs/{org}`, which needs read:org and
 * answers for private memberships too). GitHub issues no ID token, so identity is what its API
 * says about the token's owner, fetched over TLS right after the exchange.
 */
import { z } from 'zod';
import type { GithubConfig } from './identity-config.ts';

const FETCH_TIMEOUT_MS = 10_000;
// GitHub refuses API requests without a User-Agent.
const API_HEADERS = { Accept: 'application/vnd.github+json', 'User-Agent': 'mcp-remote-exec', 'X-GitHub-Api-Version': '2022-11-28' };

const tokenSchema = z.object({ access_token: z.string().min(1), token_type: z.string().optional(), scope: z.string().optional() });
const tokenErrorSchema = z.object({ error: z.string(), error_description: z.string().optional() });
const userSchema = z.object({ login: z.string().regex(/^[A-Za-z0-9-]{1,39}$/), id: z.number().int().positive() });
const membershipSchema = z.object({ state: z.string() });

export class GithubError extends Error {
  override name = 'GithubError';
}

export function githubAuthorizationUrl(config: GithubConfig, request: { redirectUri: string; state: string; codeChallenge: string }): string {
  const url = new URL(`${config.oauthUrl}/login/oauth/authorize`);
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('redirect_uri', request.redirectUri);
  // read:org only when membership is decided by organisation: ask for no more than needed.
  url.searchParams.set('scope', config.allowedOrgs.length > 0 ? 'read:user read:org' : 'read:user');
  url.searchParams.set('state', request.state);
  url.searchParams.set('allow_signup', 'false');
  url.searchParams.set('code_challenge', request.codeChallenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

export async function exchangeGithubCode(config: GithubConfig, code: string, verifier: string, redirectUri: string): Promise<string> {
  const response = await fetch(`${config.oauthUrl}/login/oauth/access_token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ client_id: config.clientId, client_secret: config.clientSecret, code, redirect_uri: redirectUri, code_verifier: verifier }),
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  const json: unknown = await response.json().catch(() => null);
  // GitHub reports a bad code as HTTP 200 with an error body.
  const failure = tokenErrorSchema.safeParse(json);
  if (!response.ok || failure.success)
    throw new GithubError(`GitHub refused the code exchange (HTTP ${response.status}${failure.success ? `: ${failure.data.error}` : ''})`);
  const parsed = tokenSchema.safeParse(json);
  if (!parsed.success) throw new GithubError('GitHub answered the code exchange without an access token');
  return parsed.data.access_token;
}

async function api(config: GithubConfig, token: string, path: string): Promise<Response> {
  return fetch(`${config.apiUrl}${path}`, { headers: { ...API_HEADERS, Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
}

export async function githubUser(config: GithubConfig, token: string): Promise<{ login: string; id: number }> {
  const response = await api(config, token, '/user');
  if (!response.ok) throw new GithubError(`GitHub's /user answered HTTP ${response.status}`);
  const parsed = userSchema.safeParse(await response.json());
  if (!parsed.success) throw new GithubError("GitHub's /user answer has no usable login and id");
  return parsed.data;
}

/** The allowed organisations the token's owner is an active member of. */
export async function githubMemberOrgs(config: GithubConfig, token: string): Promise<string[]> {
  const member: string[] = [];
  for (const org of config.allowedOrgs) {
    const response = await api(config, token, `/user/memberships/orgs/${encodeURIComponent(org)}`);
    // 404: not a member; 403: the org restricts OAuth apps and has not approved this one.
    if (!response.ok) {
      await response.body?.cancel();
      continue;
    }
    const parsed = membershipSchema.safeParse(await response.json());
    // A pending invitation is not membership.
    if (parsed.success && parsed.data.state === 'active') member.push(org);
  }
  return member;
}
