/**
 * The pages of the /authorize flow: sign-in (names the client, offers the password form and the
 * configured identity providers), consent (names the signed-in user, the client, where tokens
 * will go), a refusal for a client whose metadata document cannot be used, and a plain message
 * page for other refusals. Everything that came from a client or an identity provider is escaped;
 * the forms carry only a CSRF token and the library's consent handle, never the authorization
 * request itself.
 */
import type { CimdFetchError, ConsentDescription } from '@cloudflare/workers-oauth-provider';
import { escapeHtml, page, pageHeaders } from './html.ts';

export interface ProviderButton {
  action: 'oidc' | 'github';
  label: string;
}

export interface SignInPageInput {
  formAction: string;
  csrf: string;
  handle: string;
  details: ConsentDescription;
  passwordForm: boolean;
  providers: ProviderButton[];
  username?: string;
  error?: string;
}

export interface ConsentPageInput {
  formAction: string;
  csrf: string;
  handle: string;
  details: ConsentDescription;
  username: string;
  userId: string;
  via: string;
}

/**
 * Who is asking. A CIMD client's domain is verified (the provider fetched its metadata document from
 * that host), so it leads, apart from the name, which the client chose itself either way. A registered
 * client has only its self-chosen name, and the page says so.
 */
function clientBox(details: ConsentDescription, lead: string): string {
  const name = escapeHtml(details.clientName.trim() || 'An MCP client');
  const loopback = details.redirectIsLoopback
    ? '<br><strong class="warn">Access goes to an app on this computer.</strong> Continue only if you just started signing in from it.'
    : '';
  const destination = `Access will be sent to <strong>${escapeHtml(details.redirectHost)}</strong>.${loopback}`;
  if (details.clientDomain) {
    return `<div class="client"><p class="domain">An app from <strong>${escapeHtml(details.clientDomain)}</strong></p>
<p><small>Verified: its sign-up document is published at this domain.</small><br>It calls itself <strong>${name}</strong> and ${lead}<br><small>${destination}</small></p></div>`;
  }
  return `<div class="client"><p><strong>${name}</strong> ${lead}<br><small>This app registered itself; its name is not verified. ${destination}</small></p></div>`;
}

/**
 * The page for a client whose metadata document could not be fetched or did not pass the checks
 * (wrong client_id, too large, too slow, malformed). No grant is made and the browser stays here:
 * nothing about the client, its redirect URIs included, has been verified.
 */
export function clientNotVerifiedPage(error: CimdFetchError, headers?: Headers): Response {
  // The library's reason (bounded: it may quote the document) helps whoever runs that app.
  const detail = error.detail.length > 300 ? `${error.detail.slice(0, 300)}…` : error.detail;
  return messagePage(
    400,
    'This app could not be verified',
    `It identifies itself by the web address ${error.metadataUrl.slice(0, 300)}, and the document there could not be used (${detail}). Nothing was allowed. Start again from your MCP client; if this keeps happening, tell whoever publishes the app.`,
    headers,
  );
}

function hidden(name: string, value: string): string {
  return `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
}

export function signInPage(input: SignInPageInput): string {
  const passwordFields = input.passwordForm
    ? `<label for="username">User name</label><input id="username" name="username" type="text" autocomplete="username" required value="${escapeHtml(input.username ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<div class="buttons"><button type="submit" name="action" value="approve">Sign in and allow</button><button class="secondary" type="submit" name="action" value="deny" formnovalidate>Deny</button></div>`
    : '';
  const providers = input.providers
    .map(
      (provider) =>
        `<button class="provider" type="submit" name="action" value="${provider.action}" formnovalidate>Continue with ${escapeHtml(provider.label)}</button>`,
    )
    .join('');
  const providerBlock = providers ? `${input.passwordForm ? '<p class="or"><small>or</small></p>' : ''}<div class="providers">${providers}</div>` : '';
  const denyOnly = input.passwordForm
    ? ''
    : '<div class="buttons"><button class="secondary" type="submit" name="action" value="deny" formnovalidate>Deny</button></div>';
  return page(
    'Sign in: mcp-remote-exec',
    `<h1>Sign in to mcp-remote-exec</h1>
${clientBox(input.details, 'wants to run commands on your servers through this bridge.')}
${input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : ''}
<form method="post" action="${escapeHtml(input.formAction)}">
${hidden('csrf', input.csrf)}
${hidden('handle', input.handle)}
${passwordFields}${providerBlock}${denyOnly}
</form>
<p><small>Only sign in if you started this from a client you trust.</small></p>`,
  );
}

export function consentPage(input: ConsentPageInput): string {
  const scopes =
    input.details.scope.length > 0 ? `<p><small>Scopes: ${input.details.scope.map((scope) => `<code>${escapeHtml(scope)}</code>`).join(' ')}</small></p>` : '';
  return page(
    `Allow ${input.details.clientName}? mcp-remote-exec`,
    `<h1>Allow ${escapeHtml(input.details.clientName.trim() || 'this client')}?</h1>
<p>Signed in as <strong>${escapeHtml(input.username)}</strong> <small>(${escapeHtml(input.via)})</small>.</p>
${clientBox(input.details, 'wants to run commands on your servers in your name, as the team policy allows you.')}
${scopes}
<form method="post" action="${escapeHtml(input.formAction)}">
${hidden('csrf', input.csrf)}
${hidden('handle', input.handle)}
${hidden('as', input.userId)}
<div class="buttons"><button type="submit" name="action" value="approve">Allow</button><button class="secondary" type="submit" name="action" value="deny">Deny</button></div>
<p><button class="link" type="submit" name="action" value="switch">Not you? Use another account</button></p>
</form>
<p><small>If you allow, this is remembered for this app and this browser for 30 days.</small></p>`,
  );
}

export function messagePage(status: number, title: string, message: string, headers: Headers = pageHeaders()): Response {
  headers.set('Content-Type', 'text/html; charset=utf-8');
  return new Response(page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`), { status, headers });
}
