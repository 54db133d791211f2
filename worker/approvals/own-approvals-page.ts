/**
 * /approvals/mine: where a person confirms their own held commands (a `confirm` rule) when their
 * client cannot be asked during the call (claude.ai has no elicitation). Any signed-in member of
 * the team may use it, admin or not, and sees only the pending records that they asked for and
 * that ask for their own confirmation; everything else is "not found". It is a browser page with
 * the shared session cookie and a CSRF token on every form, never a tool: a model must not be able
 * to confirm its own call. The desk checks the decider again when the form arrives.
 *
 * The exact command is shown in a <pre> through visibleText, so control characters and
 * bidirectional overrides are visible escapes, not a disguise.
 */
import { visibleText } from '../../shared/visible-text.ts';
import { readSession, type BrowserSession } from '../auth/browser-session.ts';
import { csrfMatches } from '../auth/csrf.ts';
import { escapeHtml } from '../auth/html.ts';
import { csrfTokenFor, field, htmlResponse, readForm, seeOther, MAX_FORM_BYTES } from '../admin/page/context.ts';
import { adminLayout, csrfField, displayTime, errorBox, noticeBox } from '../admin/page/layout.ts';
import { signInPage } from '../admin/page/sign-in.ts';
import { approvalDesk } from './approval-desk.ts';
import { APPROVAL_ID_PATTERN, type ApprovalRecord } from './approval-record.ts';
import { OWN_APPROVALS_PATH } from './own-approvals-path.ts';

const DECIDE_PATH = `${OWN_APPROVALS_PATH}/decide`;

export function isOwnApprovalsPath(pathname: string): boolean {
  return pathname === OWN_APPROVALS_PATH || pathname === DECIDE_PATH;
}

function isMine(record: ApprovalRecord, session: BrowserSession): boolean {
  return record.self && record.requester.userId === session.userId;
}

function card(record: ApprovalRecord, csrf: string): string {
  const text = (value: string): string => escapeHtml(visibleText(value));
  const rule = `rule ${record.rule.index}${record.rule.note ? `: ${text(record.rule.note)}` : ''}`;
  const guest = record.guest ? ` (${record.guest.kind === 'lxc' ? 'container' : 'VM'} ${text(record.guest.id)})` : '';
  const form = (verdict: 'approve' | 'reject', label: string, style: string): string =>
    `<form method="post" action="${DECIDE_PATH}">${csrfField(csrf)}<input type="hidden" name="id" value="${escapeHtml(record.id)}"><input type="hidden" name="verdict" value="${verdict}"><button type="submit" class="${style}">${label}</button></form>`;
  return `<section class="card approval" id="approval-${escapeHtml(record.id)}" data-approval="${escapeHtml(record.id)}">
<h2>On <code>${text(record.host)}</code>${guest}</h2>
<p><span class="badge denied">${escapeHtml(record.class)}</span> ${text(record.tool)} · client <strong>${text(record.client ?? 'unknown')}</strong> · expires ${escapeHtml(displayTime(new Date(record.expiresAt).toISOString()))}</p>
<p>Held for your own confirmation by ${rule}.</p>
<pre class="command">${text(record.command)}</pre>
<div class="actions">${form('approve', 'Confirm', '')}${form('reject', 'Reject', 'danger')}</div>
<p><small class="muted">Approval ${escapeHtml(record.id)}. Confirming lets this exact command run once, on this host, from this client, within 15 minutes; then ask your assistant to carry on (ssh_approval_status).</small></p></section>`;
}

async function page(url: URL, env: Env, session: BrowserSession, csrf: string, status: number, state: { notice?: string; error?: string }): Promise<Response> {
  const listed = await approvalDesk(env).list({ username: session.username, userId: session.userId });
  const mine = listed.ok ? listed.value.filter((record) => isMine(record, session)) : [];
  const list =
    mine.length > 0
      ? mine.map((record) => card(record, csrf)).join('\n')
      : '<section class="card"><p class="muted">None of your commands is waiting for your confirmation.</p></section>';
  const body = `<h1>Your commands waiting for you</h1>
${noticeBox(state.notice ?? null)}${errorBox(state.error ?? null)}
<p><small class="muted">Commands your assistant asked to run that a rule holds for your own confirmation. Read each command: confirm only what you mean to run.</small></p>
${list}`;
  return htmlResponse(url, csrf, status, adminLayout('Your approvals', body, { csrf, signedInAs: session.username, showNav: false }));
}

export async function handleOwnApprovals(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const csrf = csrfTokenFor(request);
  const method = request.method;
  if ((url.pathname === OWN_APPROVALS_PATH && method !== 'GET') || (url.pathname === DECIDE_PATH && method !== 'POST'))
    return new Response('Method not allowed\n', {
      status: 405,
      headers: { Allow: url.pathname === DECIDE_PATH ? 'POST' : 'GET', 'Cache-Control': 'no-store' },
    });
  // readSession checks the account is active now and the session not revoked.
  const session = await readSession(request, env);
  if (!session) {
    if (method === 'GET') return signInPage(url, csrf, 200, { next: OWN_APPROVALS_PATH });
    return signInPage(url, csrf, 401, {
      next: OWN_APPROVALS_PATH,
      error: 'You are not signed in (or your session ended); nothing was changed. Please sign in.',
    });
  }
  if (method === 'GET') {
    const done = url.searchParams.get('decided');
    return page(
      url,
      env,
      session,
      csrf,
      200,
      done === 'approve' ? { notice: 'Confirmed. Ask your assistant to carry on.' } : done === 'reject' ? { notice: 'Rejected.' } : {},
    );
  }
  const form = await readForm(request);
  if (!form) return new Response(`Send a form of at most ${MAX_FORM_BYTES} bytes.\n`, { status: 400, headers: { 'Cache-Control': 'no-store' } });
  if (!csrfMatches(request, field(form, 'csrf')))
    return page(url, env, session, csrf, 403, {
      error: 'This form expired or was sent from another site, so nothing was changed. Reload the page and try again.',
    });
  const verdict = field(form, 'verdict');
  if (verdict !== 'approve' && verdict !== 'reject') return page(url, env, session, csrf, 400, { error: 'Choose confirm or reject.' });
  const id = field(form, 'id') ?? '';
  const desk = approvalDesk(env);
  const caller = { username: session.username, userId: session.userId };
  // Only the requester's own self-confirmable records, whatever else this person may decide elsewhere.
  const found = APPROVAL_ID_PATTERN.test(id) ? await desk.status(id, caller) : null;
  if (!found?.ok || !isMine(found.value, session))
    return page(url, env, session, csrf, 404, { error: 'No command of yours waits for your confirmation under that id.' });
  const decided = await desk.decide(id, caller, verdict);
  if (!decided.ok) return page(url, env, session, csrf, 409, { error: decided.error.message });
  return seeOther(url, `${OWN_APPROVALS_PATH}?decided=${verdict}`);
}
