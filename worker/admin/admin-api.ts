/**
 * /admin/api: users, policy and the audit log, for deployment admins. Each request carries the
 * admin's own user name and password (HTTP Basic, over HTTPS), checked with the same rate limits
 * as the sign-in page; `mcp-remote-exec admin` is the command-line client.
 *
 *   GET    /admin/api/users                     list users (never password hashes)
 *   POST   /admin/api/users                     {username, groups?} → the new user's one-time password
 *   PATCH  /admin/api/users/NAME                {disabled?, groups?, resetPassword?}
 *   DELETE /admin/api/users/NAME
 *   GET    /admin/api/policy                    the policy document (its revision in the Policy-Revision header)
 *   PUT    /admin/api/policy                    replace it (validated; the old one stays on error); answers as GET
 *   GET    /admin/api/audit?user=&host=&tool=&outcome=&since=&until=&limit=&format=jsonl
 *   GET    /admin/api/relays                    each relay: credential, online, version, last seen, hosts
 *   POST   /admin/api/relays                    {name} → the relay's own token, shown once
 *   DELETE /admin/api/relays/NAME               revoke its credential and close its connection
 *   GET    /admin/api/freeze                    what is frozen
 *   POST   /admin/api/freeze                    {scope: deployment|user|relay, name?, cancelJobs?} → the freeze, jobs cancelled
 *   POST   /admin/api/unfreeze                  {scope, name?}
 *   GET    /admin/api/approvals                 held commands waiting for a decision
 *   POST   /admin/api/approvals/ID/approve      approve one (the requester then runs it once)
 *   POST   /admin/api/approvals/ID/reject
 *
 * Disabling or deleting a user revokes their OAuth grants, so their tokens stop working at once.
 */
import { isDeploymentAdmin } from '../team/policy.ts';
import { clientAddress, signIn } from '../auth/accounts.ts';
import { teamDirectory } from '../team/team-directory.ts';
import { freeze, readFreeze, unfreeze } from './freeze-actions.ts';
import { approvalJson } from '../approvals/approval-record.ts';
import { decideApproval, pendingApprovals } from './approval-actions.ts';
import { issueRelayCredential, listRelayStatuses, revokeRelayCredential } from './relay-actions.ts';
import { addUser, auditJsonl, changeUser, deleteUser, listUsers, queryAudit, readPolicy, replacePolicy, type ActionFailure } from './admin-actions.ts';

export const ADMIN_API_PREFIX = '/admin/api/';

function problem(status: number, error: string, message: string, headers: HeadersInit = {}): Response {
  return Response.json({ error, message }, { status, headers: { 'Cache-Control': 'no-store', ...headers } });
}

function ok(body: unknown, status = 200): Response {
  return Response.json(body, { status, headers: { 'Cache-Control': 'no-store' } });
}

export const POLICY_REVISION_HEADER = 'Policy-Revision';

