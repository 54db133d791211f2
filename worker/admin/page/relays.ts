/**
 * The relays section (/admin/relays): each relay's state (online, version, last seen, hosts, which
 * credential), a form that issues a relay its own token, and revocation with a confirmation step.
 * A new token appears only in the answer to the POST that made it, never in a URL or a log.
 */
import { RELAY_NAME_PATTERN } from '../../../shared/relay-credential.ts';
import { escapeHtml } from '../../auth/html.ts';
import { issueRelayCredential, listRelayStatuses, revokeRelayCredential, type RelayStatus } from '../relay-actions.ts';
import { field, htmlResponse, seeOther, type AdminContext, type AdminSection } from './context.ts';
import { adminLayout, csrfField, displayTime, errorBox, noticeBox } from './layout.ts';

const RELAYS_PATH = '/admin/relays';
const REVOKE_PATH = '/admin/relays/revoke';

interface RelaysPageState {
  notice?: string;
  error?: string;
  issued?: { name: string; token: string };
  draft?: string;
}

function stateBadge(relay: RelayStatus): string {
  if (relay.revokedAt) return '<span class="badge denied">revoked</span>';
  return relay.online ? '<span class="badge ok">online</span>' : '<span class="badge">offline</span>';
}

function relayRow(relay: RelayStatus): string {
  const seen =
    relay.online && relay.connectedAt
      ? `connected ${displayTime(relay.connectedAt)}`
      : relay.lastConnectedAt
        ? `last seen ${displayTime(relay.disconnectedAt ?? relay.lastConnectedAt)}`
        : 'never connected';
  const hosts =
    relay.hosts.length > 0 ? relay.hosts.map((host) => `<code>${escapeHtml(host.name)}</code>`).join(', ') : '<small class="muted">none reported</small>';
  const credential = relay.credential === 'issued' ? 'its own token' : 'deployment token (RELAY_TOKEN_HASH)';
  const revoke = relay.revokedAt
    ? `<small class="muted">revoked ${escapeHtml(displayTime(relay.revokedAt))}</small>`
    : `<a class="button secondary" href="${REVOKE_PATH}?relay=${encodeURIComponent(relay.name)}">Revoke…</a>`;
  return `<tr><td><strong>${escapeHtml(relay.name)}</strong></td><td>${stateBadge(relay)}</td><td>${escapeHtml(relay.version ?? '–')}</td><td>${escapeHtml(seen)}</td><td>${hosts}</td><td>${escapeHtml(credential)}</td><td>${revoke}</td></tr>`;
}

async function relaysPage(context: AdminContext, status: number, state: RelaysPageState): Promise<Response> {
  const relays = await listRelayStatuses(context.env);
  const issued = state.issued
    ? `<div class="secret" role="status"><p>Issued relay <strong>${escapeHtml(state.issued.name)}</strong> its own token: <code id="relay-token">${escapeHtml(state.issued.token)}</code></p>
<p><small>Copy it now: it is not shown again, and only its hash is stored. On the relay's machine put it in a file readable only by the relay (mode 600) and set <code>RELAY_TOKEN_FILE</code>; the token names the relay, so <code>RELAY_ID</code> can stay unset.</small></p></div>`
    : '';
  const rows =
    relays.length > 0
      ? relays.map((relay) => relayRow(relay)).join('\n')
      : '<tr><td colspan="7"><small class="muted">No relay has connected or been issued a token yet.</small></td></tr>';
  const body = `<h1>Relays</h1>
${noticeBox(state.notice ?? null)}${errorBox(state.error ?? null)}${issued}
<section class="card"><div class="table-wrap"><table>
<thead><tr><th>Relay</th><th>State</th><th>Version</th><th>Connection</th><th>Hosts</th><th>Credential</th><th></th></tr></thead>
<tbody>${rows}</tbody></table></div></section>
<section class="card"><h2>Issue a relay its own token</h2>
<form method="post" action="${RELAYS_PATH}" class="row">${csrfField(context.csrf)}
<div><label for="relay-name">Relay name</label><input id="relay-name" name="name" type="text" required pattern="${RELAY_NAME_PATTERN.source.slice(1, -1)}" maxlength="64" value="${escapeHtml(state.draft ?? '')}" placeholder="site-a"></div>
<div><button type="submit">Issue token</button></div></form>
<p><small>One token per relay (one per site or LAN). A relay already connected under this name with the deployment token is disconnected and must switch to the new token. A second relay presenting a live relay's token is refused, not allowed to take over.</small></p></section>`;
  return htmlResponse(
    context.url,
    context.csrf,
    status,
    adminLayout('Relays', body, { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: RELAYS_PATH }),
  );
}

function confirmRevokePage(context: AdminContext): Response {
  const name = context.url.searchParams.get('relay') ?? '';
  const body = `<h1>Revoke relay ${escapeHtml(name)}?</h1>
<section class="card"><p>Its connection closes now, requests in flight on it fail as "outcome unknown", and its hosts disappear from every listing. It cannot connect again with this token; issue a new one to bring it back.</p>
<form method="post" action="${REVOKE_PATH}">${csrfField(context.csrf)}<input type="hidden" name="relay" value="${escapeHtml(name)}">
<p class="actions"><button class="danger" type="submit">Revoke ${escapeHtml(name)}</button><a class="button secondary" href="${RELAYS_PATH}">Cancel</a></p></form></section>`;
  return htmlResponse(
    context.url,
    context.csrf,
    200,
    adminLayout('Revoke relay', body, { csrf: context.csrf, signedInAs: context.admin, showNav: true, active: RELAYS_PATH }),
  );
}

export const relaysSection: AdminSection = async (context) => {
  const { pathname } = context.url;
  const method = context.request.method;
  if (pathname === RELAYS_PATH && method === 'GET') {
    const revoked = context.url.searchParams.get('revoked');
    return relaysPage(context, 200, revoked && RELAY_NAME_PATTERN.test(revoked) ? { notice: `Revoked relay ${revoked}; its connection was closed.` } : {});
  }
  if (pathname === RELAYS_PATH && method === 'POST') {
    const name = field(context.form, 'name')?.trim() ?? '';
    const issued = await issueRelayCredential(context.env, context.admin, { name });
    if (!issued.ok) return relaysPage(context, issued.reason === 'conflict' ? 409 : 400, { error: issued.message, draft: name });
    return relaysPage(context, 200, { issued: { name: issued.relay.name, token: issued.token } });
  }
  if (pathname === REVOKE_PATH && method === 'GET') return confirmRevokePage(context);
  if (pathname === REVOKE_PATH && method === 'POST') {
    const revoked = await revokeRelayCredential(context.env, context.admin, field(context.form, 'relay') ?? '');
    if (!revoked.ok) return relaysPage(context, 404, { error: revoked.message });
    return seeOther(context.url, `${RELAYS_PATH}?revoked=${encodeURIComponent(revoked.relay.name)}`);
  }
  return null;
};
