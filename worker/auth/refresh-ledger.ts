/**
 * The refresh-token ledger of one OAuth grant: a Durable Object per grant id (`idFromName(grantId)`),
 * so every refresh of a grant, from anywhere, is decided by one single-threaded object with strongly
 * consistent storage. KV could not do this: its read-then-write lets two simultaneous refreshes both
 * pass, and its reads are eventually consistent across locations.
 *
 * Storage keys (only SHA-256 hashes of refresh tokens, never a token):
 * - `token:<sha256>`: `{ state: 'pending' | 'exchanged', contested }`. Pending: handed to the provider,
 *   no answer yet. Exchanged: the provider rotated it. Contested: presented again while pending.
 * - `revoked`: `true` once reuse was found; from then on every refresh of the grant is reuse.
 * Everything goes when the alarm fires, REFRESH_TOKEN_TTL_SECONDS after the last write: by then every
 * refresh token of the grant has expired at the provider.
 *
 * Each method runs its reads and writes without an await on anything but this object's storage, so
 * the input gate delivers no other call in between: a claim is atomic.
 */
import { DurableObject } from 'cloudflare:workers';
import { REFRESH_TOKEN_TTL_SECONDS } from './refresh-reuse.ts';

interface TokenEntry {
  state: 'pending' | 'exchanged';
  contested: boolean;
}

/**
 * fresh: first time seen, now pending; hand it to the provider and settle the answer.
 * reused: already exchanged, or the grant was already caught; revoke the grant.
 * contested: another request holds it pending right now; refuse this one without asking the
 * provider. Whether that means theft is known only when the pending one settles (see settle).
 */
export type ClaimResult = 'fresh' | 'reused' | 'contested';

/**
 * keep: answer as the provider did. reused: this token was also presented while pending, so it is
 * reuse found now; revoke the grant, audit it, refuse. revoke-again: reuse of another token was found
 * (and audited) while this one was at the provider; revoke again (the provider's write may have
 * brought the grant back) and refuse.
 */
export type SettleResult = 'keep' | 'reused' | 'revoke-again';

const REVOKED_KEY = 'revoked';
const tokenKey = (tokenHash: string): string => `token:${tokenHash}`;

export class RefreshLedger extends DurableObject<Env> {
  async claim(tokenHash: string): Promise<ClaimResult> {
    const key = tokenKey(tokenHash);
    const [revoked, entry] = await Promise.all([this.ctx.storage.get<boolean>(REVOKED_KEY), this.ctx.storage.get<TokenEntry>(key)]);
    if (revoked === true || entry?.state === 'exchanged') {
      await this.ctx.storage.put(REVOKED_KEY, true);
      await this.keepUntilExpiry();
      return 'reused';
    }
    if (entry?.state === 'pending') {
      await this.ctx.storage.put(key, { state: 'pending', contested: true } satisfies TokenEntry);
      return 'contested';
    }
    await this.ctx.storage.put(key, { state: 'pending', contested: false } satisfies TokenEntry);
    await this.keepUntilExpiry();
    return 'fresh';
  }

  /**
   * The provider answered a fresh claim. exchanged: it rotated the token (200). refused: it said no
   * (4xx, decided before it writes anything), so the claim is forgotten and a made-up secret that
   * names this grant leaves no mark. Any answer but keep means the grant must be revoked after the
   * provider's write: the provider reads the grant, then writes it back rotated, so a revocation
   * that landed in between would otherwise be undone.
   */
  async settle(tokenHash: string, outcome: 'exchanged' | 'refused'): Promise<SettleResult> {
    const key = tokenKey(tokenHash);
    const [revoked, entry] = await Promise.all([this.ctx.storage.get<boolean>(REVOKED_KEY), this.ctx.storage.get<TokenEntry>(key)]);
    if (outcome === 'refused') {
      // A refusal is already an answer no one can use; nothing to revoke even if reuse was found meanwhile.
      if (entry?.state === 'pending') await this.ctx.storage.delete(key);
      if ((await this.ctx.storage.list({ limit: 1 })).size === 0) await this.ctx.storage.deleteAlarm();
      return 'keep';
    }
    // A valid token that someone else presented while it was pending: two parties hold it.
    if (revoked === true || entry?.contested === true) {
      await this.ctx.storage.put({ [REVOKED_KEY]: true, [key]: { state: 'exchanged', contested: entry?.contested ?? false } satisfies TokenEntry });
      await this.keepUntilExpiry();
      return revoked === true ? 'revoke-again' : 'reused';
    }
    await this.ctx.storage.put(key, { state: 'exchanged', contested: false } satisfies TokenEntry);
    await this.keepUntilExpiry();
    return 'keep';
  }

  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }

  private async keepUntilExpiry(): Promise<void> {
    await this.ctx.storage.setAlarm(Date.now() + REFRESH_TOKEN_TTL_SECONDS * 1000);
  }
}
