/**
 * OAuth grants revoked while their access tokens may still be held in some isolate's copy
 * (worker/auth/token-cache.ts). The team directory keeps their ids and refuses their calls, so a
 * revocation takes effect at once everywhere, whatever any isolate still holds.
 *
 * An id is kept for an access token's whole lifetime after its revocation: by then every access
 * token of the grant has expired, and its refresh token was deleted with the grant.
 */
import { ACCESS_TOKEN_TTL_SECONDS } from '../auth/token-cache.ts';

const KEY_PREFIX = 'revoked-grant:';
export const REVOKED_GRANT_KEPT_MS = ACCESS_TOKEN_TTL_SECONDS * 1000;
/** Ids accepted in one call, and expired ids deleted in one sweep: both bounded. */
export const MAX_GRANTS_PER_CALL = 1_000;

/** Durable Object storage takes at most this many keys in one put or delete. */
const STORAGE_BATCH = 128;

/** A grant id as the provider makes it (a random string); anything else is not a grant of ours. */
const GRANT_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function revokedGrantKey(grantId: string): string {
  return `${KEY_PREFIX}${grantId}`;
}

export function isGrantId(value: string): boolean {
  return GRANT_ID.test(value);
}

/** Whether a revocation stored at `revokedAt` (ms) still stands at `now`. */
export function stillRevoked(revokedAt: unknown, now: number): boolean {
  return typeof revokedAt === 'number' && now - revokedAt < REVOKED_GRANT_KEPT_MS;
}

/** Record `grantIds` as revoked now and sweep out revocations that no longer matter. */
export async function recordRevokedGrants(storage: DurableObjectStorage, grantIds: readonly string[]): Promise<void> {
  const now = Date.now();
  const valid = [...new Set(grantIds.filter(isGrantId))].slice(0, MAX_GRANTS_PER_CALL);
  // A put takes at most 128 keys at a time.
  for (let start = 0; start < valid.length; start += STORAGE_BATCH) {
    await storage.put(Object.fromEntries(valid.slice(start, start + STORAGE_BATCH).map((id) => [revokedGrantKey(id), now])));
  }
  const kept = await storage.list({ prefix: KEY_PREFIX, limit: MAX_GRANTS_PER_CALL });
  const expired = [...kept].filter(([, revokedAt]) => !stillRevoked(revokedAt, now)).map(([key]) => key);
  for (let start = 0; start < expired.length; start += STORAGE_BATCH) await storage.delete(expired.slice(start, start + STORAGE_BATCH));
}
