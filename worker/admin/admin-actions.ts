/**
 * What a deployment admin can do to users, the policy and the audit log, written once for both
 * front ends: the JSON API (/admin/api, HTTP Basic) and the admin page (/admin, browser session).
 * Callers authenticate and check the admin first; these functions validate their input, change
 * the team directory, revoke OAuth grants where an account loses access, and log who did it.
 *
 * Failures are returned, never thrown, with a reason each front end maps to its own answer.
 */
import { z } from 'zod';
import { describeIssues } from '../../shared/describe-issues.ts';
import { hashPassword } from '../auth/password-hash.ts';
import type { Policy } from '../team/policy.ts';
import { auditQuerySchema, readAudit, type AuditEntry } from '../audit/audit-log.ts';
import { builtInUserId } from '../auth/accounts.ts';
import { announceRevokedGrants } from '../auth/grant-revocation.ts';
import { logEvent } from '../log.ts';
import { groupsSchema, teamDirectory, usernameSchema, type UserSummary } from '../team/team-directory.ts';

export type ActionFailureReason = 'invalid_argument' | 'conflict' | 'not_found';
export interface ActionFailure {
  ok: false;
  reason: ActionFailureReason;
  message: string;
}
export type ActionResult<T> = ({ ok: true } & T) | ActionFailure;

const newUserSchema = z.object({ username: usernameSchema, groups: groupsSchema.default([]) }).strict();
const userChangeSchema = z.object({ disabled: z.boolean().optional(), groups: groupsSchema.optional(), resetPassword: z.literal(true).optional() }).strict();

const PASSWORD_NOTE = 'Give this password to the user over a private channel; it is not shown again.';

function invalid(message: string): ActionFailure {
  return { ok: false, reason: 'invalid_argument', message };
}

/** A random password of 24 characters from a 62-letter alphabet (~143 bits), shown once. */
export function newPassword(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const out: string[] = [];
  while (out.length < 24) {
    for (const byte of crypto.getRandomValues(new Uint8Array(32))) {
      // 248 = 4 × 62: reject the rest so every letter is equally likely.
      if (byte < 248 && out.length < 24) out.push(alphabet[byte % 62] as string);
    }
  }
  return out.join('');
}

/**
 * Revoke every OAuth grant of a user, so their access and refresh tokens stop working now: the
 * provider deletes them, and the team directory refuses their calls in every isolate at once. Grants
 * are filed under the user id: `userId` for an external (OIDC, GitHub) account, which the team
 * directory keeps; the built-in id otherwise.
 */
export async function revokeGrants(env: Env, username: string, externalUserId: string | null = null): Promise<number> {
  const userId = externalUserId ?? builtInUserId(username);
  let revoked = 0;
  let cursor: string | undefined;
  for (let page = 0; page < 100; page += 1) {
    const listed = await env.OAUTH_PROVIDER.listUserGrants(userId, cursor ? { cursor } : {});
    await announceRevokedGrants(
      env,
      userId,
      listed.items.map((grant) => grant.id),
    );
    for (const grant of listed.items) {
      await env.OAUTH_PROVIDER.revokeGrant(grant.id, userId);
      revoked += 1;
    }
    if (!listed.cursor) break;
    cursor = listed.cursor;
  }
  return revoked;
}

export async function listUsers(env: Env): Promise<UserSummary[]> {
  return teamDirectory(env).listUsers();
}

/** Create a user with a fresh one-time password; the password is in the result and nowhere else. */
export async function addUser(env: Env, admin: string, input: unknown): Promise<ActionResult<{ user: UserSummary; password: string; note: string }>> {
  const parsed = newUserSchema.safeParse(input);
  if (!parsed.success) return invalid(describeIssues(parsed.error, 'body'));
  const password = newPassword();
  const added = await teamDirectory(env).addUser(parsed.data.username, await hashPassword(password), parsed.data.groups);
  if (!added.ok) return { ok: false, reason: 'conflict', message: added.message };
  logEvent('info', 'user added', { admin, username: parsed.data.username });
  return { ok: true, user: added.user, password, note: PASSWORD_NOTE };
}

