/**
 * Access-token records kept in the isolate (worker/auth/token-cache.ts), and the team directory's
 * list of revoked grants that keeps revocation immediate in spite of them (worker/team/revoked-grants.ts).
 */
import { env, SELF } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cachedTokenKv, forgetGrant, RECORD_LIFETIME_MS } from '../../worker/auth/token-cache.ts';
import { randomBytes, toBase64Url } from '../../shared/encoding.ts';
import { sha256Hex } from '../../worker/auth/password-hash.ts';
import { REVOKED_GRANT_KEPT_MS } from '../../worker/team/revoked-grants.ts';
import type { TransferRecord } from '../../worker/transfers/transfer-link.ts';
import { teamDirectory } from '../../worker/team/team-directory.ts';
import { authorize, exchangeCode, INITIALIZE, mcpPost, openMcpSession } from './oauth-flow.ts';
import { BASE_URL } from './relay-socket.ts';

/** A KV that counts its reads, holding what the test puts in it. */
function countingKv(): { kv: KVNamespace; reads: string[]; values: Map<string, string> } {
  const reads: string[] = [];
  const values = new Map<string, string>();
  const kv = {
    get: async (key: string, _options?: unknown) => {
      reads.push(key);
      return values.get(key) ?? null;
    },
  } as unknown as KVNamespace;
  return { kv, reads, values };
}

const NOW_S = () => Math.floor(Date.now() / 1000);

/** A fresh sign-in of the pool's admin: its client and both tokens. */
async function signIn(): Promise<{ clientId: string; access: string; refresh: string }> {
  const { clientId, verifier, result } = await authorize();
  const code = result.location ? new URL(result.location).searchParams.get('code') : null;
  if (!code) throw new Error(`no code: ${result.status}`);
  const tokens = (await (await exchangeCode(clientId, code, verifier)).json()) as { access_token: string; refresh_token: string };
  return { clientId, access: tokens.access_token, refresh: tokens.refresh_token };
}

async function accessToken(): Promise<string> {
  return (await signIn()).access;
}

