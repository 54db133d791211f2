/**
 * The users section (/admin): the team's accounts, and forms to add, disable or enable, reset,
 * regroup and delete them. A new one-time password appears only in the answer to the POST that
 * made it, never in a URL or a log; every other change redirects back with a short notice.
 */
import { escapeHtml } from '../../auth/html.ts';
import type { UserSummary } from '../../team/team-directory.ts';
import { USERNAME_PATTERN } from '../../team/team-directory.ts';
import { addUser, changeUser, deleteUser, listUsers, type ActionFailure } from '../admin-actions.ts';
import { field, htmlResponse, seeOther, type AdminContext, type AdminSection } from './context.ts';
import { adminLayout, csrfField, displayTime, errorBox, noticeBox } from './layout.ts';

const USERS_PATH = '/admin';
const DELETE_PATH = '/admin/users/delete';
const ACTION_PATH = '/admin/users';

/** Notices named in the redirect after a change; only these codes are shown, so a crafted link cannot put words on the page. */
const NOTICES = {
  groups: (user: string) => `Saved the groups of ${user}.`,
  disabled: (user: string) => `Disabled ${user}; their sign-ins and tokens no longer work.`,
  enabled: (user: string) => `Enabled ${user}.`,
  deleted: (user: string) => `Deleted ${user} and revoked their tokens.`,
} as const;
type NoticeCode = keyof typeof NOTICES;

function isNoticeCode(value: string | null): value is NoticeCode {
  return value !== null && Object.hasOwn(NOTICES, value);
}

interface UsersPageState {
  notice?: string;
  error?: string;
  /** The one-time password to show once, with whose it is. */
  secret?: { username: string; password: string; reason: 'added' | 'reset' };
  /** What the add form held when adding failed. */
  draft?: { username: string; groups: string };
}

