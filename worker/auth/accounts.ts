/**
 * Who may sign in. For now one built-in account: ADMIN_USERNAME (var) with ADMIN_PASSWORD_HASH
 * (secret; `npm start` creates it locally, `node scripts/hash-password.ts` for a deployment).
 * Later identity sources (more users, OIDC, GitHub) return the same Identity.
 */
import { equalBytes, parsePasswordHash, verifyPassword, type ParsedPasswordHash } from '../../shared/password-hash.ts';

export interface Identity {
  /** Stable id stored with grants; never contains ':' (the OAuth provider forbids it). */
  userId: string;
  username: string;
}

export type SignInResult = { ok: true; identity: Identity } | { ok: false; reason: 'invalid_credentials' | 'not_configured' };

/** A hash nothing matches (all zeros), so an unknown user name or a missing hash costs the same PBKDF2 work. */
const DUMMY_HASH: ParsedPasswordHash = { iterations: 100_000, salt: new Uint8Array(16), hash: new Uint8Array(32) };

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

export function builtInUserId(username: string): string {
  return `builtin/${encodeURIComponent(username)}`;
}

export async function signInBuiltIn(env: Env, username: string, password: string): Promise<SignInResult> {
  const stored = env.ADMIN_PASSWORD_HASH ? parsePasswordHash(env.ADMIN_PASSWORD_HASH) : null;
  const adminName = env.ADMIN_USERNAME || 'admin';
  if (!stored) {
    await verifyPassword(password, DUMMY_HASH);
    return { ok: false, reason: 'not_configured' };
  }
  // Compare digests so the comparison takes the same time whatever the lengths.
  const nameMatches = equalBytes(await digest(username), await digest(adminName));
  const passwordMatches = await verifyPassword(password, nameMatches ? stored : DUMMY_HASH);
  if (!nameMatches || !passwordMatches) return { ok: false, reason: 'invalid_credentials' };
  return { ok: true, identity: { userId: builtInUserId(adminName), username: adminName } };
}
