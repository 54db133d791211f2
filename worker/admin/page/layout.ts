/**
 * The admin page's HTML shell: a header with the sections and the sign-out button, and a wide
 * main area for tables. Everything interpolated here is escaped; pages pass finished, escaped HTML
 * as `body`. No script: every action is a plain form, so the page works with JavaScript off and
 * the CSP (see pageHeaders) can forbid scripts entirely.
 */
import { escapeHtml } from '../../auth/html.ts';

/**
 * The sections in the header, in order. A new section adds its entry here and its handler to
 * SECTIONS in worker/admin/admin-page.ts.
 */
export const ADMIN_NAV: readonly { path: string; label: string }[] = [
  { path: '/admin', label: 'Users' },
  { path: '/admin/relays', label: 'Relays' },
  { path: '/admin/policy', label: 'Policy' },
  { path: '/admin/approvals', label: 'Approvals' },
  { path: '/admin/audit', label: 'Audit log' },
  { path: '/admin/freeze', label: 'Freeze' },
];

export interface LayoutOptions {
  /** The signed-in user; omitted on the sign-in page. */
  signedInAs?: string;
  /** The path of the current section in ADMIN_NAV, to mark it; omitted on pages outside the sections. */
  active?: string;
  /** Shown in the header only to deployment admins. */
  showNav?: boolean;
  csrf: string;
}

const STYLE = `
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;background:#f5f5f4;color:#1c1917;margin:0}
header{background:#1c1917;color:#fafaf9;padding:.6rem 1.5rem;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}
header .brand{font-weight:700;margin-right:.5rem}header nav{display:flex;gap:.25rem;flex:1}
header nav a{color:#d6d3d1;text-decoration:none;padding:.3rem .7rem;border-radius:6px}
header nav a:hover{background:#44403c;color:#fff}header nav a[aria-current=page]{background:#fafaf9;color:#1c1917}
header .who{color:#d6d3d1;font-size:.9rem}header form{margin:0}
main{max-width:80rem;margin:1.5rem auto;padding:0 1.5rem}
main.narrow{max-width:26rem;margin-top:10vh}
section.card{background:#fff;border:1px solid #e7e5e4;border-radius:12px;padding:1.25rem 1.5rem;margin-bottom:1.25rem;box-shadow:0 1px 3px #0001}
h1{font-size:1.35rem;margin:0 0 1rem}h2{font-size:1.05rem;margin:0 0 .75rem}
label{display:block;margin:.5rem 0 .2rem;font-weight:600;font-size:.9rem}
input[type=text],input[type=password],input[type=number],select,textarea{padding:.4rem .5rem;border:1px solid #a8a29e;border-radius:6px;font:inherit;background:#fff}
main.narrow input{width:100%}
textarea{width:100%;font:13px/1.45 ui-monospace,monospace;min-height:24rem}
button,.button{font:inherit;font-size:.9rem;padding:.35rem .8rem;border-radius:6px;border:1px solid #1c1917;background:#1c1917;color:#fff;cursor:pointer;text-decoration:none;display:inline-block;white-space:nowrap}
button.secondary,.button.secondary{background:#fff;color:#1c1917}button.danger{background:#b91c1c;border-color:#b91c1c}
.row{display:flex;gap:.75rem;align-items:flex-end;flex-wrap:wrap}.row.spread{justify-content:space-between;align-items:center;margin-bottom:.5rem}.row.spread h2{margin:0}.row>div{display:flex;flex-direction:column}
.actions{display:flex;gap:.35rem;flex-wrap:wrap}.actions form{margin:0}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e7e5e4;vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:#57534e;background:#fafaf9}
tbody tr:hover{background:#fafaf9}
td form.inline{display:flex;gap:.35rem;margin:0}td form.inline input{width:12rem}
.table-wrap{overflow-x:auto}
code,.mono{font-family:ui-monospace,monospace;font-size:.85rem}
td.target code{word-break:break-all;white-space:pre-wrap}
.badge{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.78rem;border:1px solid #d6d3d1;background:#f5f5f4}
.badge.ok{background:#dcfce7;border-color:#86efac}.badge.error{background:#fef9c3;border-color:#fde047}
.badge.denied,.badge.disabled{background:#fee2e2;border-color:#fca5a5}.badge.admin{background:#e0e7ff;border-color:#a5b4fc}
.notice{background:#f0fdf4;border:1px solid #bbf7d0;padding:.6rem .9rem;border-radius:8px;margin-bottom:1rem}
.error{background:#fef2f2;border:1px solid #fecaca;padding:.6rem .9rem;border-radius:8px;margin-bottom:1rem;white-space:pre-wrap}
.secret{background:#fffbeb;border:1px solid #fcd34d;padding:.8rem 1rem;border-radius:8px;margin-bottom:1rem}
.secret code{font-size:1.1rem;background:#fff;border:1px solid #e7e5e4;padding:.15rem .4rem;border-radius:4px;user-select:all}
small,.muted{color:#57534e}
pre.command{background:#1c1917;color:#fafaf9;padding:.6rem .8rem;border-radius:8px;white-space:pre-wrap;word-break:break-all;font:13px/1.45 ui-monospace,monospace}
`;

function header(options: LayoutOptions): string {
  if (!options.signedInAs) return `<header><span class="brand">mcp-remote-exec admin</span></header>`;
  const nav = options.showNav
    ? ADMIN_NAV.map(
        (item) => `<a href="${escapeHtml(item.path)}"${item.path === options.active ? ' aria-current="page"' : ''}>${escapeHtml(item.label)}</a>`,
      ).join('')
    : '';
  return `<header><span class="brand">mcp-remote-exec admin</span><nav>${nav}</nav>
<span class="who">Signed in as <strong>${escapeHtml(options.signedInAs)}</strong></span>
<form method="post" action="/admin/sign-out"><input type="hidden" name="csrf" value="${escapeHtml(options.csrf)}"><button class="secondary" type="submit">Sign out</button></form></header>`;
}

/** A whole admin page. `body` must already be escaped HTML. */
export function adminLayout(title: string, body: string, options: LayoutOptions): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · mcp-remote-exec admin</title>
<style>${STYLE}</style></head><body>
${header(options)}
<main${options.signedInAs ? '' : ' class="narrow"'}>${body}</main></body></html>`;
}

export function noticeBox(message: string | null): string {
  return message ? `<p class="notice" role="status">${escapeHtml(message)}</p>` : '';
}

export function errorBox(message: string | null): string {
  return message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : '';
}

export function csrfField(csrf: string): string {
  return `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;
}

/** An ISO time as "2026-11-23 10:04:05 UTC", or "—" for none. */
export function displayTime(iso: string): string {
  if (!iso) return '—';
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : `${time.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
