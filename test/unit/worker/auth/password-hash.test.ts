import { describe, expect, it } from 'vitest';
import { hashPassword, parsePasswordHash, sha256Hex, verifyPassword } from '../../../../worker/auth/password-hash.ts';

describe('password hashes', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const stored = parsePasswordHash(await hashPassword('correct horse', 20_000));
    expect(stored).not.toBeNull();
    if (!stored) return;
    expect(await verifyPassword('correct horse', stored)).toBe(true);
    expect(await verifyPassword('correct horsf', stored)).toBe(false);
  });

  it('salts every hash', async () => {
    expect(await hashPassword('same', 20_000)).not.toBe(await hashPassword('same', 20_000));
  });

  it('uses no "$", which .env loaders would expand', async () => {
    expect(await hashPassword('x', 20_000)).not.toContain('$');
  });

  it.each([
    '',
    'plain',
    'pbkdf2-sha256:1:AAAA:BBBB',
    'pbkdf2-sha256:100000:AAAAAAAAAAAA:short',
    'md5:1:2:3',
    'pbkdf2-sha256:999999:AAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  ])('rejects the malformed hash %j', (text) => {
    expect(parsePasswordHash(text)).toBeNull();
  });

  it('hashes tokens with SHA-256 in hex', async () => {
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