/**
 * Disable or enable a user, replace their groups, or give them a new one-time password. Disabling
 * or resetting revokes every grant the user had: a disabled user or a reset password ends every
 * session and token at once.
 */
export async function changeUser(
  env: Env,
  admin: string,
  username: string,
  input: unknown,
): Promise<ActionResult<{ user: UserSummary; grantsRevoked: number; password?: string }>> {
  const parsed = userChangeSchema.safeParse(input);
  if (!parsed.success) return invalid(describeIssues(parsed.error, 'body'));
  const password = parsed.data.resetPassword ? newPassword() : undefined;
  const updated = await teamDirectory(env).updateUser(username, {
    ...(parsed.data.disabled !== undefined ? { disabled: parsed.data.disabled } : {}),
    ...(parsed.data.groups !== undefined ? { groups: parsed.data.groups } : {}),
    ...(password !== undefined ? { passwordHash: await hashPassword(password) } : {}),
  });
  if (!updated.ok) return { ok: false, reason: 'not_found', message: updated.message };
  const revoked = parsed.data.disabled || password !== undefined ? await revokeGrants(env, updated.user.username, updated.userId) : 0;
  logEvent('info', 'user changed', {
    admin,
    username,
    disabled: parsed.data.disabled,
    groups: parsed.data.groups?.length,
    passwordReset: password !== undefined,
    grantsRevoked: revoked,
  });
  return { ok: true, user: updated.user, grantsRevoked: revoked, ...(password !== undefined ? { password } : {}) };
}

/** Delete a user and revoke their grants. The deployment's own admin account cannot be deleted. */
export async function deleteUser(env: Env, admin: string, username: string): Promise<ActionResult<{ deleted: string; grantsRevoked: number }>> {
  const owner = await teamDirectory(env).grantOwner(username);
  if (!(await teamDirectory(env).deleteUser(username)))
    return { ok: false, reason: 'not_found', message: `There is no user "${username}" that can be deleted.` };
  const revoked = await revokeGrants(env, username, owner);
  logEvent('info', 'user deleted', { admin, username, grantsRevoked: revoked });
  return { ok: true, deleted: username, grantsRevoked: revoked };
}

export async function readPolicy(env: Env): Promise<{ policy: Policy; revision: number }> {
  return teamDirectory(env).policyAndRevision();
}

/** Replace the policy with `document` if it is valid; otherwise the stored policy stays as it was. Every save is a new revision. */
export async function replacePolicy(env: Env, admin: string, document: unknown): Promise<ActionResult<{ policy: Policy; revision: number }>> {
  const saved = await teamDirectory(env).setPolicy(document);
  if (!saved.ok) return invalid(`The policy was not changed: ${saved.message}`);
  logEvent('info', 'policy replaced', {
    admin,
    grants: saved.policy.grants.length,
    commandRules: saved.policy.commandRules?.length ?? 0,
    revision: saved.revision,
  });
  return { ok: true, policy: saved.policy, revision: saved.revision };
}

/** Audit rows matching `filters` (the fields of auditQuerySchema, as strings), newest first, including the calls just made (readAudit). */
export async function queryAudit(env: Env, filters: Record<string, string>): Promise<ActionResult<{ entries: AuditEntry[] }>> {
  const parsed = auditQuerySchema.safeParse(filters);
  if (!parsed.success) return invalid(describeIssues(parsed.error, 'body'));
  return { ok: true, entries: await readAudit(env, parsed.data) };
}

/** One JSON object per line, newline-terminated (JSON Lines). */
export function auditJsonl(entries: readonly AuditEntry[]): string {
  return entries.map((entry) => JSON.stringify(entry)).join('\n') + (entries.length > 0 ? '\n' : '');
}
