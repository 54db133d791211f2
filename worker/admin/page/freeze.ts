/**
 * The freeze section (/admin/freeze): what is frozen, a form that freezes the deployment, a user or
 * a relay (optionally cancelling its running jobs), and an unfreeze button for each mark. The same
 * actions as the API (worker/admin/freeze-actions.ts); the admin and CSRF checks are the page's own.
 */
import { escapeHtml } from '../../auth/html.ts';
import { freeze, readFreeze, unfreeze } from '../freeze-actions.ts';
import type { FreezeState } from '../../team/freeze.ts';
import { field, htmlResponse, type AdminContext, type AdminSection } from './context.ts';
import { adminLayout, csrfField, displayTime, errorBox, noticeBox } from './layout.ts';

const FREEZE_PATH = '/admin/freeze';
const UNFREEZE_PATH = '/admin/freeze/unfreeze';

function unfreezeButton(context: AdminContext, scope: string, name: string | null, label: string): string {
  const named = name !== null ? `<input type="hidden" name="name" value="${escapeHtml(name)}">` : '';
  return `<form method="post" action="${UNFREEZE_PATH}" class="inline">${csrfField(context.csrf)}<input type="hidden" name="scope" value="${scope}">${named}<button class="secondary" type="submit">Unfreeze ${escapeHtml(label)}</button></form>`;
}

function frozenRows(context: AdminContext, state: FreezeState): string {
  const rows = [
    ...(state.deployment ? [{ scope: 'deployment', name: null, label: 'the deployment', mark: state.deployment }] : []),
    ...state.users.map((user) => ({ scope: 'user', name: user.name, label: `user ${user.name}`, mark: user })),
    ...state.relays.map((relay) => ({ scope: 'relay', name: relay.name, label: `relay ${relay.name}`, mark: relay })),
  ];
  if (rows.length === 0) return '<tr><td colspan="3"><small class="muted">Nothing is frozen.</small></td></tr>';
  return rows
    .map(
      (row) =>
        `<tr><td><strong>${escapeHtml(row.label)}</strong> <span class="badge denied">frozen</span></td><td>by ${escapeHtml(row.mark.by)}, ${escapeHtml(displayTime(row.mark.at))}</td><td>${unfreezeButton(context, row.scope, row.name, row.label)}</td></tr>`,
    )
    .join('\n');
}

async function freezePage(context: AdminContext, status: number, state: { notice?: string; error?: string }): Promise<Response> {
  const frozen = await readFreeze(context.env);
  const body = `<h1>Freeze</h1>
${noticeBox(state.notice ?? null)}${errorBox(state.error ?? null)}
<section class="card"><div class="table-wrap"><table id="frozen">
<thead><tr><th>Frozen</th><th>Since</th><th></th></tr></thead>
<tbody>${frozenRows(context, frozen)}</tbody></table></div></section>
<section class="card"><h2>Freeze</h2>
<form method="post" action="${FREEZE_PATH}" class="row">${csrfField(context.csrf)}
<div><label for="freeze-scope">Scope</label><select id="freeze-scope" name="scope"><option value="deployment">the whole deployment</option><option value="user">a user</option><option value="relay">a relay</option></select></div>
<div><label for="freeze-name">User or relay name</label><input id="freeze-name" name="name" type="text" maxlength="64" placeholder="(not for the deployment)"></div>
<div><label><input type="checkbox" name="cancelJobs" value="true"> also cancel its running jobs</label></div>
<div><button class="danger" type="submit">Freeze</button></div></form>
<p><small>From the next request on, every new call of that scope (tools, transfer links, job calls) is refused and audited. Unfreeze restores it; nothing else changes.</small></p></section>`;
  return htmlResponse(
    context.url,
    context.csrf,
    status,
    adminLayout('Freeze', body, { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: FREEZE_PATH }),
  );
}

/** The form's fields as the API body: the name only where the scope takes one. */
function requestOf(context: AdminContext, withJobs: boolean): Record<string, unknown> {
  const scope = field(context.form, 'scope') ?? '';
  const name = field(context.form, 'name')?.trim() ?? '';
  return {
    scope,
    ...(scope !== 'deployment' ? { name } : {}),
    ...(withJobs ? { cancelJobs: field(context.form, 'cancelJobs') === 'true' } : {}),
  };
}

export const freezeSection: AdminSection = async (context) => {
  const { pathname } = context.url;
  const method = context.request.method;
  if (pathname === FREEZE_PATH && method === 'GET') return freezePage(context, 200, {});
  if (pathname === FREEZE_PATH && method === 'POST') {
    const frozen = await freeze(context.env, context.admin, requestOf(context, true));
    if (!frozen.ok) return freezePage(context, 400, { error: frozen.message });
    const jobs = frozen.jobs ? ` Running jobs: ${frozen.jobs.found} found, ${frozen.jobs.cancelled} cancelled.` : '';
    return freezePage(context, 200, { notice: `Frozen. Every new call of that scope is refused from now on.${jobs}` });
  }
  if (pathname === UNFREEZE_PATH && method === 'POST') {
    const thawed = await unfreeze(context.env, context.admin, requestOf(context, false));
    if (!thawed.ok) return freezePage(context, 400, { error: thawed.message });
    return freezePage(context, 200, { notice: 'Unfrozen.' });
  }
  return null;
};