function withRevision(response: Response, revision: number): Response {
  response.headers.set(POLICY_REVISION_HEADER, String(revision));
  return response;
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

/** The body's size is already held to ADMIN_API_BODY_LIMIT_BYTES where the request entered (worker/body-limits.ts). */
async function jsonBody(request: Request): Promise<unknown> {
  return JSON.parse(await request.text());
}

/** The HTTP answer to a refused action; an exhaustive switch, so a new reason must be mapped here. */
function failed(failure: ActionFailure): Response {
  switch (failure.reason) {
    case 'invalid_argument':
      return problem(400, 'invalid_argument', failure.message);
    case 'conflict':
      return problem(409, 'conflict', failure.message);
    case 'not_found':
      return problem(404, 'not_found', failure.message);
    default: {
      const unhandled: never = failure.reason;
      throw new Error(`unhandled action failure ${String(unhandled)}`);
    }
  }
}

export async function handleAdminApi(request: Request, env: Env): Promise<Response> {
  const credentials = basicCredentials(request);
  const challenge = { 'WWW-Authenticate': 'Basic realm="mcp-remote-exec admin", charset="UTF-8"' };
  if (!credentials) return problem(401, 'unauthorized', 'Send your admin user name and password (HTTP Basic).', challenge);
  const signedIn = await signIn(env, credentials.username, credentials.password, clientAddress(request, env));
  if (!signedIn.ok) {
    if (signedIn.reason === 'rate_limited') {
      return problem(429, 'rate_limited', `Too many failed sign-ins; try again in ${signedIn.retryAfterSeconds} s.`, {
        'Retry-After': String(signedIn.retryAfterSeconds),
      });
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
    if (path === 'users' && request.method === 'GET') return ok({ users: await listUsers(env) });
    if (path === 'users' && request.method === 'POST') {
      const added = await addUser(env, admin, await jsonBody(request));
      if (!added.ok) return failed(added);
      return ok({ user: added.user, password: added.password, note: added.note }, 201);
    }
    if (userPath?.[1]) {
      const username = decodeURIComponent(userPath[1]);
      if (request.method === 'PATCH') {
        const changed = await changeUser(env, admin, username, await jsonBody(request));
        if (!changed.ok) return failed(changed);
        return ok({ user: changed.user, grantsRevoked: changed.grantsRevoked, ...(changed.password !== undefined ? { password: changed.password } : {}) });
      }
      if (request.method === 'DELETE') {
        const deleted = await deleteUser(env, admin, username);
        if (!deleted.ok) return failed(deleted);
        return ok({ deleted: deleted.deleted, grantsRevoked: deleted.grantsRevoked });
      }
    }
    if (path === 'relays' && request.method === 'GET') return ok({ relays: await listRelayStatuses(env) });
    if (path === 'relays' && request.method === 'POST') {
      const issued = await issueRelayCredential(env, admin, await jsonBody(request));
      if (!issued.ok) return failed(issued);
      return ok({ relay: issued.relay, token: issued.token, note: issued.note }, 201);
    }
    const relayPath = /^relays\/([^/]{1,64})$/.exec(path);
    if (relayPath?.[1] && request.method === 'DELETE') {
      const revoked = await revokeRelayCredential(env, admin, decodeURIComponent(relayPath[1]));
      if (!revoked.ok) return failed(revoked);
      return ok({ relay: revoked.relay });
    }
    if (path === 'approvals' && request.method === 'GET') return ok({ approvals: (await pendingApprovals(env, admin)).map(approvalJson) });
    const approvalPath = /^approvals\/([^/]{1,64})\/(approve|reject)$/.exec(path);
    if (approvalPath?.[1] && approvalPath[2] && request.method === 'POST') {
      const decided = await decideApproval(env, admin, approvalPath[1], approvalPath[2] === 'approve' ? 'approve' : 'reject');
      if (!decided.ok) return failed(decided);
      return ok({ approval: approvalJson(decided.approval) });
    }
    // The revision rides in a header, so the body stays a document that `policy set` takes back as it is.
    if (path === 'policy' && request.method === 'GET') {
      const { policy, revision } = await readPolicy(env);
      return withRevision(ok(policy), revision);
    }
    if (path === 'policy' && request.method === 'PUT') {
      const saved = await replacePolicy(env, admin, await jsonBody(request));
      if (!saved.ok) return failed(saved);
      return withRevision(ok(saved.policy), saved.revision);
    }
    if (path === 'freeze' && request.method === 'GET') return ok({ freeze: await readFreeze(env) });
    if (path === 'freeze' && request.method === 'POST') {
      const frozen = await freeze(env, admin, await jsonBody(request));
      if (!frozen.ok) return failed(frozen);
      return ok({ freeze: frozen.freeze, jobs: frozen.jobs });
    }
    if (path === 'unfreeze' && request.method === 'POST') {
      const thawed = await unfreeze(env, admin, await jsonBody(request));
      if (!thawed.ok) return failed(thawed);
      return ok({ freeze: thawed.freeze });
    }
    if (path === 'audit' && request.method === 'GET') {
      const { format, ...filters } = Object.fromEntries(new URL(request.url).searchParams);
      const result = await queryAudit(env, filters);
      if (!result.ok) return failed(result);
      if (format === 'jsonl') {
        return new Response(auditJsonl(result.entries), { headers: { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store' } });
      }
      return ok({ entries: result.entries });
    }
  } catch (error) {
    if (error instanceof SyntaxError) return problem(400, 'invalid_argument', `The body is not valid JSON: ${error.message}`);
    throw error;
  }
  return problem(404, 'not_found', `No admin API at ${request.method} ${ADMIN_API_PREFIX}${path}. See the README, "Admin API".`);
}
