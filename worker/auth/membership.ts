/**
 * Who of an identity provider's users belongs to the team, decided from what the provider
 * vouched for. Deny by default: a provider configured with no membership rule lets nobody in.
 * The user name an external account gets is fixed here too, since policy grants name it:
 *   OIDC   → the verified email, lowercased     (user id oidc/<sub>)
 *   GitHub → <login>@github, lowercased         (user id github/<numeric id>)
 */
import type { JWTPayload } from 'jose';
import { USERNAME_PATTERN } from '../team/team-directory.ts';
import type { GithubConfig, OidcConfig } from './identity-config.ts';

const GROUP_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const MAX_GROUPS = 64;

export type RefusalReason = 'no_rule' | 'not_member' | 'no_email' | 'email_unverified' | 'unusable_name' | 'builtin_account' | 'other_account' | 'disabled';

export type MembershipDecision = { ok: true; username: string; userId: string; groups: string[] } | { ok: false; reason: RefusalReason; who: string };

/** What a refused person is told. Exhaustive: a new reason does not compile until it has a message. */
export function refusalMessage(reason: RefusalReason, provider: string): string {
  switch (reason) {
    case 'no_rule':
      return `This deployment has not said who may sign in with ${provider} (no allowed emails, domains, groups, logins or organisations are configured), so nobody is let in. Ask the administrator.`;
    case 'not_member':
      return `You signed in with ${provider}, but you are not a member of this team: your account is not among the allowed ones. Ask the administrator to add you.`;
    case 'no_email':
      return `${provider} did not share an email address, which is your user name here. Allow the email scope or ask the administrator.`;
    case 'email_unverified':
      return `${provider} says your email address is not verified. Verify it there, then try again.`;
    case 'unusable_name':
      return 'Your email address cannot be used as a user name here (only letters, digits, ".", "_", "@" and "-", at most 64). Ask the administrator.';
    case 'builtin_account':
      return `Your name here belongs to a built-in account, which ${provider} cannot sign in to. Sign in with that account's password, or ask the administrator.`;
    case 'other_account':
      return `Your name here already belongs to a different ${provider} identity. Ask the administrator.`;
    case 'disabled':
      return 'Your account here is disabled. Ask the administrator.';
    default: {
      const unhandled: never = reason;
      return unhandled;
    }
  }
}

/** The groups claim, lowercased: a list or one string; anything else is ignored. */
export function claimGroups(claims: JWTPayload, claim: string): string[] {
  const value = claims[claim];
  const raw = typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
  return [...new Set(raw.map((group) => group.trim().toLowerCase()))];
}

/** The groups policy can name (group:NAME): paths ("/ops") and names with spaces are left out. */
export function policyGroups(groups: string[]): string[] {
  return groups.filter((group) => GROUP_PATTERN.test(group)).slice(0, MAX_GROUPS);
}

export function decideOidc(config: OidcConfig, claims: JWTPayload): MembershipDecision {
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : '';
  const who = email || sub;
  const hasRule = config.allowedEmails.length + config.allowedDomains.length + config.allowedGroups.length > 0;
  if (!hasRule) return { ok: false, reason: 'no_rule', who };
  if (!email) return { ok: false, reason: 'no_email', who };
  // The email becomes the user name that policy grants name, so an unverified one could claim
  // someone else's grants: required for every sign-in, not only for the email and domain rules.
  if (claims.email_verified !== true) return { ok: false, reason: 'email_unverified', who };
  if (!USERNAME_PATTERN.test(email)) return { ok: false, reason: 'unusable_name', who };
  // Membership compares every group the provider sent; only valid names become policy groups.
  const groups = claimGroups(claims, config.groupsClaim);
  const domain = email.slice(email.lastIndexOf('@') + 1);
  const member = config.allowedEmails.includes(email) || config.allowedDomains.includes(domain) || groups.some((group) => config.allowedGroups.includes(group));
  if (!member) return { ok: false, reason: 'not_member', who };
  return { ok: true, username: email, userId: `oidc/${encodeURIComponent(sub)}`, groups: policyGroups(groups) };
}

export interface GithubUser {
  login: string;
  id: number;
}

/** `orgs`: the allowed organisations the user is an active member of (checked by the caller). */
export function decideGithub(config: GithubConfig, user: GithubUser, orgs: string[]): MembershipDecision {
  const login = user.login.toLowerCase();
  const who = `${login} on GitHub`;
  if (config.allowedLogins.length + config.allowedOrgs.length === 0) return { ok: false, reason: 'no_rule', who };
  const username = `${login}@github`;
  if (!USERNAME_PATTERN.test(username)) return { ok: false, reason: 'unusable_name', who };
  const member = config.allowedLogins.includes(login) || orgs.some((org) => config.allowedOrgs.includes(org.toLowerCase()));
  if (!member) return { ok: false, reason: 'not_member', who };
  return { ok: true, username, userId: `github/${user.id}`, groups: [] };
}
