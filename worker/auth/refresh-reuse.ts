/**
 * Refresh-token reuse detection, wrapped around the OAuth provider's /token in this one place.
 *
 * Why a wrapper: @cloudflare/workers-oauth-provider (1.2.x) rotates refresh tokens but keeps the
 * previous one valid as a grace for a client that lost the refresh response (storage-schema:
 * `previousRefreshTokenId`), and no option turns that off. With the grace, a stolen refresh token
 * that the client has already exchanged still works, and using it silently hands the grant to the
 * thief. OAuth 2.1 (section 4.3.1) and the OAuth security BCP (RFC 9700, 4.14.2) ask for the opposite: a
 * refresh token presented a second time means two parties hold it, so the whole grant is revoked
 * (the thief's tokens and the client's), and the user signs in again.
 *
 * How: after the provider answers a refresh with success, the presented token's SHA-256 is recorded
 * in OAUTH_KV as exchanged (never the token itself). A refresh presenting a recorded token is refused
 * with invalid_grant, the grant is revoked through the provider's helpers, and an audit row names the
 * user and client. The cost: a client that lost a refresh response and retries with the old token
 * loses its grant too (it must sign in again); that is the price of noticing theft.
 */
import type { OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { z } from 'zod';
import { sha256Hex } from '../../shared/password-hash.ts';
import { writeAudit } from '../audit/audit-log.ts';
import { logEvent } from '../log.ts';

/** Refresh tokens (and so their grants) live this long; the provider is configured with the same. */
export const REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
/** OAUTH_KV key prefix of exchanged refresh tokens; the provider's own keys use other prefixes. */
const EXCHANGED_PREFIX = 'refresh-exchanged:';
/** Grants listed per user while looking for the reused one, at most (pages of the provider's list). */
const MAX_GRANT_PAGES = 20;

const grantMetadata = z.object({ username: z.string(), clientName: z.string().nullable().optional() });

function invalidGrant(): Response {
  return Response.json(
    { error: 'invalid_grant', error_description: 'This refresh token was already used. The grant has been revoked for safety; sign in again.' },
    { status: 400, headers: { 'Cache-Control': 'no-store' } },
  );
}

/** Who the grant belongs to, for the audit row, and whether it still exists. */
async function findGrant(helpers: OAuthHelpers, userId: string, grantId: string): Promise<{ username: string; client: string } | null> {
  let cursor: string | undefined;
  for (let page = 0; page < MAX_GRANT_PAGES; page += 1) {
    const listed = await helpers.listUserGrants(userId, cursor ? { cursor } : {});
    const grant = listed.items.find((item) => item.id === grantId);
    if (grant) {
      const metadata = grantMetadata.safeParse(grant.metadata);
      return { username: metadata.success ? metadata.data.username : userId, client: (metadata.success ? metadata.data.clientName : null) ?? grant.clientId };
    }
    if (!listed.cursor) return null;
    cursor = listed.cursor;
  }
  return null;
}

async function revokeReusedGrant(env: Env, helpers: OAuthHelpers, userId: string, grantId: string): Promise<void> {
  const started = Date.now();
  const grant = await findGrant(helpers, userId, grantId);
  if (grant) await helpers.revokeGrant(grantId, userId);
  logEvent('warn', 'refresh token reused; grant revoked', { userId, grantId, grantFound: grant !== null });
  await writeAudit(env, {
    time: new Date(started).toISOString(),
    user: grant?.username ?? userId,
    client: grant?.client ?? null,
    relay: null,
    host: null,
    tool: 'oauth_refresh',
    target: grant ? 'refresh token reused: grant revoked' : 'refresh token reused: grant already gone',
    outcome: 'denied',
    code: 'refresh_token_reused',
    exitCode: null,
    bytes: null,
    durationMs: Date.now() - started,
  });
}

/**
 * Answer a POST /token: refresh grants go through reuse detection, everything else straight to
 * `next` (the provider). The body has already been read whole by worker/body-limits.ts, so reading
 * a clone here costs nothing.
 */
export async function guardRefreshReuse(request: Request, env: Env, helpers: OAuthHelpers, next: (request: Request) => Promise<Response>): Promise<Response> {
  let form: URLSearchParams;
  try {
    form = new URLSearchParams(new TextDecoder().decode(await request.clone().arrayBuffer()));
  } catch {
    return next(request);
  }
  const refreshToken = form.get('refresh_token');
  if (form.get('grant_type') !== 'refresh_token' || !refreshToken) return next(request);
  // The provider's token format is userId:grantId:secret; anything else it refuses itself.
  const [userId, grantId, secret, ...rest] = refreshToken.split(':');
  if (!userId || !grantId || !secret || rest.length > 0) return next(request);
  const key = `${EXCHANGED_PREFIX}${await sha256Hex(refreshToken)}`;
  if ((await env.OAUTH_KV.get(key)) !== null) {
    await revokeReusedGrant(env, helpers, userId, grantId);
    return invalidGrant();
  }
  const response = await next(request);
  if (response.status === 200) {
    await env.OAUTH_KV.put(key, grantId, { expirationTtl: REFRESH_TOKEN_TTL_SECONDS });
  }
  return response;
}
