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
 *
 * Command rules (optional, `commandRules`) decide commands by what they do, for every tool that runs
 * one (decideCommand below). A document without them behaves exactly as before.
 */
import { z } from 'zod';
import { READ_ONLY_CAPABILITY } from '../../shared/capabilities.ts';
import { COMMAND_CLASSES, type CommandClassification, type CommandDecision } from '../../shared/shell/command-class.ts';

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

/** A program's basename, or a glob over it with * and ? ("mkfs*"); never a path: rules match what the parser names. */
const programGlob = z
  .string()
  .regex(/^[A-Za-z0-9._+*?-]{1,64}$/, 'a program is a basename or a glob over one with * and ? (like "mkfs*"), 1-64 letters, digits, ".", "_", "+", "-"');

export const COMMAND_EFFECTS = ['allow', 'deny', 'approve', 'confirm'] as const;

export const commandRuleSchema = z
  .object({
    effect: z.enum(COMMAND_EFFECTS, { error: `effect must be one of ${COMMAND_EFFECTS.join(', ')}` }),
    /** Who it applies to; everyone when absent. */
    subjects: z.array(subject).min(1, 'subjects, when given, names at least one subject').max(256).optional(),
    /** The caller's role on the host it applies to; any role when absent. */
    roles: z
      .array(z.enum(ROLES, { error: `a role is one of ${ROLES.join(', ')}` }))
      .min(1, 'roles, when given, names at least one role')
      .max(3)
      .optional(),
    hosts: z.array(hostSelector).min(1, 'a command rule names at least one host selector ("*" for all)').max(256),
    /** Command classes it applies to; every class when absent. "privileged" also covers "unknown". */
    classes: z
      .array(z.enum(COMMAND_CLASSES, { error: `a class is one of ${COMMAND_CLASSES.join(', ')}` }))
      .min(1, 'classes, when given, names at least one class')
      .max(4)
      .optional(),
    /** Programs (basename globs) it applies to: it matches when the command runs any of them. Every command when absent. */
    programs: z.array(programGlob).min(1, 'programs, when given, names at least one program').max(256).optional(),
    /** approve only: who may approve (subjects); absent: the deployment's admins (the decision then carries approvers: []). */
    approvers: z.array(subject).min(1, 'approvers, when given, names at least one subject').max(64).optional(),
    note: z.string().max(500).optional(),
  })
  .strict()
  .refine((rule) => rule.approvers === undefined || rule.effect === 'approve', {
    message: 'only an "approve" rule names approvers',
    path: ['approvers'],
  });
export type CommandRule = z.infer<typeof commandRuleSchema>;

export const policySchema = z
  .object({
    version: z.literal(1, { error: 'version must be 1' }),
    grants: z.array(grantSchema).max(1000),
    /** Rules over commands (decideCommand); absent in documents written before they existed. */
    commandRules: z.array(commandRuleSchema).max(1000).optional(),
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
function matchesSubject(grant: { subjects: readonly string[] }, who: Subject): boolean {
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

/**
 * What command rules say of one command, with the role default folded in: a CommandDecision, or a
 * refusal by role (`rule: null`) when no rule decides and the caller's role is below operator.
 */
export type CommandRuling = CommandDecision | { effect: 'deny'; rule: null; role: Role | null };

/** Running a command needs this role when no command rule allows it. */
export const COMMAND_ROLE: Role = 'operator';

/** A basename glob ("mkfs*", "?sh") as a whole-name test; case matters, as it does to the host. */
function globMatches(glob: string, program: string): boolean {
  const pattern = glob
    .replace(/[.+\-]/g, (char) => `\\${char}`)
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${pattern}$`).test(program);
}

function matchesRule(rule: CommandRule, who: Subject, host: PolicyHost, role: Role | null, command: CommandClassification): boolean {
  if (rule.subjects !== undefined && !matchesSubject({ subjects: rule.subjects }, who)) return false;
  if (rule.roles !== undefined && (role === null || !rule.roles.includes(role))) return false;
  if (!rule.hosts.some((selector) => matchesHost(selector, host))) return false;
  // Unknown counts as privileged: a rule about privileged commands covers what cannot be classified.
  if (rule.classes !== undefined && !rule.classes.includes(command.class) && !(command.class === 'unknown' && rule.classes.includes('privileged')))
    return false;
  if (
    rule.programs !== undefined &&
    !rule.programs.some((glob) => command.programs.some((program) => globMatches(glob, program.slice(program.lastIndexOf('/') + 1))))
  )
    return false;
  return true;
}

/**
 * What policy does with `command` run by `who` (role `role` there) on `host`. Precedence: any
 * matching deny, then approve (before confirm: another person's word is the stronger hold), then
 * allow, then the role default (operator and above run commands; below, refused). The first matching
 * rule of the winning effect is the one named. Rules bind the bootstrap admin like anyone (so "nobody
 * may run mkfs" holds). An allow needs some role on the host (it never opens a host the caller cannot
 * see) and cannot open a host the relay marks read-only (the relay refuses to run anything there).
 */
export function decideCommand(policy: Policy, who: Subject, host: PolicyHost, role: Role | null, command: CommandClassification): CommandRuling {
  const matching = (policy.commandRules ?? []).flatMap((rule, index) => (matchesRule(rule, who, host, role, command) ? [{ rule, index }] : []));
  const first = (effect: CommandRule['effect']): { rule: CommandRule; index: number } | undefined => matching.find(({ rule }) => rule.effect === effect);
  const ref = (found: { rule: CommandRule; index: number }): { index: number; note: string | null } => ({ index: found.index, note: found.rule.note ?? null });
  const deny = first('deny');
  if (deny) return { effect: 'deny', rule: ref(deny) };
  const approve = first('approve');
  if (approve) return { effect: 'approve', rule: ref(approve), approvers: approve.rule.approvers ?? [] };
  const confirm = first('confirm');
  if (confirm) return { effect: 'confirm', rule: ref(confirm) };
  const allow = first('allow');
  const readOnlyHost = host.capabilities?.includes(READ_ONLY_CAPABILITY) ?? false;
  if (allow && role !== null && !readOnlyHost) return { effect: 'allow', rule: ref(allow) };
  return roleAtLeast(role, COMMAND_ROLE) ? { effect: 'allow', rule: null } : { effect: 'deny', rule: null, role };
}
