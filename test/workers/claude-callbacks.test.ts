/**
 * claude.ai and claude.com register their own callback URLs; sign-in must send the browser back
 * to exactly the one registered, and refuse anything that differs from it even slightly, without
 * redirecting there.
 */
import { describe, expect, it } from 'vitest';
import { authorize, exchangeCode, registerClient } from './oauth-flow.ts';

const CALLBACKS = ['https://claude.ai/api/mcp/auth_callback', 'https://claude.com/api/mcp/auth_callback'];

describe("claude.ai's and claude.com's callbacks", () => {
  it.each(CALLBACKS)('signs in and returns to %s with a code that works', async (callback) => {
    const clientId = await registerClient('Claude', [callback]);
    const { verifier, result } = await authorize({ client_id: clientId, redirect_uri: callback });
    expect(result.status).toBe(302);
    const location = new URL(result.location ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(callback);
    expect(location.searchParams.get('state')).toBe('state-123');
    const code = location.searchParams.get('code');
    expect(code).toBeTruthy();
    const token = await exchangeCode(clientId, code ?? '', verifier, { redirect_uri: callback });
    expect(token.status).toBe(200);
    expect(((await token.json()) as { access_token?: string }).access_token).toBeTruthy();
  });

  it.each([
    'https://claude.ai/api/mcp/auth_callback/',
    'https://claude.ai/api/mcp/auth_callback?x=1',
    'https://claude.ai.evil.example/api/mcp/auth_callback',
    'http://claude.ai/api/mcp/auth_callback',
    'https://claude.com/api/mcp/auth_callback',
  ])('refuses %s for a client registered with claude.ai, without redirecting there', async (wrong) => {
    const clientId = await registerClient('Claude', ['https://claude.ai/api/mcp/auth_callback']);
    const { result } = await authorize({ client_id: clientId, redirect_uri: wrong });
    expect(result.status).toBe(400);
    expect(result.location).toBeNull();
  });
});