/** A client revoking one of its own tokens (RFC 7009), as the provider takes it at /token. */
function revokeAtTokenEndpoint(clientId: string, token: string): Promise<Response> {
  return SELF.fetch(`${BASE_URL}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: clientId }),
  });
}

function grantParts(token: string): { userId: string; grantId: string } {
  const [userId, grantId] = token.split(':');
  if (!userId || !grantId) throw new Error(`not a provider token: ${token.slice(0, 8)}…`);
  return { userId, grantId };
}

async function toolText(token: string, sessionId: string, name: string): Promise<string> {
  const response = await mcpPost(token, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: {} } }, sessionId);
  expect(response.status).toBe(200);
  return response.text();
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the isolate copy of access-token records', () => {
  it('reads a record from KV once, then from memory until its minute is up', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { kv, reads, values } = countingKv();
    const key = `token:u1:g1:${'a'.repeat(64)}`;
    values.set(key, JSON.stringify({ expiresAt: NOW_S() + 3600, marker: 'first' }));
    const cached = cachedTokenKv(kv);
    expect(await cached.get(key, { type: 'json' })).toMatchObject({ marker: 'first' });
    expect(await cached.get(key, { type: 'json' })).toMatchObject({ marker: 'first' });
    expect(reads).toEqual([key]);
    vi.setSystemTime(Date.now() + RECORD_LIFETIME_MS + 1);
    values.set(key, JSON.stringify({ expiresAt: NOW_S() + 3600, marker: 'second' }));
    expect(await cached.get(key, { type: 'json' })).toMatchObject({ marker: 'second' });
    expect(reads).toEqual([key, key]);
    forgetGrant('u1', 'g1');
  });

  it('never keeps a record past its token expiry, nor an absent one, nor anything but a token', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { kv, reads, values } = countingKv();
    const soon = `token:u2:g1:${'b'.repeat(64)}`;
    const absent = `token:u2:g2:${'c'.repeat(64)}`;
    values.set(soon, JSON.stringify({ expiresAt: NOW_S() + 5 }));
    values.set('client:x', JSON.stringify({ clientId: 'x' }));
    const cached = cachedTokenKv(kv);
    await cached.get(soon, { type: 'json' });
    vi.setSystemTime(Date.now() + 6_000);
    // The provider must see the expired record itself (it answers "expired"), so it is read again.
    expect(await cached.get(soon, { type: 'json' })).toMatchObject({ expiresAt: expect.any(Number) });
    expect(await cached.get(absent, { type: 'json' })).toBeNull();
    expect(await cached.get(absent, { type: 'json' })).toBeNull();
    await cached.get('client:x', { type: 'json' });
    await cached.get('client:x', { type: 'json' });
    expect(reads).toEqual([soon, soon, absent, absent, 'client:x', 'client:x']);
    forgetGrant('u2', 'g1');
    forgetGrant('u2', 'g2');
  });

  it('forgets a revoked grant at once, and only that grant', async () => {
    const { kv, reads, values } = countingKv();
    const revoked = `token:u3:g1:${'d'.repeat(64)}`;
    const other = `token:u3:g2:${'e'.repeat(64)}`;
    for (const key of [revoked, other]) values.set(key, JSON.stringify({ expiresAt: NOW_S() + 3600 }));
    const cached = cachedTokenKv(kv);
    await cached.get(revoked, { type: 'json' });
    await cached.get(other, { type: 'json' });
    forgetGrant('u3', 'g1');
    values.delete(revoked);
    expect(await cached.get(revoked, { type: 'json' })).toBeNull();
    await cached.get(other, { type: 'json' });
    expect(reads).toEqual([revoked, other, revoked]);
    forgetGrant('u3', 'g2');
  });

  it('hands each reader its own copy: one request cannot change what the next one reads', async () => {
    const { kv, values } = countingKv();
    const key = `token:u4:g1:${'f'.repeat(64)}`;
    values.set(key, JSON.stringify({ expiresAt: NOW_S() + 3600, scope: ['mcp'] }));
    const cached = cachedTokenKv(kv);
    const first = (await cached.get(key, { type: 'json' })) as { scope: string[] };
    first.scope.push('admin');
    expect(await cached.get(key, { type: 'json' })).toMatchObject({ scope: ['mcp'] });
    forgetGrant('u4', 'g1');
  });
});

describe('a grant revoked while another isolate still holds its token', () => {
  it('is refused by the team directory at the next tool call, though the token itself still passes here', async () => {
    const token = await accessToken();
    const sessionId = await openMcpSession(token);
    // A call before: the token's record is now in this isolate's copy, and the caller (an admin) is in good standing.
    expect(await toolText(token, sessionId, 'relay_ping')).not.toContain('revoked');
    const listed = async (): Promise<string> => (await mcpPost(token, { jsonrpc: '2.0', id: 8, method: 'tools/list', params: {} }, sessionId)).text();
    expect(await listed()).toContain('"audit_log"');
    // Another isolate revokes the grant: the record leaves KV and the directory is told; this isolate hears nothing.
    const { userId, grantId } = grantParts(token);
    const records = await env.OAUTH_KV.list({ prefix: `token:${userId}:${grantId}:` });
    expect(records.keys.length).toBeGreaterThan(0);
    for (const { name } of records.keys) await env.OAUTH_KV.delete(name);
    await teamDirectory(env).revokeGrants([grantId]);
    // The token still passes this isolate's provider (its record is the copy)...
    const initialized = await mcpPost(token, INITIALIZE);
    await initialized.body?.cancel();
    expect(initialized.status).toBe(200);
    // ...and every call that would do something is refused.
    const refused = await toolText(token, sessionId, 'relay_ping');
    expect(refused).toContain('This sign-in was revoked');
    expect(await toolText(token, sessionId, 'ssh_list_jobs')).toContain('This sign-in was revoked');
    // A listing reads the standing too: an admin's audit tool is no longer offered.
    expect(await listed()).not.toContain('"audit_log"');
  });

  it("does not touch the same user's other grants", async () => {
    const kept = await accessToken();
    const revoked = await accessToken();
    const keptSession = await openMcpSession(kept);
    await teamDirectory(env).revokeGrants([grantParts(revoked).grantId]);
    expect(await toolText(kept, keptSession, 'relay_ping')).not.toContain('revoked');
  });

  it('stops counting once every access token of the grant has expired, and ignores ids that are not grant ids', async () => {
    const directory = teamDirectory(env);
    const grantId = `g${crypto.randomUUID().replaceAll('-', '')}`;
    await directory.revokeGrants([grantId, 'not a grant id', 'x'.repeat(500)]);
    expect(await directory.access('admin', grantId)).toMatchObject({ active: false, grantRevoked: true });
    expect(await directory.access('admin', 'not a grant id')).toMatchObject({ active: true });
    expect(await directory.access('admin')).toMatchObject({ active: true });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + REVOKED_GRANT_KEPT_MS + 1000);
    expect(await directory.access('admin', grantId)).toMatchObject({ active: true });
  });

  it('holds every id of a revocation of hundreds of grants, across its storage writes of 128', async () => {
    const directory = teamDirectory(env);
    const ids = Array.from({ length: 300 }, (_, index) => `many${index}x${crypto.randomUUID().slice(0, 8)}`);
    await directory.revokeGrants(ids);
    for (const id of [ids[0], ids[127], ids[128], ids[299]]) expect(await directory.access('admin', id)).toMatchObject({ grantRevoked: true });
  });
});

describe("a client's own revocation at /token (RFC 7009)", () => {
  it('of its refresh token revokes the grant in the directory too, and the access token stops at once', async () => {
    const { clientId, access, refresh } = await signIn();
    const sessionId = await openMcpSession(access);
    expect(await toolText(access, sessionId, 'relay_ping')).not.toContain('revoked');
    const revoked = await revokeAtTokenEndpoint(clientId, refresh);
    expect(revoked.status).toBe(200);
    expect(await teamDirectory(env).access('admin', grantParts(access).grantId)).toMatchObject({ active: false, grantRevoked: true });
    const after = await mcpPost(access, INITIALIZE);
    await after.body?.cancel();
    expect(after.status).toBe(401);
  });

  it('of one access token stops that token here and leaves the grant alone', async () => {
    const { clientId, access } = await signIn();
    await openMcpSession(access);
    expect((await revokeAtTokenEndpoint(clientId, access)).status).toBe(200);
    const after = await mcpPost(access, INITIALIZE);
    await after.body?.cancel();
    expect(after.status).toBe(401);
    expect(await teamDirectory(env).access('admin', grantParts(access).grantId)).toMatchObject({ active: true });
  });

  it('of a token the client does not own changes nothing', async () => {
    const owner = await signIn();
    const other = await signIn();
    const sessionId = await openMcpSession(owner.access);
    expect((await revokeAtTokenEndpoint(other.clientId, owner.refresh)).status).toBe(200);
    expect(await teamDirectory(env).access('admin', grantParts(owner.access).grantId)).toMatchObject({ active: true });
    expect(await toolText(owner.access, sessionId, 'relay_ping')).not.toContain('revoked');
  });
});

describe('a transfer link asked for under a grant', () => {
  /** A download link of the pool's admin, made under `grantId`, as ssh_request_download makes them. */
  async function linkUnder(grantId: string): Promise<string> {
    const id = crypto.randomUUID().replaceAll('-', '');
    const token = toBase64Url(randomBytes(32));
    const now = Date.now();
    const record: TransferRecord = {
      id,
      kind: 'download',
      userId: 'admin',
      username: 'admin',
      client: null,
      grantId,
      relay: 'no-such-relay',
      host: 'web1',
      path: '/etc/hostname',
      overwrite: false,
      tokenHash: await sha256Hex(token),
      createdAt: now,
      expiresAt: now + 60_000,
      maxBytes: 1024,
      state: 'ready',
    };
    await env.TRANSFER_LINK.get(env.TRANSFER_LINK.idFromName(id)).create(record);
    return `${BASE_URL}/transfer/${id}/${token}`;
  }

  it('dies with the grant, though the account is still active', async () => {
    const revoked = `link${crypto.randomUUID().slice(0, 8)}`;
    const kept = `link${crypto.randomUUID().slice(0, 8)}`;
    await teamDirectory(env).revokeGrants([revoked]);
    const refused = await SELF.fetch(await linkUnder(revoked));
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('This sign-in was revoked');
    // The same link under a live grant passes the gate and fails further on (no relay here), for another reason.
    const passed = await SELF.fetch(await linkUnder(kept));
    expect(await passed.text()).not.toContain('revoked');
  });
});
