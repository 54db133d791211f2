/**
 * /admin/api: users, policy and the audit log, for deployment admins. Each request carries the
 * admin's own user name and password (HTTP Basic, over HTTPS), checked with the same rate limits
 * as the sign-in page; `mcp-remote-exec admin` is the command-line client.
 *
 *   GET    /admin/api/users                     list users (never password hashes)
 *   POST   /admin/api/users                     {username, groups?} → the new user's one-time password
 *   PATCH  /admin/api/users/NAME                {disabled?, groups?, resetPassword?}
 *   DELETE /admin/api/users/NAME
 *   GET    /admin/api/policy                    the policy document
 *   PUT    /admin/api/policy                    replace it (validated; the old one stays on error)
 *   GET    /admin/api/audit?user=&host=&tool=&outcome=&since=&until=&limit=&format=jsonl
 *
 * Disabling or deleting a user revokes their OAuth grants, so their tokens stop working at once.
 */
import { z } from 'zod';
import { describeIssues } from '../../shared/describe-issues.ts';
import { hashPassword } from '../../shared/password-hash.ts';
import { isDeploymentAdmin } from '../../shared/policy.ts';
import { auditLog, auditQuerySchema, type AuditEntry } from '../audit/audit-log.ts';
import { builtInUserId, clientAddress, signIn } from '../auth/accounts.ts';
import { logEvent } from '../log.ts';
import { groupsSchema, teamDirectory, usernameSchema } from '../team/team-directory.ts';

export const ADMIN_API_PREFIX = '/admin/api/';
const MAX_BODY_BYTES = 256 * 1024;

const newUserSchema = z.object({ username: usernameSchema, groups: groupsSchema.default([]) }).strict();
const userChangeSchema = z.object({ disabled: z.boolean().optional(), groups: groupsSchema.optional(), resetPassword: z.literal(true).optional() }).strict();

function problem(status: number, error: string, message: string, headers: HeadersInit = {}): Response {
  return Response.json({ error, message }, { status, headers: { 'Cache-Control': 'no-store', ...headers } });
}

function ok(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: { 'Cache-Control': 'no-store' } });
}

