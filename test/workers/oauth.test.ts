import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { hiddenField } from '../harness/sign-in-form.ts';
import {
  accessToken,
  authorize,
  exchangeCode,
  INITIALIZE,
  mcpPost,
  pkceAuthorizeUrl,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  RESOURCE,
  selfFetch,
  TEST_ADMIN,
} from './oauth-flow.ts';
import { signInThroughForm } from '../harness/sign-in-form.ts';
import { BASE_URL } from './relay-socket.ts';

function codeFrom(location: string | null): string | null {
  return location ? new URL(location).searchParams.get('code') : null;
}

describe('discovery', () => {
  it('answers /mcp without a token with 401 pointing at the protected-resource metadata', async () => {
    const response = await SELF.fetch(RESOURCE, { method: 'POST', body: '{}' });
    expect(response.status).toBe(401);
    expect(response.headers.get('WWW-Authenticate')).toContain(`resource_metadata="${BASE_URL}/.well-known/oauth-protected-resource/mcp"`);
  });

  it('publishes the resource and its authorization server', async () => {
    const metadata: unknown = await (await SELF.fetch(`${BASE_URL}/.well-known/oauth-protected-resource/mcp`)).json();
    expect(metadata).toMatchObject({ resource: RESOURCE, authorization_servers: [BASE_URL] });
    const server: unknown = await (await SELF.fetch(`${BASE_URL}/.well-known/oauth-authorization-server`)).json();
    expect(server).toMatchObject({ registration_endpoint: `${BASE_URL}/register`, code_challenge_methods_supported: ['S256'] });
  });

  it('refuses a token that is not one of ours', async () => {
    const response = await mcpPost('not-a-real-token', INITIALIZE);
    expect(response.status).toBe(401);
  });
});

describe('sign-in and token exchange', () => {
  it('issues a token bound to the MCP resource that opens a session', async () => {
    const { clientId, verifier, result } = await authorize();
    expect(result.status).toBe(302);
    const code = codeFrom(result.location);
    expect(code).toBeTruthy();
    expect(new URL(result.location ?? '').searchParams.get('state')).toBe('state-123');
    const tokenResponse = await exchangeCode(clientId, code ?? '', verifier);
    expect(tokenResponse.status).toBe(200);
    const tokens: unknown = await tokenResponse.json();
    expect(tokens).toMatchObject({ token_type: 'bearer', resource: RESOURCE });
    const token = typeof tokens === 'object' && tokens && 'access_token' in tokens && typeof tokens.access_token === 'string' ? tokens.access_token : '';
    const session = await mcpPost(token, INITIALIZE);
    expect(session.status).toBe(200);
    expect(session.headers.get('mcp-session-id')).toBeTruthy();
    await session.body?.cancel();
  });

  it('refuses a reused authorization code', async () => {
    const { clientId, verifier, result } = await authorize();
    const code = codeFrom(result.location) ?? '';
    expect((await exchangeCode(clientId, code, verifier)).status).toBe(200);
    const again = await exchangeCode(clientId, code, verifier);
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses a code exchanged with the wrong PKCE verifier', async () => {
    const { clientId, result } = await authorize();
    const other = await pkcePair();
    const response = await exchangeCode(clientId, codeFrom(result.location) ?? '', other.verifier);
    expect(response.status).toBe(400);
  });

  it('refuses PKCE plain', async () => {
    const { result } = await authorize({ code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
    expect(result.status).toBe(302);
    const location = new URL(result.location ?? '');
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('code')).toBeNull();
  });

  it('refuses a public client without PKCE', async () => {
    const { result } = await authorize({ code_challenge: undefined, code_challenge_method: undefined });
    expect(new URL(result.location ?? '').searchParams.get('error')).toBe('invalid_request');
  });

  it('refuses a redirect URI that does not exactly match, without redirecting', async () => {
    const { result } = await authorize({ redirect_uri: `${REDIRECT_URI}/extra` });
    expect(result.status).toBe(400);
    expect(result.location).toBeNull();
    expect(result.body).toContain('Invalid redirect URI');
  });

  it('refuses to issue a token for another resource', async () => {
    const { result } = await authorize({ resource: `${BASE_URL}/other` });
    expect(new URL(result.location ?? '').searchParams.get('error')).toBe('invalid_target');
  });

  it('refuses a wrong password and issues no code', async () => {
    const clientId = await registerClient();
    const { url } = await pkceAuthorizeUrl(clientId, { state: undefined, scope: undefined });
    const result = await signInThroughForm(selfFetch, url, { username: TEST_ADMIN.username, password: 'wrong' });
    expect(result.status).toBe(401);
    expect(result.location).toBeNull();
    expect(result.body).toContain('Wrong user name or password.');
  });

  it('refuses a sign-in post without the CSRF token', async () => {
    const clientId = await registerClient();
    const { url } = await pkceAuthorizeUrl(clientId, { state: undefined, scope: undefined });
    const response = await SELF.fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: TEST_ADMIN.username, password: TEST_ADMIN.password, action: 'approve' }),
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('location')).toBeNull();
    await response.body?.cancel();
  });

  it('sends the client access_denied when the user denies', async () => {
    const clientId = await registerClient();
    const { url } = await pkceAuthorizeUrl(clientId, { scope: undefined });
    const result = await signInThroughForm(selfFetch, url, TEST_ADMIN, 'deny');
    expect(new URL(result.location ?? '').searchParams.get('error')).toBe('access_denied');
  });
});

describe('the sign-in page', () => {
  it('cannot be framed and escapes the client name', async () => {
    const clientId = await registerClient('<script>alert(1)</script>');
    const { url } = await pkceAuthorizeUrl(clientId, { state: undefined, scope: undefined });
    const response = await SELF.fetch(url);
    const html = await response.text();
    expect(response.headers.get('Content-Security-Policy')).toContain("frame-ancestors 'none'");
    expect(response.headers.get('X-Frame-Options')).toBe('DENY');
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(hiddenField(html, 'csrf')).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });
});

describe('MCP sessions', () => {
  it('serves the tools to a signed-in client', async () => {
    const token = await accessToken();
    const init = await mcpPost(token, INITIALIZE);
    const sessionId = init.headers.get('mcp-session-id') ?? '';
    await init.body?.cancel();
    await (await mcpPost(token, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId)).body?.cancel();
    const list = await mcpPost(token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sessionId);
    const text = await list.text();
    expect(text).toContain('"ssh_exec_command"');
    expect(text).toContain('"ssh_list_hosts"');
  });
});
