import { describe, expect, it } from 'vitest';
import { MAX_SESSION_ID_CHARS, mintSession, readSession } from '../../../worker/mcp/session-id.ts';

const params = { protocolVersion: '2025-11-25', capabilities: { elicitation: { form: {} } }, clientInfo: { name: 'claude', version: '1.0' } };

describe('2025-era session ids', () => {
  it('carry the session: its user, a fresh nonce, and the initialize to replay', () => {
    const session = mintSession('alice', params);
    expect(session).not.toBeNull();
    const read = readSession(session?.id ?? '', 'alice');
    expect(read).toEqual(session);
    expect(read?.initialize).toEqual(params);
    expect(session?.id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(mintSession('alice', params)?.nonce).not.toBe(session?.nonce);
  });

  it('keep client names in any script, while the id itself stays plain base64url', () => {
    const named = { ...params, clientInfo: { name: 'Clïent 🚀 クライアント', version: '1\u0001' } };
    const session = mintSession('alice', named);
    expect(session?.id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(readSession(session?.id ?? '', 'alice')?.initialize.clientInfo).toEqual(named.clientInfo);
  });

  it("are nobody's but their user's", () => {
    const session = mintSession('alice', params);
    expect(readSession(session?.id ?? '', 'mallory')).toBeNull();
  });

  it('stay a modest header: large capabilities are cut to the ones tools here use, and client info to its name and version', () => {
    const big = {
      ...params,
      capabilities: { elicitation: { form: {} }, experimental: { blob: 'x'.repeat(100_000) } },
      clientInfo: { name: 'c', version: '1', icons: ['y'.repeat(10_000)] },
    };
    const session = mintSession('alice', big);
    expect(session?.initialize.capabilities).toEqual({ elicitation: { form: {} } });
    expect(session?.initialize.clientInfo).toEqual({ name: 'c', version: '1' });
    expect(session?.id.length).toBeLessThan(MAX_SESSION_ID_CHARS);
  });

  it('are minted, cut to size, for names, versions and revisions of any length (the server accepts those, so the session must exist)', () => {
    const long = { protocolVersion: 'v'.repeat(100), capabilities: {}, clientInfo: { name: 'n'.repeat(300), version: 'b'.repeat(300) } };
    const session = mintSession('alice', long);
    expect(session?.initialize).toEqual({ protocolVersion: 'v'.repeat(64), capabilities: {}, clientInfo: { name: 'n'.repeat(256), version: 'b'.repeat(256) } });
    expect(readSession(session?.id ?? '', 'alice')).toEqual(session);
  });

  it('are not minted from params that are not initialize params', () => {
    expect(mintSession('alice', { protocolVersion: 7 })).toBeNull();
    expect(mintSession('alice', undefined)).toBeNull();
  });

  it('read as nothing when malformed: not base64url, not UTF-8, not JSON, wrong shape, too long', () => {
    const json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const good = JSON.parse(Buffer.from(mintSession('alice', params)?.id ?? '', 'base64url').toString()) as Record<string, unknown>;
    for (const bad of [
      'not base64!',
      Buffer.from([0xff, 0xfe, 0x7b]).toString('base64url'),
      Buffer.from('{nope').toString('base64url'),
      json({ ...good, v: 2 }),
      json({ ...good, n: 'short' }),
      json({ ...good, i: { protocolVersion: '2025-11-25' } }),
      'A'.repeat(MAX_SESSION_ID_CHARS + 1),
      '',
    ]) {
      expect(readSession(bad, 'alice'), bad.slice(0, 30)).toBeNull();
    }
  });
});
