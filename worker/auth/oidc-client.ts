/**
 * The OpenID Connect relying party: discovery, the authorization URL, the code exchange (PKCE and
 * the client secret), and ID token verification with jose. The ID token is the only source of
 * identity: its signature is checked against the issuer's JWKS, then `iss`, `aud` (and `azp` when
 * there are several audiences), `exp`, and the `nonce` this browser's sign-in started with.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { OidcConfig } from './identity-config.ts';

/** Seconds of clock difference allowed between the provider and the edge. */
const CLOCK_TOLERANCE_SECONDS = 60;
/** Discovery documents change rarely; fetch again after this. */
const DISCOVERY_TTL_MS = 10 * 60 * 1000;
const FETCH_TIMEOUT_MS = 10_000;
/** Symmetric (HS*) ID tokens would need the client secret as key; real providers sign with asymmetric keys. */
const ACCEPTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

const discoverySchema = z.object({
  issuer: z.string(),
  authorization_endpoint: z.url(),
  token_endpoint: z.url(),
  jwks_uri: z.url(),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
});
export type OidcDiscovery = z.infer<typeof discoverySchema>;

const tokenResponseSchema = z.object({ id_token: z.string().min(1), access_token: z.string().optional(), token_type: z.string().optional() });
const tokenErrorSchema = z.object({ error: z.string(), error_description: z.string().optional() });

/** Why an OIDC sign-in failed on the provider's side (not a membership decision). */
export class OidcError extends Error {
  override name = 'OidcError';
}

let cachedDiscovery: { issuer: string; document: OidcDiscovery; fetchedAt: number } | undefined;
const keySets = new Map<string, JWTVerifyGetKey>();

export async function discover(config: OidcConfig): Promise<OidcDiscovery> {
  if (cachedDiscovery?.issuer === config.issuer && Date.now() - cachedDiscovery.fetchedAt < DISCOVERY_TTL_MS) return cachedDiscovery.document;
  const url = `${config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(url, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  if (!response.ok) throw new OidcError(`the provider's discovery document ${url} answered HTTP ${response.status}`);
  const parsed = discoverySchema.safeParse(await response.json());
  if (!parsed.success) throw new OidcError(`the provider's discovery document ${url} is not valid`);
  // OpenID Connect Discovery 1.0 §4.3: the document must name exactly the issuer we asked.
  if (parsed.data.issuer !== config.issuer) throw new OidcError(`the provider calls itself "${parsed.data.issuer}", not OIDC_ISSUER "${config.issuer}"`);
  cachedDiscovery = { issuer: config.issuer, document: parsed.data, fetchedAt: Date.now() };
  return parsed.data;
}

function keySet(discovery: OidcDiscovery): JWTVerifyGetKey {
  let keys = keySets.get(discovery.jwks_uri);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(discovery.jwks_uri), { timeoutDuration: FETCH_TIMEOUT_MS });
    keySets.set(discovery.jwks_uri, keys);
  }
  return keys;
}

export function authorizationUrl(
  config: OidcConfig,
  discovery: OidcDiscovery,
  request: { redirectUri: string; state: string; nonce: string; codeChallenge: string },
): string {
  const url = new URL(discovery.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('redirect_uri', request.redirectUri);
  url.searchParams.set('scope', config.scopes);
  url.searchParams.set('state', request.state);
  url.searchParams.set('nonce', request.nonce);
  url.searchParams.set('code_challenge', request.codeChallenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

/** RFC 6749 §2.3.1: client_secret_basic encodes id and secret as form values before base64. */
function basicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (value: string): string => encodeURIComponent(value).replaceAll('%20', '+');
  return `Basic ${btoa(`${encode(clientId)}:${encode(clientSecret)}`)}`;
}

/** Exchange the authorization code for tokens; returns the (not yet verified) ID token. */
export async function exchangeCode(config: OidcConfig, discovery: OidcDiscovery, code: string, verifier: string, redirectUri: string): Promise<string> {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
  const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
  const methods = discovery.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  // Basic is the default every provider must support unless it says otherwise.
  if (methods.includes('client_secret_basic') || !methods.includes('client_secret_post')) {
    headers.Authorization = basicAuthorization(config.clientId, config.clientSecret);
  } else {
    body.set('client_id', config.clientId);
    body.set('client_secret', config.clientSecret);
  }
  const response = await fetch(discovery.token_endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const json: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const failure = tokenErrorSchema.safeParse(json);
    throw new OidcError(`the provider refused the code exchange (HTTP ${response.status}${failure.success ? `: ${failure.data.error}` : ''})`);
  }
  const parsed = tokenResponseSchema.safeParse(json);
  if (!parsed.success) throw new OidcError('the provider answered the code exchange without an ID token (is "openid" in OIDC_SCOPES?)');
  return parsed.data.id_token;
}

export interface IdTokenExpectations {
  issuer: string;
  clientId: string;
  nonce: string;
  /** The issuer's keys (a remote JWKS in production; a local set in tests). */
  keys: JWTVerifyGetKey;
  /** Algorithms the issuer says it uses; intersected with the asymmetric ones we accept. */
  algorithms?: string[];
}

/**
 * Verify an ID token (OpenID Connect Core 1.0 §3.1.3.7) and return its claims.
 * @throws OidcError with a reason fit for the operator's log (never the token itself)
 */
export async function verifyIdToken(idToken: string, expected: IdTokenExpectations): Promise<JWTPayload> {
  const algorithms = expected.algorithms ? ACCEPTED_ALGORITHMS.filter((alg) => expected.algorithms?.includes(alg)) : ACCEPTED_ALGORITHMS;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, expected.keys, {
      issuer: expected.issuer,
      audience: expected.clientId,
      algorithms,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
    }));
  } catch (error) {
    if (error instanceof errors.JOSEError)
      throw new OidcError(`the ID token was refused: ${error.code}${error instanceof errors.JWTClaimValidationFailed ? ` (${error.claim})` : ''}`);
    throw error;
  }
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  // §3.1.3.7 items 4-5: with several audiences the token must say it was issued to us.
  if ((audiences.length > 1 || payload.azp !== undefined) && payload.azp !== expected.clientId)
    throw new OidcError('the ID token was refused: azp is not our client id');
  if (payload.nonce !== expected.nonce) throw new OidcError('the ID token was refused: its nonce is not the one this sign-in sent');
  return payload;
}

/** Verify against the issuer's published keys. */
export async function verifyWithDiscovery(config: OidcConfig, discovery: OidcDiscovery, idToken: string, nonce: string): Promise<JWTPayload> {
  return verifyIdToken(idToken, {
    issuer: config.issuer,
    clientId: config.clientId,
    nonce,
    keys: keySet(discovery),
    ...(discovery.id_token_signing_alg_values_supported ? { algorithms: discovery.id_token_signing_alg_values_supported } : {}),
  });
}