/** Groups as typed in a form: separated by commas or spaces. */
function parseGroups(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

function secretBox(secret: UsersPageState['secret']): string {
  if (!secret) return '';
  const what =
    secret.reason === 'added'
      ? `Added <strong>${escapeHtml(secret.username)}</strong>. Their one-time password is`
      : `New one-time password for <strong>${escapeHtml(secret.username)}</strong>:`;
  return `<div class="secret" role="status"><p>${what} <code id="one-time-password">${escapeHtml(secret.password)}</code></p>
<p><small>Copy it now and give it to ${escapeHtml(secret.username)} over a private channel: it is not shown again, and only its hash is stored.</small></p></div>`;
}

function userRow(user: UserSummary, csrf: string): string {
  const name = escapeHtml(user.username);
  if (user.bootstrap) {
    return `<tr data-user="${name}"><td><strong>${name}</strong> <span class="badge admin">deployment admin</span></td>
<td class="muted">—</td><td>${user.disabled ? '<span class="badge disabled">no password set</span>' : '<span class="badge ok">active</span>'}</td><td>—</td><td>—</td>
<td><small class="muted">Set by ADMIN_USERNAME and the ADMIN_PASSWORD_HASH secret; always an admin.</small></td></tr>`;
  }
  const hidden = `${csrfField(csrf)}<input type="hidden" name="username" value="${name}">`;
  const toggle = user.disabled
    ? `<form method="post" action="${ACTION_PATH}">${hidden}<button class="secondary" type="submit" name="action" value="enable">Enable</button></form>`
    : `<form method="post" action="${ACTION_PATH}">${hidden}<button class="secondary" type="submit" name="action" value="disable">Disable</button></form>`;
  return `<tr data-user="${name}"><td><strong>${name}</strong></td>
<td><form class="inline" method="post" action="${ACTION_PATH}">${hidden}<input type="text" name="groups" aria-label="Groups of ${name}" value="${escapeHtml(user.groups.join(', '))}" placeholder="no groups"><button class="secondary" type="submit" name="action" value="groups">Save groups</button></form></td>
<td>${user.disabled ? '<span class="badge disabled">disabled</span>' : '<span class="badge ok">active</span>'}</td>
<td>${escapeHtml(displayTime(user.createdAt))}</td><td>${escapeHtml(displayTime(user.updatedAt))}</td>
<td><div class="actions">${toggle}
<form method="post" action="${ACTION_PATH}">${hidden}<button class="secondary" type="submit" name="action" value="reset">Reset password</button></form>
<a class="button secondary" href="${DELETE_PATH}?username=${encodeURIComponent(user.username)}">Delete…</a></div></td></tr>`;
}

async function usersPage(context: AdminContext, status: number, state: UsersPageState): Promise<Response> {
  const users = await listUsers(context.env);
  const body = `<h1>Users</h1>
${noticeBox(state.notice ?? null)}${errorBox(state.error ?? null)}${secretBox(state.secret)}
<section class="card"><h2>Add a user</h2>
<form method="post" action="${ACTION_PATH}" class="row">${csrfField(context.csrf)}
<div><label for="new-username">User name</label><input id="new-username" name="username" type="text" required maxlength="64" value="${escapeHtml(state.draft?.username ?? '')}"></div>
<div><label for="new-groups">Groups <small>(comma-separated, optional)</small></label><input id="new-groups" name="groups" type="text" value="${escapeHtml(state.draft?.groups ?? '')}" placeholder="ops, dev"></div>
<div><button type="submit" name="action" value="add">Add user</button></div>
</form>
<p><small>The new user gets a one-time password, shown here once. What they may do is set by the <a href="/admin/policy">policy</a> (grants to <code>user:NAME</code> or <code>group:NAME</code>).</small></p></section>
<section class="card"><h2>Accounts (${users.length})</h2><div class="table-wrap"><table id="users">
<thead><tr><th>User</th><th>Groups</th><th>Status</th><th>Created</th><th>Updated</th><th>Actions</th></tr></thead>
<tbody>${users.map((user) => userRow(user, context.csrf)).join('\n')}</tbody></table></div>
<p><small>Disabling a user, resetting their password or deleting them ends their sign-ins and revokes their MCP tokens at once.</small></p></section>`;
  return htmlResponse(
    context.url,
    context.csrf,
    status,
    adminLayout('Users', body, { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: USERS_PATH }),
  );
}

function failureStatus(failure: ActionFailure): number {
  switch (failure.reason) {
    case 'invalid_argument':
      return 400;
    case 'conflict':
      return 409;
    case 'not_found':
      return 404;
    default: {
      const unhandled: never = failure.reason;
      throw new Error(`unhandled action failure ${String(unhandled)}`);
    }
  }
}

function confirmDeletePage(context: AdminContext): Response {
  const username = context.url.searchParams.get('username') ?? '';
  if (!USERNAME_PATTERN.test(username)) return seeOther(context.url, USERS_PATH);
  const name = escapeHtml(username);
  const body = `<section class="card"><h1>Delete ${name}?</h1>
<p>This removes the account <strong>${name}</strong>, ends their sign-ins and revokes their MCP tokens. Grants in the policy that name <code>user:${name}</code> stay until you edit the policy.</p>
<p class="muted">To stop access for now but keep the account, disable it instead.</p>
<form method="post" action="${ACTION_PATH}" class="actions">${csrfField(context.csrf)}<input type="hidden" name="username" value="${name}">
<button class="danger" type="submit" name="action" value="delete">Delete ${name}</button><a class="button secondary" href="${USERS_PATH}">Cancel</a></form></section>`;
  return htmlResponse(
    context.url,
    context.csrf,
    200,
    adminLayout(`Delete ${username}`, body, { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: USERS_PATH }),
  );
}

function done(context: AdminContext, code: NoticeCode, username: string): Response {
  return seeOther(context.url, `${USERS_PATH}?done=${code}&user=${encodeURIComponent(username)}`);
}

async function act(context: AdminContext): Promise<Response> {
  const action = field(context.form, 'action');
  const username = (field(context.form, 'username') ?? '').trim();
  const groupsText = field(context.form, 'groups') ?? '';
  const refuse = (failure: ActionFailure, draft?: UsersPageState['draft']): Promise<Response> =>
    usersPage(context, failureStatus(failure), { error: failure.message, ...(draft ? { draft } : {}) });
  switch (action) {
    case 'add': {
      const added = await addUser(context.env, context.admin, { username, groups: parseGroups(groupsText) });
      if (!added.ok) return refuse(added, { username, groups: groupsText });
      return usersPage(context, 200, { secret: { username: added.user.username, password: added.password, reason: 'added' } });
    }
    case 'reset': {
      const reset = await changeUser(context.env, context.admin, username, { resetPassword: true });
      if (!reset.ok) return refuse(reset);
      if (reset.password === undefined) throw new Error('a password reset returned no password');
      return usersPage(context, 200, { secret: { username: reset.user.username, password: reset.password, reason: 'reset' } });
    }
    case 'disable':
    case 'enable': {
      const changed = await changeUser(context.env, context.admin, username, { disabled: action === 'disable' });
      return changed.ok ? done(context, action === 'disable' ? 'disabled' : 'enabled', changed.user.username) : refuse(changed);
    }
    case 'groups': {
      const changed = await changeUser(context.env, context.admin, username, { groups: parseGroups(groupsText) });
      return changed.ok ? done(context, 'groups', changed.user.username) : refuse(changed);
    }
    case 'delete': {
      const deleted = await deleteUser(context.env, context.admin, username);
      return deleted.ok ? done(context, 'deleted', deleted.deleted) : refuse(deleted);
    }
    default:
      return usersPage(context, 400, { error: 'Unknown action; nothing was changed.' });
  }
}

export const usersSection: AdminSection = async (context) => {
  const { pathname } = context.url;
  const method = context.request.method;
  if (pathname === USERS_PATH && method === 'GET') {
    const code = context.url.searchParams.get('done');
    const user = context.url.searchParams.get('user') ?? '';
    const notice = isNoticeCode(code) && USERNAME_PATTERN.test(user) ? NOTICES[code](user) : undefined;
    return usersPage(context, 200, notice ? { notice } : {});
  }
  if (pathname === DELETE_PATH && method === 'GET') return confirmDeletePage(context);
  if (pathname === ACTION_PATH && method === 'POST') return act(context);
  return null;
};
