/**
 * Which outside identity providers this deployment offers (OpenID Connect, GitHub), read from
 * vars and secrets. A provider is on when its client id is set; then everything it needs must be
 * set too, or the Worker refuses to start with a message naming the missing variable. Membership
 * rules are lists; a provider with no rule at all lets nobody in (deny by default).
 */
import { z } from 'zod';
import { SettingsError } from '../settings.ts';

export const DEFAULT_OIDC_DISPLAY_NAME = 'single sign-on';
export const DEFAULT_OIDC_SCOPES = 'openid email profile';
export const DEFAULT_OIDC_GROUPS_CLAIM = 'groups';
export const DEFAULT_GITHUB_OAUTH_URL = 'https://github.com';
export const DEFAULT_GITHUB_API_URL = 'https://api.github.com';

export interface OidcConfig {
  /** Issuer URL exactly as the provider publishes it (compared byte for byte with `iss`). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  displayName: string;
  scopes: string;
  allowedEmails: string[];
  allowedDomains: string[];
  allowedGroups: string[];
  groupsClaim: string;
}

export interface GithubConfig {
  clientId: string;
  clientSecret: string;
  allowedLogins: string[];
  allowedOrgs: string[];
  oauthUrl: string;
  apiUrl: string;
}

export interface IdentityProviders {
  oidc: OidcConfig | null;
  github: GithubConfig | null;
}

/** The variables this file reads; all optional in wrangler.toml (see worker/env.d.ts). */
type IdentityVars = Partial<
  Record<
    | 'OIDC_ISSUER'
    | 'OIDC_CLIENT_ID'
    | 'OIDC_CLIENT_SECRET'
    | 'OIDC_DISPLAY_NAME'
    | 'OIDC_SCOPES'
    | 'OIDC_ALLOWED_EMAILS'
    | 'OIDC_ALLOWED_DOMAINS'
    | 'OIDC_ALLOWED_GROUPS'
    | 'OIDC_GROUPS_CLAIM'
    | 'GITHUB_CLIENT_ID'
    | 'GITHUB_CLIENT_SECRET'
    | 'GITHUB_ALLOWED_LOGINS'
    | 'GITHUB_ALLOWED_ORGS'
    | 'GITHUB_OAUTH_URL'
    | 'GITHUB_API_URL',
    string
  >
>;

/** A comma- or whitespace-separated list, lowercased (emails, domains, logins and groups compare without case). */
function list(value: string | undefined): string[] {
  return [
    ...new Set(
      (value ?? '')
        .split(/[\s,]+/)
        .map((item) => item.trim().toLowerCase())
        .filter(Boolean),
    ),
  ];
}

function text(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

const httpsOrLoopback = (name: string) =>
  z.string().superRefine((value, context) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      context.addIssue({ code: 'custom', message: `${name} "${value}" is not a URL` });
      return;
    }
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      context.addIssue({ code: 'custom', message: `${name} must use https (plain http only on a loopback address), not "${value}"` });
    }
  });

function required(name: string, value: string | undefined, provider: string): string {
  if (!value)
    throw new SettingsError(
      `${name} is not set, but ${provider} sign-in is on: set it (as a secret if it is one; see README "Signing in") or unset ${provider === 'OpenID Connect' ? 'OIDC_CLIENT_ID' : 'GITHUB_CLIENT_ID'}`,
    );
  return value;
}

function checkUrl(name: string, value: string): string {
  const parsed = httpsOrLoopback(name).safeParse(value);
  if (!parsed.success) throw new SettingsError(parsed.error.issues.map((issue) => issue.message).join('; '));
  return value.replace(/\/+$/, '');
}

function readOidc(vars: IdentityVars): OidcConfig | null {
  const clientId = text(vars.OIDC_CLIENT_ID);
  if (!clientId) {
    // A secret or issuer without a client id is a half-finished set-up, not "off".
    for (const name of ['OIDC_ISSUER', 'OIDC_CLIENT_SECRET'] as const) {
      if (text(vars[name]))
        throw new SettingsError(`${name} is set but OIDC_CLIENT_ID is not: set OIDC_CLIENT_ID to turn OpenID Connect sign-in on, or unset ${name}`);
    }
    return null;
  }
  const issuerText = required('OIDC_ISSUER', text(vars.OIDC_ISSUER), 'OpenID Connect');
  // The issuer is compared exactly with the ID token's `iss`, so it is kept as written.
  checkUrl('OIDC_ISSUER', issuerText);
  const scopes = text(vars.OIDC_SCOPES) ?? DEFAULT_OIDC_SCOPES;
  if (!scopes.split(/\s+/).includes('openid')) throw new SettingsError(`OIDC_SCOPES must include "openid", not "${scopes}"`);
  const groupsClaim = text(vars.OIDC_GROUPS_CLAIM) ?? DEFAULT_OIDC_GROUPS_CLAIM;
  if (!/^[A-Za-z0-9_:./-]{1,200}$/.test(groupsClaim)) throw new SettingsError(`OIDC_GROUPS_CLAIM "${groupsClaim}" is not a claim name`);
  return {
    issuer: issuerText,
    clientId,
    clientSecret: required('OIDC_CLIENT_SECRET', text(vars.OIDC_CLIENT_SECRET), 'OpenID Connect'),
    displayName: text(vars.OIDC_DISPLAY_NAME) ?? DEFAULT_OIDC_DISPLAY_NAME,
    scopes,
    allowedEmails: list(vars.OIDC_ALLOWED_EMAILS),
    allowedDomains: list(vars.OIDC_ALLOWED_DOMAINS).map((domain) => domain.replace(/^@/, '')),
    allowedGroups: list(vars.OIDC_ALLOWED_GROUPS),
    groupsClaim,
  };
}

function readGithub(vars: IdentityVars): GithubConfig | null {
  const clientId = text(vars.GITHUB_CLIENT_ID);
  if (!clientId) {
    if (text(vars.GITHUB_CLIENT_SECRET))
      throw new SettingsError(
        'GITHUB_CLIENT_SECRET is set but GITHUB_CLIENT_ID is not: set GITHUB_CLIENT_ID to turn GitHub sign-in on, or unset GITHUB_CLIENT_SECRET',
      );
    return null;
  }
  return {
    clientId,
    clientSecret: required('GITHUB_CLIENT_SECRET', text(vars.GITHUB_CLIENT_SECRET), 'GitHub'),
    allowedLogins: list(vars.GITHUB_ALLOWED_LOGINS),
    allowedOrgs: list(vars.GITHUB_ALLOWED_ORGS),
    oauthUrl: checkUrl('GITHUB_OAUTH_URL', text(vars.GITHUB_OAUTH_URL) ?? DEFAULT_GITHUB_OAUTH_URL),
    apiUrl: checkUrl('GITHUB_API_URL', text(vars.GITHUB_API_URL) ?? DEFAULT_GITHUB_API_URL),
  };
}

/** @throws SettingsError naming the variable to fix. */
export function readIdentityProviders(env: IdentityVars): IdentityProviders {
  return { oidc: readOidc(env), github: readGithub(env) };
}

/** Whether a provider has any membership rule; without one nobody is let in. */
export function hasMembershipRule(config: OidcConfig | GithubConfig): boolean {
  return 'issuer' in config
    ? config.allowedEmails.length + config.allowedDomains.length + config.allowedGroups.length > 0
    : config.allowedLogins.length + config.allowedOrgs.length > 0;
}
