import { env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { auditLog, auditQuerySchema } from '../../worker/audit/audit-log.ts';
import { authorize, exchangeCode, INITIALIZE, mcpPost, TEST_ADMIN } from './oauth-flow.ts';
import { BASE_URL } from './relay-socket.ts';

const tokenSet = z.object({ access_token: z.string(), refresh_token: z.string() });
type TokenSet = z.infer<typeof tokenSet>;

async function signedIn(): Promise<{ clientId: string; tokens: TokenSet }> {
  const { clientId, verifier, result } = await authorize();
  const code = result.location ? new URL(result.location).searchParams.get('code') : null;
  if (!code) throw new Error(`no code: ${result.status}`);
  const response = await exchangeCode(clientId, code, verifier);
  return { clientId, tokens: tokenSet.parse(await response.json()) };
}

function refresh(clientId: string, refreshToken: string): Promise<Response> {
  return SELF.fetch(`${BASE_URL}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }),
  });
}

async function refreshed(clientId: string, refreshToken: string): Promise<TokenSet> {
  const response = await refresh(clientId, refreshToken);
  expect(response.status).toBe(200);
  return tokenSet.parse(await response.json());
}

async function works(accessToken: string): Promise<boolean> {
  const response = await mcpPost(accessToken, INITIALIZE);
  await response.body?.cancel();
  return response.status === 200;
}

async function reuseRows(): Promise<number> {
  const rows = await auditLog(env).query(auditQuerySchema.parse({ tool: 'oauth_refresh', user: TEST_ADMIN.username, limit: 10_000 }));
  return rows.filter((row) => row.code === 'refresh_token_reused' && row.outcome === 'denied' && row.client === 'pool test client').length;
}

describe('refresh token rotation with reuse detection', () => {
  it('rotates R2 to R3 when no token is reused, and every new token works', async () => {
    const { clientId, tokens } = await signedIn();
    const second = await refreshed(clientId, tokens.refresh_token);
    const third = await refreshed(clientId, second.refresh_token);
    expect(third.refresh_token).not.toBe(second.refresh_token);
    expect(await works(third.access_token)).toBe(true);
    expect((await refreshed(clientId, third.refresh_token)).access_token).toBeTruthy();
  });

  it('revokes the whole grant when an exchanged refresh token comes back, and audits it', async () => {
    const before = await reuseRows();
    const { clientId, tokens } = await signedIn();
    const second = await refreshed(clientId, tokens.refresh_token);
    expect(await works(second.access_token)).toBe(true);

    // R1 again: the provider alone would accept it (its grace for the previous token).
    const replay = await refresh(clientId, tokens.refresh_token);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });

    expect(await works(second.access_token)).toBe(false);
    expect((await refresh(clientId, second.refresh_token)).status).toBe(400);
    expect(await works(tokens.access_token)).toBe(false);
    expect(await reuseRows()).toBe(before + 1);
  });

  it('revokes the grant when a token two rotations old comes back', async () => {
    const { clientId, tokens } = await signedIn();
    const second = await refreshed(clientId, tokens.refresh_token);
    const third = await refreshed(clientId, second.refresh_token);
    expect((await refresh(clientId, tokens.refresh_token)).status).toBe(400);
    expect(await works(third.access_token)).toBe(false);
    expect((await refresh(clientId, third.refresh_token)).status).toBe(400);
  });

  it('leaves other grants of the same user alone', async () => {
    const victim = await signedIn();
    const bystander = await signedIn();
    await refreshed(victim.clientId, victim.tokens.refresh_token);
    expect((await refresh(victim.clientId, victim.tokens.refresh_token)).status).toBe(400);
    expect(await works(bystander.tokens.access_token)).toBe(true);
    expect((await refreshed(bystander.clientId, bystander.tokens.refresh_token)).access_token).toBeTruthy();
  });

  it('does not revoke a grant for a made-up token that names it', async () => {
    const { clientId, tokens } = await signedIn();
    const [userId, grantId] = tokens.refresh_token.split(':');
    expect((await refresh(clientId, `${userId}:${grantId}:not-a-real-secret`)).status).toBe(400);
    expect(await works(tokens.access_token)).toBe(true);
    expect((await refreshed(clientId, tokens.refresh_token)).access_token).toBeTruthy();
  });

  it('a refresh token presented twice at once yields at most one new token set, and the grant is revoked', async () => {
    const before = await reuseRows();
    const { clientId, tokens } = await signedIn();
    // The thief and the client race with the same token: the grant must not survive for either.
    const answers = await Promise.all([refresh(clientId, tokens.refresh_token), refresh(clientId, tokens.refresh_token)]);
    const bodies: unknown[] = await Promise.all(answers.map((answer) => answer.json()));
    expect(answers.filter((answer) => answer.status === 200).length).toBeLessThanOrEqual(1);
    for (const [i, answer] of answers.entries()) {
      if (answer.status !== 200) {
        expect(answer.status).toBe(400);
        expect(bodies[i]).toMatchObject({ error: 'invalid_grant' });
      }
    }
    // Every token of the grant is dead: the original pair and whatever a 200 handed out.
    const issued = bodies.map((body) => tokenSet.safeParse(body)).flatMap((parsed) => (parsed.success ? [parsed.data] : []));
    for (const set of [tokens, ...issued]) {
      expect(await works(set.access_token)).toBe(false);
      expect((await refresh(clientId, set.refresh_token)).status).toBe(400);
    }
    expect(await reuseRows()).toBeGreaterThan(before);
  });

  it('a made-up secret that names the grant, presented twice or twice at once, leaves the grant alone', async () => {
    const before = await reuseRows();
    const { clientId, tokens } = await signedIn();
    const [userId, grantId] = tokens.refresh_token.split(':');
    const forged = `${userId}:${grantId}:not-the-secret-${crypto.randomUUID()}`;
    expect((await refresh(clientId, forged)).status).toBe(400);
    expect((await refresh(clientId, forged)).status).toBe(400);
    const together = await Promise.all([refresh(clientId, forged), refresh(clientId, forged), refresh(clientId, forged)]);
    expect(together.map((answer) => answer.status)).toEqual([400, 400, 400]);
    expect(await works(tokens.access_token)).toBe(true);
    const second = await refreshed(clientId, tokens.refresh_token);
    expect(await works(second.access_token)).toBe(true);
    expect(await reuseRows()).toBe(before);
  });

  it('a refresh the provider refuses (another client) does not mark the token; its owner can still use it', async () => {
    const victim = await signedIn();
    const other = await signedIn();
    // Same token, wrong client: the provider says invalid_grant before writing anything.
    expect((await refresh(other.clientId, victim.tokens.refresh_token)).status).toBe(400);
    const second = await refreshed(victim.clientId, victim.tokens.refresh_token);
    expect(await works(second.access_token)).toBe(true);
  });
});
