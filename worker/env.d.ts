/**
 * Bindings wrangler types cannot see: secrets (set with `wrangler secret put` or .dev.vars) and
 * the helpers the OAuth provider adds to env for the default handler.
 */
import type { OAuthHelpers } from '@cloudflare/workers-oauth-provider';

interface SecretsAndHelpers {
  /** pbkdf2-sha256:… hash of the built-in admin's password (scripts/hash-password.ts). */
  ADMIN_PASSWORD_HASH?: string;
  /** Hex SHA-256 of the relay token; the Worker never holds the token itself. */
  RELAY_TOKEN_HASH?: string;
  /** Set by OAuthProvider on the env its default handler receives. */
  OAUTH_PROVIDER: OAuthHelpers;
}

declare global {
  interface Env extends SecretsAndHelpers {}
  namespace Cloudflare {
    interface Env extends SecretsAndHelpers {}
  }
}
