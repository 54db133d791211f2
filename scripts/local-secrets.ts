/**
 * Secrets for the local mode, kept in .local/ by default (git-ignored, files mode 0600). The admin password is
 * generated once and only its hash is stored; the relay token is stored for the local relay and
 * its hash for the Worker.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashPassword, sha256Hex } from '../worker/auth/password-hash.ts';

export interface LocalSecrets {
  /** File wrangler reads with --env-file: ADMIN_PASSWORD_HASH and RELAY_TOKEN_HASH. */
  envFile: string;
  /** File the local relay reads with RELAY_TOKEN_FILE. */
  relayTokenFile: string;
  /** The admin password when it was created just now (shown once), else null. */
  newAdminPassword: string | null;
}

export function newSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

export async function ensureLocalSecrets(dir: string): Promise<LocalSecrets> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const envFile = join(dir, 'secrets.env');
  const relayTokenFile = join(dir, 'relay-token');
  let newAdminPassword: string | null = null;
  if (!existsSync(relayTokenFile)) {
    writeFileSync(relayTokenFile, `${newSecret(32)}\n`, { mode: 0o600 });
  }
  const relayToken = readFileSync(relayTokenFile, 'utf8').trim();
  const existing = existsSync(envFile) ? readFileSync(envFile, 'utf8') : '';
  let adminHashLine = /^ADMIN_PASSWORD_HASH=.*$/m.exec(existing)?.[0];
  if (!adminHashLine) {
    newAdminPassword = newSecret(18);
    adminHashLine = `ADMIN_PASSWORD_HASH=${await hashPassword(newAdminPassword)}`;
  }
  writeFileSync(envFile, `${adminHashLine}\nRELAY_TOKEN_HASH=${await sha256Hex(relayToken)}\n`, { mode: 0o600 });
  chmodSync(envFile, 0o600);
  return { envFile, relayTokenFile, newAdminPassword };
}
