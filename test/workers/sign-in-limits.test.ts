import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { signIn, type SignInResult } from '../../worker/auth/accounts.ts';
import { hashPassword } from '../../worker/auth/password-hash.ts';
import { ACCOUNT_FAILURES_ALLOWED, ADDRESS_FAILURES_ALLOWED, FAILURE_WINDOW_MS, PENDING_ATTEMPT_MS, teamDirectory } from '../../worker/team/team-directory.ts';

const GUESSES = 30;

type Team = ReturnType<typeof teamDirectory>;

/** The stored sign-in counters of one key, as TeamDirectory keeps them. */
interface StoredWindow {
  count: number;
  since: number;
  pending?: number[];
}

/** Move a key's counters `ms` into the past, as if that much time had gone by. */
async function age(team: Team, key: string, ms: number): Promise<void> {
  await runInDurableObject(team, async (_instance, state) => {
    const stored = await state.storage.get<StoredWindow>(key);
    if (!stored) throw new Error(`no counters under ${key}`);
    await state.storage.put(key, { ...stored, since: stored.since - ms, pending: (stored.pending ?? []).map((started) => started - ms) });
  });
}

/** A built-in user of the deployment's team, with a password only this test knows. */
async function userWithPassword(): Promise<{ name: string; password: string }> {
  const name = `victim-${crypto.randomUUID().slice(0, 8)}`;
  const password = `right-${crypto.randomUUID()}`;
  const added = await teamDirectory(env).addUser(name, await hashPassword(password, 20_000), []);
  expect(added.ok).toBe(true);
  return { name, password };
}

/** Attempts whose password was checked: every answer but rate_limited (accounts.ts refuses those before hashing). */
function checked(results: SignInResult[]): number {
  return results.filter((result) => result.ok || result.reason !== 'rate_limited').length;
}

describe('sign-in rate limits under parallel guesses', () => {
  it(`checks only ${ACCOUNT_FAILURES_ALLOWED} of ${GUESSES} simultaneous wrong passwords for one account, from many addresses`, async () => {
    const { name, password } = await userWithPassword();
    // Each guess from its own address, as from a botnet: only the account limit can hold them.
    const results = await Promise.all(Array.from({ length: GUESSES }, (_, i) => signIn(env, name, `guess-${i}`, `198.51.100.${i + 1}`)));
    expect(checked(results)).toBe(ACCOUNT_FAILURES_ALLOWED);
    for (const result of results) expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/^(invalid_credentials|rate_limited)$/) });
    // The account is locked now, even for the right password.
    expect(await signIn(env, name, password, '192.0.2.200')).toMatchObject({ ok: false, reason: 'rate_limited' });
    // After the window, the right password works.
    await age(teamDirectory(env), `fail:account:${name}`, FAILURE_WINDOW_MS);
    expect(await signIn(env, name, password, '192.0.2.200')).toMatchObject({ ok: true, identity: { username: name } });
  });

  it(`checks only ${ADDRESS_FAILURES_ALLOWED} of ${GUESSES} simultaneous wrong passwords from one address, across accounts`, async () => {
    const { name, password } = await userWithPassword();
    const address = `2001:db8::${crypto.randomUUID().slice(0, 4)}`;
    // A different account each time, so no account reaches its own limit.
    const results = await Promise.all(
      Array.from({ length: GUESSES }, (_, i) => signIn(env, `guess-${i}-${crypto.randomUUID().slice(0, 6)}`, 'wrong', address)),
    );
    expect(checked(results)).toBe(ADDRESS_FAILURES_ALLOWED);
    expect(await signIn(env, name, password, address)).toMatchObject({ ok: false, reason: 'rate_limited' });
    await age(teamDirectory(env), `fail:address:${address}`, FAILURE_WINDOW_MS);
    expect(await signIn(env, name, password, address)).toMatchObject({ ok: true });
  });
});

describe('TeamDirectory sign-in attempts in flight', () => {
  function freshTeam(): Team {
    return env.TEAM_DIRECTORY.get(env.TEAM_DIRECTORY.idFromName(`test-${crypto.randomUUID()}`));
  }

  it('counts an attempt against the limits from the moment it begins', async () => {
    const team = freshTeam();
    for (let i = 0; i < ACCOUNT_FAILURES_ALLOWED; i += 1) expect((await team.beginSignIn('olga', `192.0.2.${i}`)).locked).toBe(false);
    const gate = await team.beginSignIn('olga', '192.0.2.99');
    expect(gate.locked).toBe(true);
    expect(gate.locked && gate.retryAfterSeconds).toBeGreaterThan(0);
    expect(gate.locked && gate.retryAfterSeconds).toBeLessThanOrEqual(PENDING_ATTEMPT_MS / 1000);
  });

  it('stops counting an attempt that never finishes after PENDING_ATTEMPT_MS, so it cannot lock an account for good', async () => {
    const team = freshTeam();
    for (let i = 0; i < ACCOUNT_FAILURES_ALLOWED; i += 1) await team.beginSignIn('pete', '192.0.2.10');
    expect((await team.beginSignIn('pete', '192.0.2.10')).locked).toBe(true);
    await age(team, 'fail:account:pete', PENDING_ATTEMPT_MS);
    await age(team, 'fail:address:192.0.2.10', PENDING_ATTEMPT_MS);
    // The stale attempts are gone, not just the oldest: a full set of new ones fits, and then the limit holds again.
    for (let i = 0; i < ACCOUNT_FAILURES_ALLOWED; i += 1) expect((await team.beginSignIn('pete', '192.0.2.10')).locked).toBe(false);
    expect((await team.beginSignIn('pete', '192.0.2.10')).locked).toBe(true);
  });

  it('a failure that settles stays counted after its attempt would have expired', async () => {
    const team = freshTeam();
    for (let i = 0; i < ACCOUNT_FAILURES_ALLOWED; i += 1) {
      expect((await team.beginSignIn('quinn', '192.0.2.20')).locked).toBe(false);
      await team.finishSignIn('quinn', '192.0.2.20', false);
    }
    await age(team, 'fail:account:quinn', PENDING_ATTEMPT_MS);
    expect((await team.beginSignIn('quinn', '192.0.2.21')).locked).toBe(true);
  });

  it('a success settles only its own attempt: other guesses in flight still count', async () => {
    const team = freshTeam();
    // Four guesses in flight, then the owner signs in successfully.
    for (let i = 0; i < ACCOUNT_FAILURES_ALLOWED - 1; i += 1) await team.beginSignIn('rosa', `198.51.100.${i}`);
    expect((await team.beginSignIn('rosa', '192.0.2.30')).locked).toBe(false);
    await team.finishSignIn('rosa', '192.0.2.30', true);
    // Failures cleared, but the four guesses still count: only one more attempt fits.
    expect((await team.beginSignIn('rosa', '198.51.100.50')).locked).toBe(false);
    expect((await team.beginSignIn('rosa', '198.51.100.51')).locked).toBe(true);
  });

  it('a success refunds its attempt to the address without clearing the address failures', async () => {
    const team = freshTeam();
    const address = '203.0.113.40';
    for (let i = 0; i < ADDRESS_FAILURES_ALLOWED - 1; i += 1) await team.finishSignIn(`guess${i}`, address, false);
    expect((await team.beginSignIn('sam', address)).locked).toBe(false);
    // While sam's attempt is in flight the address is full.
    expect((await team.beginSignIn('tess', address)).locked).toBe(true);
    await team.finishSignIn('sam', address, true);
    expect((await team.beginSignIn('tess', address)).locked).toBe(false);
  });
});
