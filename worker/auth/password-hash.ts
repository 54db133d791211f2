/**
 * Password hashes as stored in ADMIN_PASSWORD_HASH (and, later, user records):
 *   pbkdf2-sha256:<iterations>:<salt base64url>:<hash base64url>
 * (colons, not the usual '$', because .env loaders expand '$name' and would corrupt the value)
 * PBKDF2 through WebCrypto, so the same code runs in workerd (which caps PBKDF2 at 100,000
 * iterations) and in Node (the local launcher and the hash-password script that create hashes).
 * It lives under worker/ because only the Worker checks these secrets (the relay never sees them);
 * the scripts under scripts/ that make them import it from here, so it imports nothing from node:
 * or cloudflare: (test/unit/shared/runtime-neutral.test.ts checks that too).
 */
import { fromBase64Url, toBase64Url, toHex } from '../../shared/encoding.ts';

export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const PREFIX = 'pbkdf2-sha256';

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, HASH_BYTES * 8);
  return new Uint8Array(bits);
}

export async function hashPassword(password: string, iterations: number = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, iterations);
  return `${PREFIX}:${iterations}:${toBase64Url(salt)}:${toBase64Url(hash)}`;
}

export interface ParsedPasswordHash {
  iterations: number;
  salt: Uint8Array<ArrayBuffer>;
  hash: Uint8Array;
}

export function parsePasswordHash(stored: string): ParsedPasswordHash | null {
  const parts = stored.trim().split(':');
  if (parts.length !== 4 || parts[0] !== PREFIX) return null;
  const iterations = Number(parts[1]);
  const salt = fromBase64Url(parts[2] ?? '');
  const hash = fromBase64Url(parts[3] ?? '');
  if (!Number.isInteger(iterations) || iterations < 10_000 || iterations > PBKDF2_ITERATIONS) return null;
  if (!salt || salt.length < 8 || !hash || hash.length !== HASH_BYTES) return null;
  return { iterations, salt, hash };
}

/** Constant-time comparison of two byte strings of equal length. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index += 1) difference |= (a[index] ?? 0) ^ (b[index] ?? 0);
  return difference === 0;
}

export async function verifyPassword(password: string, stored: ParsedPasswordHash): Promise<boolean> {
  const candidate = await derive(password, stored.salt, stored.iterations);
  return equalBytes(candidate, stored.hash);
}

/** SHA-256 of a token, hex. The Worker keeps only this for the relay token (RELAY_TOKEN_HASH). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return toHex(new Uint8Array(digest));
}
