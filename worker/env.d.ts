/**
 * Bindings wrangler types cannot see: secrets (set with `wrangler secret put` or .dev.vars), vars
 * that are off unless set (identity providers), and
 * the helpers the OAuth provider adds to env for the default handler.
 */
import type { OAuthHelpers } from '@cloudflare/workers-oauth-provider';

interface SecretsAndHelpers {
  /** pbkdf2-sha256:… hash of the built-in admin's password (scripts/hash-password.ts). */
  ADMIN_PASSWORD_HASH?: string;
  /** Hex SHA-256 of the relay token; the Worker never holds the token itself. */
  RELAY_TOKEN_HASH?: string;
  /** OpenID Connect sign-in (README "Signing in"): on when OIDC_CLIENT_ID is set. */
  OIDC_ISSUER?: string;
  OIDC_CLIENT_ID?: string;
  /** Secret. */
  OIDC_CLIENT_SECRET?: string;
  OIDC_DISPLAY_NAME?: string;
  OIDC_SCOPES?: string;
  OIDC_ALLOWED_EMAILS?: string;
  OIDC_ALLOWED_DOMAINS?: string;
  OIDC_ALLOWED_GROUPS?: string;
  OIDC_GROUPS_CLAIM?: string;
  /** GitHub sign-in (a GitHub OAuth app): on when GITHUB_CLIENT_ID is set. */
  GITHUB_CLIENT_ID?: string;
  /** Secret. */
  GITHUB_CLIENT_SECRET?: string;
  GITHUB_ALLOWED_LOGINS?: string;
  GITHUB_ALLOWED_ORGS?: string;
  /** For tests only: where GitHub's OAuth pages and API are (default https://github.com, https://api.github.com). */
  GITHUB_OAUTH_URL?: string;
  GITHUB_API_URL?: string;
  /** ImageKit transfers (README "ImageKit"): on when ENABLE_IMAGEKIT is true. */
  ENABLE_IMAGEKIT?: string;
  IMAGEKIT_PUBLIC_KEY?: string;
  /** Secret. */
  IMAGEKIT_PRIVATE_KEY?: string;
  IMAGEKIT_URL_ENDPOINT?: string;
  IMAGEKIT_FOLDER?: string;
  IMAGEKIT_TRANSFER_TIMEOUT?: string;
  /** For tests and proxies: where ImageKit's API is (default: ImageKit's own). */
  IMAGEKIT_API_BASE_URL?: string;
  /**
   * For tests: the relay heartbeat interval in milliseconds (default 15000). The relay must use the
   * same value (its own RELAY_HEARTBEAT_MS); half-open sockets are found within two intervals.
   */
  RELAY_HEARTBEAT_MS?: string;
  /**
   * More hostnames the deployment answers to besides PUBLIC_URL's (comma-separated; a custom domain
   * or a second name). Requests under any other Host are refused (worker/rebinding-guard.ts).
   */
  ALLOWED_HOSTNAMES?: string;
  /** Background jobs (README "Background jobs"): limits; defaults in shared/limits.ts. */
  JOBS_PER_USER?: string;
  JOB_OUTPUT_KEEP_BYTES?: string;
  JOB_RETENTION_HOURS?: string;
  /** Approvals (README "Approvals"): where each new request is announced (https; http only to loopback). */
  APPROVAL_WEBHOOK_URL?: string;
  /** Secret: signs each webhook POST (X-MRE-Signature, HMAC-SHA256). */
  APPROVAL_WEBHOOK_SECRET?: string;
  /** For tests only: delays in ms between webhook attempts, comma-separated (default 10000,60000,300000). */
  APPROVAL_WEBHOOK_RETRY_MS?: string;
  /** For tests only: "true" adds the test tools (shared/test-tools.ts). Only the test harness sets it. */
  MCP_REMOTE_EXEC_TEST_TOOLS?: string;
  /** Set by OAuthProvider on the env its default handler receives. */
  OAUTH_PROVIDER: OAuthHelpers;
}

declare global {
  interface Env extends SecretsAndHelpers {}
  namespace Cloudflare {
    interface Env extends SecretsAndHelpers {}
  }
}
