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
 * How: every refresh of a grant goes through that grant's RefreshLedger (worker/auth/refresh-ledger.ts),
 * a Durable Object that decides atomically, before the provider sees the token, whether its SHA-256
 * (never the token itself) was seen before. First sight: recorded as pending and handed to the
 * provider; a 200 marks it exchanged, a refusal forgets it (so a made-up secret naming the grant
 * leaves no mark). Already exchanged: refused with invalid_grant, the grant is revoked through the
 * provider's helpers, and an audit row names the user and client. Presented again while the first
 * is still at the provider: refused at once, and if the first then succeeds the token was valid and
 * held twice, so the grant is revoked and that 200 is replaced by invalid_grant too. A check in KV
 * could not do this: two simultaneous refreshes both read "not seen" and both got new tokens, and KV
 * reads are eventually consistent across locations. The cost: a client that lost a refresh response
 * and retries with the old token loses its grant too (it must sign in again); that is the price of
 * noticing theft. A refresh whose Worker died while its token was pending leaves the token refused
 * until the ledger expires; the client signs in again.
 */
import type { OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { z } from 'zod';
import { sha256Hex } from './password-hash.ts';
import { writeAudit } from '../audit/audit-log.ts';
import { announceRevokedGrants } from './grant-revocation.ts';
import { tokenForm, tokenParts } from './token-form.ts';
import { logEvent } from '../log.ts';
import type { RefreshLedger } from './refresh-ledger.ts';

/** Refresh tokens (and so their grants) live this long; the provider is configured with the same. */
export const REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
/** Grants listed per user while looking for the reused one, at most (pages of the provider's list). */
const MAX_GRANT_PAGES = 20;

const grantMetadata = z.object({ username: z.string(), clientName: z.string().nullable().optional() });

const REUSED = 'This refresh token was already used. The grant has been revoked for safety; sign in again.';
const CONTESTED = 'This refresh token is being exchanged by another request right now; if that succeeds, the grant is revoked for safety.';

function invalidGrant(description: string = REUSED): Response {
  return Response.json({ error: 'invalid_grant', error_description: description }, { status: 400, headers: { 'Cache-Control': 'no-store' } });
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
  // Announced whether or not the listing finds the grant: the ledger has proven the id real.
  await announceRevokedGrants(env, userId, [grantId]);
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
  const form = await tokenForm(request);
  const refreshToken = form?.get('refresh_token');
  if (form?.get('grant_type') !== 'refresh_token' || !refreshToken) return next(request);
  const parts = tokenParts(refreshToken);
  if (!parts) return next(request);
  const { userId, grantId } = parts;
  const tokenHash = await sha256Hex(refreshToken);
  const ledger = refreshLedger(env, grantId);
  const claim = await ledger.claim(tokenHash);
  if (claim === 'reused') {
    await revokeReusedGrant(env, helpers, userId, grantId);
    return invalidGrant();
  }
  if (claim === 'contested') return invalidGrant(CONTESTED);
  const response = await next(request);
  // A 4xx is the provider's refusal, decided before it writes anything. A 5xx or a throw may come
  // after it rotated the grant, so the claim stays pending (refused if presented again).
  if (response.status >= 400 && response.status < 500) {
    await ledger.settle(tokenHash, 'refused');
    return response;
  }
  if (response.status !== 200) return response;
  const settled = await ledger.settle(tokenHash, 'exchanged');
  if (settled === 'keep') return response;
  await response.body?.cancel();
  if (settled === 'reused') await revokeReusedGrant(env, helpers, userId, grantId);
  else {
    await announceRevokedGrants(env, userId, [grantId]);
    await helpers.revokeGrant(grantId, userId);
  }
  return invalidGrant();
}

function refreshLedger(env: Env, grantId: string): DurableObjectStub<RefreshLedger> {
  return env.REFRESH_LEDGER.get(env.REFRESH_LEDGER.idFromName(grantId));
}