function basicCredentials(request: Request): { username: string; password: string } | null {
  const header = request.headers.get('Authorization') ?? '';
  const match = /^Basic ([A-Za-z0-9+/=]{1,1024})$/.exec(header);
  if (!match?.[1]) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder().decode(Uint8Array.from(atob(match[1]), (char) => char.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  return colon > 0 ? { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) } : null;
}

async function jsonBody(request: Request): Promise<unknown> {
  const text = await request.text();
  if (text.length > MAX_BODY_BYTES) throw new SyntaxError(`the body is over ${MAX_BODY_BYTES} bytes`);
  return JSON.parse(text);
}

/** A random password of 24 characters from a 62-letter alphabet (~143 bits), shown once. */
function newPassword(): string {
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

async function revokeGrants(env: Env, username: string): Promise<number> {
  const userId = builtInUserId(username);
  let revoked = 0;
  let cursor: string | undefined;
  for (let page = 0; page < 100; page += 1) {
    const listed = await env.OAUTH_PROVIDER.listUserGrants(userId, cursor ? { cursor } : {});
    for (const grant of listed.items) {
      await env.OAUTH_PROVIDER.revokeGrant(grant.id, userId);
      revoked += 1;
    }
    if (!listed.cursor) break;
    cursor = listed.cursor;
  }
  return revoked;
}

export async function handleAdminApi(request: Request, env: Env): Promise<Response> {
  const credentials = basicCredentials(request);
  const challenge = { 'WWW-Authenticate': 'Basic realm="mcp-remote-exec admin", charset="UTF-8"' };
  if (!credentials) return problem(401, 'unauthorized', 'Send your admin user name and password (HTTP Basic).', challenge);
  const signedIn = await signIn(env, credentials.username, credentials.password, clientAddress(request));
  if (!signedIn.ok) {
    if (signedIn.reason === 'rate_limited') {
      return problem(429, 'rate_limited', `Too many failed sign-ins; try again in ${signedIn.retryAfterSeconds} s.`, { 'Retry-After': String(signedIn.retryAfterSeconds) });
    }
    return problem(401, 'unauthorized', 'Wrong user name or password.', challenge);
  }
  const directory = teamDirectory(env);
  const access = await directory.access(signedIn.identity.username);
  if (!access.active || !isDeploymentAdmin(access.policy, access.subject)) {
    return problem(403, 'access_denied', 'Only admins of this deployment (an admin grant on "*") may use the admin API.');
  }
  const admin = signedIn.identity.username;
  const path = new URL(request.url).pathname.slice(ADMIN_API_PREFIX.length);
  const userPath = /^users\/([^/]{1,64})$/.exec(path);

  try {
    if (path === 'users' && request.method === 'GET') return ok({ users: await directory.listUsers() });
    if (path === 'users' && request.method === 'POST') {
      const parsed = newUserSchema.safeParse(await jsonBody(request));
      if (!parsed.success) return problem(400, 'invalid_argument', describeIssues(parsed.error, 'body'));
      const password = newPassword();
      const added = await directory.addUser(parsed.data.username, await hashPassword(password), parsed.data.groups);
      if (!added.ok) return problem(409, 'conflict', added.message);
      logEvent('info', 'user added', { admin, username: parsed.data.username });
      return ok({ user: added.user, password, note: 'Give this password to the user over a private channel; it is not shown again.' }, 201);
    }
    if (userPath?.[1]) {
      const username = decodeURIComponent(userPath[1]);
      if (request.method === 'PATCH') {
        const parsed = userChangeSchema.safeParse(await jsonBody(request));
        if (!parsed.success) return problem(400, 'invalid_argument', describeIssues(parsed.error, 'body'));
        const password = parsed.data.resetPassword ? newPassword() : undefined;
        const updated = await directory.updateUser(username, {
          ...(parsed.data.disabled !== undefined ? { disabled: parsed.data.disabled } : {}),
          ...(parsed.data.groups !== undefined ? { groups: parsed.data.groups } : {}),
          ...(password !== undefined ? { passwordHash: await hashPassword(password) } : {}),
        });
        if (!updated.ok) return problem(404, 'not_found', updated.message);
        // A disabled user or a reset password ends every session and token the user had.
        const revoked = parsed.data.disabled || password !== undefined ? await revokeGrants(env, updated.user.username) : 0;
        logEvent('info', 'user changed', { admin, username, disabled: parsed.data.disabled, groups: parsed.data.groups?.length, passwordReset: password !== undefined, grantsRevoked: revoked });
        return ok({ user: updated.user, grantsRevoked: revoked, ...(password !== undefined ? { password } : {}) });
      }
      if (request.method === 'DELETE') {
        if (!(await directory.deleteUser(username))) return problem(404, 'not_found', `There is no user "${username}" that can be deleted.`);
        const revoked = await revokeGrants(env, username);
        logEvent('info', 'user deleted', { admin, username, grantsRevoked: revoked });
        return ok({ deleted: username, grantsRevoked: revoked });
      }
    }
    if (path === 'policy' && request.method === 'GET') return ok(await directory.policy());
    if (path === 'policy' && request.method === 'PUT') {
      const saved = await directory.setPolicy(await jsonBody(request));
      if (!saved.ok) return problem(400, 'invalid_argument', `The policy was not changed: ${saved.message}`);
      logEvent('info', 'policy replaced', { admin, grants: saved.policy.grants.length });
      return ok(saved.policy);
    }
    if (path === 'audit' && request.method === 'GET') {
      const params = Object.fromEntries(new URL(request.url).searchParams);
      const { format, ...filters } = params;
      const parsed = auditQuerySchema.safeParse(filters);
      if (!parsed.success) return problem(400, 'invalid_argument', describeIssues(parsed.error, 'body'));
      const entries: AuditEntry[] = await auditLog(env).query(parsed.data);
      if (format === 'jsonl') {
        return new Response(entries.map((entry) => JSON.stringify(entry)).join('\n') + (entries.length > 0 ? '\n' : ''), {
          headers: { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store' },
        });
      }
      return ok({ entries });
    }
  } catch (error) {
    if (error instanceof SyntaxError) return problem(400, 'invalid_argument', `The body is not valid JSON: ${error.message}`);
    throw error;
  }
  return problem(404, 'not_found', `No admin API at ${request.method} ${ADMIN_API_PREFIX}${path}. See the README, "Admin API".`);
}
