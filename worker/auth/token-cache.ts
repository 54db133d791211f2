/**
 * Access-token records kept in this isolate for a minute, so that a client's next /mcp request does
 * not read KV again. Reading the token's record was the largest single cost of a tool call in the
 * Worker (bench/exec-latency.ts, (c) − (f)), and in production a KV read that misses the edge cache
 * costs far more than that.
 *
 * Only the read is cached. The OAuth provider still checks everything on every request (audience,
 * expiry, the key unwrapped with the token itself, the props decrypted), because it is handed a KV
 * whose `get` of a `token:` key may come from here (cachedTokenKv) and nothing else changes.
 *
 * Revocation stays immediate:
 * - in this isolate, every revocation forgets the grant's records (forgetGrant);
 * - in every other isolate, the team directory refuses the grant's calls from the moment it is told
 *   of the revocation (TeamDirectory.revokeGrants), and every tool call asks the directory;
 * - what the directory does not see (initialize, ping, a listing of tools, which reads the standing
 *   and so offers nothing to a revoked grant) is at most RECORD_LIFETIME_MS stale, no more than a KV
 *   read across locations is after a delete.
 */

/** Access tokens live this long (the provider is configured with it, worker/index.ts). */
export const ACCESS_TOKEN_TTL_SECONDS = 3600;
/** How long a record read from KV is served from memory. */
export const RECORD_LIFETIME_MS = 60_000;
/** Records kept at most; the oldest goes first (one per client session, so a handful per user). */
const MAX_RECORDS = 2_000;
const TOKEN_PREFIX = 'token:';

interface Kept {
  /** The record as KV returned it (parsed again on every hit, so no request can alter another's copy). */
  json: string;
  until: number;
}

const records = new Map<string, Kept>();

/** The provider's key for an access token is token:USER:GRANT:SHA256; this isolate forgets a grant's. */
export function forgetGrant(userId: string, grantId: string): void {
  const prefix = `${TOKEN_PREFIX}${userId}:${grantId}:`;
  for (const key of records.keys()) if (key.startsWith(prefix)) records.delete(key);
}

function wantsJson(options: unknown): boolean {
  return options === 'json' || (typeof options === 'object' && options !== null && (options as { type?: unknown }).type === 'json');
}

/** A record's expiry (seconds since the epoch) in ms, or 0 when it has none that can be read. */
function expiresAtMs(record: unknown): number {
  const expiresAt = typeof record === 'object' && record !== null ? (record as { expiresAt?: unknown }).expiresAt : undefined;
  return typeof expiresAt === 'number' && Number.isFinite(expiresAt) ? expiresAt * 1000 : 0;
}

async function readToken(kv: KVNamespace, key: string): Promise<unknown> {
  const now = Date.now();
  const kept = records.get(key);
  if (kept && kept.until > now) return JSON.parse(kept.json) as unknown;
  records.delete(key);
  const json = await kv.get(key, 'text');
  if (json === null) return null;
  const record = JSON.parse(json) as unknown;
  // Never kept past the token's own expiry, so the provider sees an expired token as such.
  const until = Math.min(now + RECORD_LIFETIME_MS, expiresAtMs(record));
  if (until > now) {
    if (records.size >= MAX_RECORDS) {
      const oldest = records.keys().next();
      if (!oldest.done) records.delete(oldest.value);
    }
    records.set(key, { json, until });
  }
  return record;
}

/** `kv` with its JSON reads of access-token records served from this isolate's records when fresh. */
export function cachedTokenKv(kv: KVNamespace): KVNamespace {
  return new Proxy(kv, {
    get(target, property) {
      if (property === 'get') {
        return (key: unknown, options?: unknown) =>
          typeof key === 'string' && key.startsWith(TOKEN_PREFIX) && wantsJson(options) ? readToken(target, key) : target.get(key as string, options as 'text');
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const withCache = new WeakMap<Env, Env>();

/** `env` whose OAUTH_KV is cachedTokenKv's: for the provider on /mcp, where tokens are only read. */
export function envWithCachedTokens(env: Env): Env {
  let cached = withCache.get(env);
  if (!cached) {
    cached = { ...env, OAUTH_KV: cachedTokenKv(env.OAUTH_KV) };
    withCache.set(env, cached);
  }
  return cached;
}
