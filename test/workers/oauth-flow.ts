/** OAuth 2.1 client steps done by hand against the Worker, for tests of each refusal. */
import { SELF } from 'cloudflare:test';
import { signInThroughForm, type SignInResult } from '../harness/sign-in-form.ts';
import { BASE_URL } from './relay-socket.ts';

export const TEST_ADMIN = { username: 'admin', password: 'pool-admin-password-41f7' };
export const REDIRECT_URI = 'http://127.0.0.1:43110/callback';
export const RESOURCE = `${BASE_URL}/mcp`;

export const selfFetch = (input: string | URL, init?: RequestInit): Promise<Response> => SELF.fetch(input, init);

export async function registerClient(clientName = 'pool test client', redirectUris = [REDIRECT_URI]): Promise<string> {
  const response = await SELF.fetch(`${BASE_URL}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_name: clientName,
      redirect_uris: redirectUris,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    }),
  });
  if (response.status !== 201) throw new Error(`registration failed: ${response.status} ${await response.text()}`);
  const body: unknown = await response.json();
  if (typeof body !== 'object' || body === null || !('client_id' in body) || typeof body.client_id !== 'string') throw new Error('no client_id');
  return body.client_id;
}

function base64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');
}

export async function pkcePair(): Promise<{ verifier: string; challenge: string }> {
  const verifier = base64Url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  return { verifier, challenge };
}

export function authorizeUrl(params: Record<string, string | undefined>): string {
  const url = new URL(`${BASE_URL}/authorize`);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(key, value);
  return url.toString();
}

export interface Authorization {
  clientId: string;
  verifier: string;
  code: string;
}

/**
 * An authorization request for `clientId` with a fresh PKCE pair (S256), our redirect URI, resource
 * and scope; `overrides` replace fields (undefined leaves one out).
 */
export async function pkceAuthorizeUrl(clientId: string, overrides: Record<string, string | undefined> = {}): Promise<{ url: string; verifier: string }> {
  const { verifier, challenge } = await pkcePair();
  const url = authorizeUrl({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 's',
    resource: RESOURCE,
    scope: 'mcp',
    ...overrides,
  });
  return { url, verifier };
}

export async function authorize(overrides: Record<string, string | undefined> = {}): Promise<{ clientId: string; verifier: string; result: SignInResult }> {
  const clientId = overrides.client_id ?? (await registerClient());
  const { url, verifier } = await pkceAuthorizeUrl(clientId, { state: 'state-123', ...overrides });
  return { clientId, verifier, result: await signInThroughForm(selfFetch, url, TEST_ADMIN) };
}

export async function exchangeCode(clientId: string, code: string, verifier: string, extra: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(`${BASE_URL}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: clientId, code_verifier: verifier, ...extra }),
  });
}

export async function accessToken(): Promise<string> {
  const { clientId, verifier, result } = await authorize();
  const code = result.location ? new URL(result.location).searchParams.get('code') : null;
  if (!code) throw new Error(`no code: ${result.status} ${result.body.slice(0, 500)}`);
  const response = await exchangeCode(clientId, code, verifier);
  const body: unknown = await response.json();
  if (typeof body !== 'object' || body === null || !('access_token' in body) || typeof body.access_token !== 'string')
    throw new Error(`no token: ${JSON.stringify(body)}`);
  return body.access_token;
}

export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'pool-test', version: '1' } },
};

/** Initialize an MCP session with `token` and return its id (the answer's stream is not kept). */
export async function openMcpSession(token: string): Promise<string> {
  const opened = await mcpPost(token, INITIALIZE);
  await opened.body?.cancel();
  const sessionId = opened.headers.get('mcp-session-id') ?? '';
  if (opened.status !== 200 || sessionId === '') throw new Error(`initialize answered ${opened.status} with no session id`);
  return sessionId;
}

export function mcpPost(token: string, body: unknown, sessionId?: string): Promise<Response> {
  return SELF.fetch(RESOURCE, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } : {}),
    },
    body: JSON.stringify(body),
  });
}
