/**
 * The audit section (/admin/audit): a filter form (a GET, so a query can be bookmarked and needs no
 * CSRF token), the matching rows newest first, and the same query exported as JSON Lines. The
 * query and its validation are the API's (admin-actions queryAudit); this file only reads the form
 * and draws the table.
 */
import { AUDIT_OUTCOMES, type AuditEntry } from '../../audit/audit-log.ts';
import { escapeHtml } from '../../auth/html.ts';
import { auditJsonl, queryAudit } from '../admin-actions.ts';
import { download, htmlResponse, type AdminContext, type AdminSection } from './context.ts';
import { adminLayout, displayTime, errorBox } from './layout.ts';

const AUDIT_PATH = '/admin/audit';
const EXPORT_PATH = '/admin/audit/export';
const FILTERS = ['user', 'host', 'tool', 'outcome', 'since', 'until', 'limit'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;

/**
 * The filters as typed: empty fields dropped, and times without a zone read as UTC (a bare date
 * starts at midnight for "since" and runs to the end of the day for "until"), because that is
 * what people type into a form; the API itself takes only full ISO times.
 */
function readFilters(params: URLSearchParams): Filters {
  const filters: Filters = {};
  for (const name of FILTERS) {
    const value = params.get(name)?.trim();
    if (value) filters[name] = value;
  }
  for (const name of ['since', 'until'] as const) {
    const value = filters[name];
    if (value === undefined) continue;
    if (/^\d{4}-\d{2}-\d{2}$/.test(value)) filters[name] = `${value}${name === 'since' ? 'T00:00:00Z' : 'T23:59:59.999Z'}`;
    else if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$/.test(value)) filters[name] = `${value.replace(' ', 'T')}Z`;
  }
  return filters;
}

/** The filters as they were typed, for the form and the export link (not the normalised times). */
function typedFilters(params: URLSearchParams): URLSearchParams {
  const typed = new URLSearchParams();
  for (const name of FILTERS) {
    const value = params.get(name)?.trim();
    if (value) typed.set(name, value);
  }
  return typed;
}

function filterForm(typed: URLSearchParams): string {
  const text = (name: string, label: string, placeholder: string): string =>
    `<div><label for="f-${name}">${label}</label><input id="f-${name}" name="${name}" type="text" value="${escapeHtml(typed.get(name) ?? '')}" placeholder="${escapeHtml(placeholder)}"></div>`;
  const outcome = typed.get('outcome') ?? '';
  const options = ['', ...AUDIT_OUTCOMES].map((value) => `<option value="${value}"${value === outcome ? ' selected' : ''}>${value || 'any'}</option>`).join('');
  return `<form method="get" action="${AUDIT_PATH}" class="row">
${text('user', 'User', 'alice')}${text('host', 'Host', 'web1')}${text('tool', 'Tool', 'ssh_exec_command')}
<div><label for="f-outcome">Outcome</label><select id="f-outcome" name="outcome">${options}</select></div>
${text('since', 'Since (UTC)', '2026-11-23 or …T10:00:00Z')}${text('until', 'Until (UTC)', '2026-11-24')}
<div><label for="f-limit">Limit</label><input id="f-limit" name="limit" type="number" min="1" max="10000" value="${escapeHtml(typed.get('limit') ?? '100')}"></div>
<div><button type="submit">Search</button></div>
<div><a class="button secondary" href="${AUDIT_PATH}">Clear</a></div></form>`;
}

function cell(value: string | number | null): string {
  return value === null ? '<span class="muted">—</span>' : escapeHtml(String(value));
}

function entryRow(entry: AuditEntry): string {
  return `<tr><td class="mono">${escapeHtml(displayTime(entry.time))}</td><td>${cell(entry.user)}</td><td>${cell(entry.client)}</td><td>${cell(entry.relay)}</td><td>${cell(entry.host)}</td>
<td class="mono">${cell(entry.tool)}</td><td class="target">${entry.target === null ? cell(null) : `<code>${escapeHtml(entry.target)}</code>`}</td>
<td><span class="badge ${escapeHtml(entry.outcome)}">${escapeHtml(entry.outcome)}</span></td><td class="mono">${cell(entry.code)}</td><td>${cell(entry.exitCode)}</td><td>${cell(entry.bytes)}</td><td>${escapeHtml(String(entry.durationMs))} ms</td></tr>`;
}

async function auditPage(context: AdminContext): Promise<Response> {
  const typed = typedFilters(context.url.searchParams);
  const result = await queryAudit(context.env, readFilters(context.url.searchParams));
  const exportHref = `${EXPORT_PATH}${typed.size > 0 ? `?${typed.toString()}` : ''}`;
  const results = result.ok
    ? `<section class="card"><div class="row spread"><h2>${result.entries.length} ${result.entries.length === 1 ? 'call' : 'calls'}, newest first</h2>
<a class="button secondary" href="${escapeHtml(exportHref)}">Export JSONL</a></div>
${
  result.entries.length === 0
    ? '<p class="muted">No recorded calls match.</p>'
    : `<div class="table-wrap"><table id="audit"><thead><tr><th>Time</th><th>User</th><th>Client</th><th>Relay</th><th>Host</th><th>Tool</th><th>Command / path</th><th>Outcome</th><th>Code</th><th>Exit</th><th>Bytes</th><th>Duration</th></tr></thead>
<tbody>${result.entries.map(entryRow).join('\n')}</tbody></table></div>`
}</section>`
    : errorBox(`The query was not run: ${result.message}`);
  const body = `<h1>Audit log</h1>
<section class="card"><h2>Filter</h2>${filterForm(typed)}
<p><small>Every tool call, allowed or denied, with who, which client, where and what; never file contents or output. Fields match exactly.</small></p></section>
${results}`;
  return htmlResponse(
    context.url,
    context.csrf,
    result.ok ? 200 : 400,
    adminLayout('Audit log', body, { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: AUDIT_PATH }),
  );
}

async function exportJsonl(context: AdminContext): Promise<Response> {
  const result = await queryAudit(context.env, readFilters(context.url.searchParams));
  if (!result.ok) {
    return htmlResponse(
      context.url,
      context.csrf,
      400,
      adminLayout(
        'Audit log',
        `<h1>Audit log</h1>${errorBox(`The export was not made: ${result.message}`)}<p><a href="${AUDIT_PATH}">Back to the audit log</a></p>`,
        { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: AUDIT_PATH },
      ),
    );
  }
  return download(auditJsonl(result.entries), 'application/x-ndjson', 'audit.jsonl');
}

export const auditSection: AdminSection = async (context) => {
  if (context.request.method !== 'GET') return null;
  if (context.url.pathname === AUDIT_PATH) return auditPage(context);
  if (context.url.pathname === EXPORT_PATH) return exportJsonl(context);
  return null;
};
