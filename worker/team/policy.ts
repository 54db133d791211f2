/**
 * Team policy: who may do what on which host. Deny by default: a person has a role on a host only
 * when an allow grant gives it, and any deny grant that matches takes it away.
 *
 *   viewer    list hosts, read files and directories, download, ping the relay
 *   operator  viewer, plus run commands, write files, upload
 *   admin     operator, plus (on every host, "*") manage users, policy and the audit log
 *
 * A grant names subjects ("user:alice", "group:ops", or "*" for everyone signed in), a role, and
 * hosts ("*", a host name, or a label selector "env=prod"). An allow grant gives its role on those
 * hosts; a deny grant forbids its role and everything above it there, so "deny viewer" removes
 * all access and "deny operator" leaves read-only access. Deny beats allow.
 */
import { z } from 'zod';
import { READ_ONLY_CAPABILITY } from '../../shared/capabilities.ts';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export function roleAtLeast(role: Role | null, needed: Role): boolean {
  return role !== null && RANK[role] >= RANK[needed];
}

const subject = z.string().regex(/^(\*|user:[A-Za-z0-9._@-]{1,64}|group:[A-Za-z0-9._@-]{1,64})$/, 'a subject is "*", "user:NAME" or "group:NAME"');
const hostSelector = z
  .string()
  .regex(
    /^(\*|[A-Za-z0-9][A-Za-z0-9._\/-]{0,127}|[A-Za-z0-9._-]{1,64}=[^\s]{0,256})$/,
    'a host selector is "*", a host name, "relay/host", or a label "key=value" (relay=NAME for a relay)',
  );

export const grantSchema = z
  .object({
    effect: z.enum(['allow', 'deny'], { error: 'effect must be "allow" or "deny"' }).default('allow'),
    subjects: z.array(subject).min(1, 'a grant names at least one subject').max(256),
    role: z.enum(ROLES, { error: `role must be one of ${ROLES.join(', ')}` }),
    hosts: z.array(hostSelector).min(1, 'a grant names at least one host selector ("*" for all)').max(256),
    /** Why the grant exists; shown to admins, never used for decisions. */
    note: z.string().max(500).optional(),
  })
  .strict();
export type Grant = z.infer<typeof grantSchema>;

export const policySchema = z
  .object({
    version: z.literal(1, { error: 'version must be 1' }),
    grants: z.array(grantSchema).max(1000),
  })
  .strict();
export type Policy = z.infer<typeof policySchema>;

export const EMPTY_POLICY: Policy = { version: 1, grants: [] };

/** Who is asking: their user name and the groups they belong to. */
export interface Subject {
  username: string;
  groups: readonly string[];
  /** The deployment's own admin account (ADMIN_USERNAME): admin everywhere, whatever the policy says. */
  bootstrapAdmin?: boolean;
}

/** What policy needs to know of a host. A relay may mark a host read-only: never more than viewer there. */
export interface PolicyHost {
  name: string;
  labels: Readonly<Record<string, string>>;
  capabilities?: readonly string[];
  /** The relay that serves it, as the Worker admitted it (not as the relay describes itself). */
  relay?: string;
}

/** User and group names are matched without regard to case, as accounts are looked up. */
function matchesSubject(grant: Grant, who: Subject): boolean {
  const user = `user:${who.username.toLowerCase()}`;
  const groups = who.groups.map((group) => `group:${group.toLowerCase()}`);
  return grant.subjects.some((entry) => {
    const subject = entry.toLowerCase();
    return subject === '*' || subject === user || groups.includes(subject);
  });
}

/**
 * "relay=NAME" and "relay/host" name the relay the Worker admitted, so a relay cannot claim a grant
 * meant for another by reporting a label or a name; a plain name or label matches on any relay.
 */
function matchesHost(selector: string, host: PolicyHost): boolean {
  if (selector === '*') return true;
  const equals = selector.indexOf('=');
  if (equals > 0) {
    const key = selector.slice(0, equals);
    const value = selector.slice(equals + 1);
    if (key === 'relay') return host.relay !== undefined && host.relay.toLowerCase() === value.toLowerCase();
    return host.labels[key] === value;
  }
  const slash = selector.indexOf('/');
  if (slash > 0)
    return host.relay !== undefined && host.relay.toLowerCase() === selector.slice(0, slash).toLowerCase() && host.name === selector.slice(slash + 1);
  return selector === host.name;
}

/** The role `who` has on `host`, or null for none. */
export function roleOn(policy: Policy, who: Subject, host: PolicyHost): Role | null {
  let allowed = who.bootstrapAdmin ? RANK.admin : 0;
  let ceiling = RANK.admin;
  for (const grant of policy.grants) {
    if (!matchesSubject(grant, who) || !grant.hosts.some((selector) => matchesHost(selector, host))) continue;
    if (grant.effect === 'allow') allowed = Math.max(allowed, RANK[grant.role]);
    else if (!who.bootstrapAdmin) ceiling = Math.min(ceiling, RANK[grant.role] - 1);
  }
  if (host.capabilities?.includes(READ_ONLY_CAPABILITY)) ceiling = Math.min(ceiling, RANK.viewer);
  const rank = Math.min(allowed, ceiling);
  return ROLES.find((role) => RANK[role] === rank) ?? null;
}

/**
 * Whether `who` administers the deployment (users, policy, audit): an allow grant of admin on "*"
 * and no deny of admin on "*" (or the bootstrap admin account).
 */
export function isDeploymentAdmin(policy: Policy, who: Subject): boolean {
  if (who.bootstrapAdmin) return true;
  const everywhere = (grant: Grant): boolean => grant.hosts.includes('*') && matchesSubject(grant, who);
  const granted = policy.grants.some((grant) => grant.effect === 'allow' && grant.role === 'admin' && everywhere(grant));
  const denied = policy.grants.some((grant) => grant.effect === 'deny' && everywhere(grant));
  return granted && !denied;
}
