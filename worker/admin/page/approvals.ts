/**
 * The approvals queue (/admin/approvals): each held command waiting for a decision, with who asked,
 * from which client, on which host, its class and why, the rule that held it, its age, and the exact
 * command in a <pre> (shown through visibleText, so control characters and bidirectional overrides
 * are visible escapes, not a disguise). Approve and reject are plain forms with the page's CSRF token;
 * the desk checks the approver again when the form arrives.
 */
import { visibleText } from '../../../shared/visible-text.ts';
import { escapeHtml } from '../../auth/html.ts';
import { approversLabel, type ApprovalRecord } from '../../approvals/approval-record.ts';
import { decideApproval, pendingApprovals } from '../approval-actions.ts';
import { field, htmlResponse, seeOther, type AdminContext, type AdminSection } from './context.ts';
import { adminLayout, csrfField, displayTime, errorBox, noticeBox } from './layout.ts';

export const APPROVALS_PATH = '/admin/approvals';
const DECIDE_PATH = '/admin/approvals/decide';

function age(createdAt: number, now: number): string {
  const minutes = Math.max(0, Math.floor((now - createdAt) / 60_000));
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function card(record: ApprovalRecord, csrf: string, now: number): string {
  const text = (value: string): string => escapeHtml(visibleText(value));
  const reasons = record.reasons.length > 0 ? `<ul>${record.reasons.map((reason) => `<li>${text(reason)}</li>`).join('')}</ul>` : '';
  const rule = `rule ${record.rule.index}${record.rule.note ? `: ${text(record.rule.note)}` : ''}`;
  const guest = record.guest ? ` (${record.guest.kind === 'lxc' ? 'container' : 'VM'} ${text(record.guest.id)})` : '';
  const form = (verdict: 'approve' | 'reject', label: string, style: string): string =>
    `<form method="post" action="${DECIDE_PATH}">${csrfField(csrf)}<input type="hidden" name="id" value="${escapeHtml(record.id)}"><input type="hidden" name="verdict" value="${verdict}"><button type="submit" class="${style}">${label}</button></form>`;
  return `<section class="card approval" id="approval-${escapeHtml(record.id)}" data-approval="${escapeHtml(record.id)}">
<h2>${text(record.requester.username)} on <code>${text(record.host)}</code>${guest}</h2>
<p><span class="badge denied">${escapeHtml(record.class)}</span> ${text(record.tool)} · client <strong>${text(record.client ?? 'unknown')}</strong> · asked ${escapeHtml(age(record.createdAt, now))} ago · expires ${escapeHtml(displayTime(new Date(record.expiresAt).toISOString()))}</p>
<p>Held by ${rule}; decided by ${text(approversLabel(record))}.</p>${reasons}
<pre class="command">${text(record.command)}</pre>
<div class="actions">${form('approve', 'Approve', '')}${form('reject', 'Reject', 'danger')}</div>
<p><small class="muted">Approval ${escapeHtml(record.id)}. Approving lets ${text(record.requester.username)} run exactly this command once, on this host, from this client, within 15 minutes.</small></p></section>`;
}

async function approvalsPage(context: AdminContext, status: number, state: { notice?: string; error?: string }): Promise<Response> {
  const pending = await pendingApprovals(context.env, context.admin);
  const now = Date.now();
  const list =
    pending.length > 0
      ? pending.map((record) => card(record, context.csrf, now)).join('\n')
      : '<section class="card"><p class="muted">Nothing is waiting for approval.</p></section>';
  const body = `<h1>Approvals</h1>
${noticeBox(state.notice ?? null)}${errorBox(state.error ?? null)}
<p><small class="muted">Commands that the policy's command rules hold for a person. The requester gets the result once approved (on their client, or with ssh_approval_status).</small></p>
${list}`;
  return htmlResponse(
    context.url,
    context.csrf,
    status,
    adminLayout('Approvals', body, { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: APPROVALS_PATH }),
  );
}

export const approvalsSection: AdminSection = async (context) => {
  const { pathname } = context.url;
  const method = context.request.method;
  if (pathname === APPROVALS_PATH && method === 'GET') {
    const done = context.url.searchParams.get('decided');
    return approvalsPage(context, 200, done === 'approve' ? { notice: 'Approved.' } : done === 'reject' ? { notice: 'Rejected.' } : {});
  }
  if (pathname === DECIDE_PATH && method === 'POST') {
    const verdict = field(context.form, 'verdict');
    if (verdict !== 'approve' && verdict !== 'reject') return approvalsPage(context, 400, { error: 'Choose approve or reject.' });
    const decided = await decideApproval(context.env, context.admin, field(context.form, 'id') ?? '', verdict);
    if (!decided.ok) return approvalsPage(context, decided.reason === 'not_found' ? 404 : 409, { error: decided.message });
    return seeOther(context.url, `${APPROVALS_PATH}?decided=${verdict}`);
  }
  return null;
};
