import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { REFRESH_TOKEN_TTL_SECONDS } from '../../worker/auth/refresh-reuse.ts';

/** A ledger of its own, as for one grant: idFromName(grantId) in the Worker. */
function freshLedger() {
  return env.REFRESH_LEDGER.get(env.REFRESH_LEDGER.idFromName(`grant-${crypto.randomUUID()}`));
}

describe('RefreshLedger (one per grant)', () => {
  it('lets each token through once, and calls an exchanged token coming back reuse', async () => {
    const ledger = freshLedger();
    expect(await ledger.claim('h1')).toBe('fresh');
    expect(await ledger.settle('h1', 'exchanged')).toBe('keep');
    expect(await ledger.claim('h2')).toBe('fresh');
    expect(await ledger.settle('h2', 'exchanged')).toBe('keep');
    expect(await ledger.claim('h1')).toBe('reused');
    // Once caught, every token of the grant is reuse, even one never seen.
    expect(await ledger.claim('h3')).toBe('reused');
  });

  it('holds a token presented again while pending, and calls it reuse when the first turns out valid', async () => {
    const ledger = freshLedger();
    const claims = await Promise.all([ledger.claim('h1'), ledger.claim('h1'), ledger.claim('h1')]);
    expect(claims.sort()).toEqual(['contested', 'contested', 'fresh']);
    expect(await ledger.settle('h1', 'exchanged')).toBe('reused');
    expect(await ledger.claim('h2')).toBe('reused');
  });

  it('forgets a refused claim, contested or not, so a made-up secret leaves no mark', async () => {
    const ledger = freshLedger();
    expect(await ledger.claim('forged')).toBe('fresh');
    expect(await ledger.claim('forged')).toBe('contested');
    expect(await ledger.settle('forged', 'refused')).toBe('keep');
    expect(await ledger.claim('forged')).toBe('fresh');
    expect(await ledger.settle('forged', 'refused')).toBe('keep');
    // Nothing stored and no alarm: a made-up grant id costs no storage.
    await runInDurableObject(ledger, async (_instance, state) => {
      expect((await state.storage.list()).size).toBe(0);
      expect(await state.storage.getAlarm()).toBeNull();
    });
    expect(await ledger.claim('h1')).toBe('fresh');
    expect(await ledger.settle('h1', 'exchanged')).toBe('keep');
  });

  it('tells a refresh that was at the provider when reuse was caught to revoke again', async () => {
    const ledger = freshLedger();
    expect(await ledger.claim('h1')).toBe('fresh');
    expect(await ledger.settle('h1', 'exchanged')).toBe('keep');
    // h2 (the current token) is at the provider when h1 (the old one) comes back.
    expect(await ledger.claim('h2')).toBe('fresh');
    expect(await ledger.claim('h1')).toBe('reused');
    // The provider's write for h2 may have brought the revoked grant back: revoke it again.
    expect(await ledger.settle('h2', 'exchanged')).toBe('revoke-again');
  });

  it('keeps its records for the refresh-token lifetime after the last write, then an alarm deletes them', async () => {
    const ledger = freshLedger();
    const before = Date.now();
    expect(await ledger.claim('h1')).toBe('fresh');
    expect(await ledger.settle('h1', 'exchanged')).toBe('keep');
    await runInDurableObject(ledger, async (_instance, state) => {
      const alarm = await state.storage.getAlarm();
      expect(alarm).not.toBeNull();
      expect(alarm ?? 0).toBeGreaterThanOrEqual(before + REFRESH_TOKEN_TTL_SECONDS * 1000);
    });
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    await runInDurableObject(ledger, async (_instance, state) => {
      expect((await state.storage.list()).size).toBe(0);
    });
    expect(await ledger.claim('h1')).toBe('fresh');
  });
});
