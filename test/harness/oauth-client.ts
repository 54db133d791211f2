/**
 * An MCP client as claude.ai registers one (dynamic client registration, public client, PKCE),
 * and the authorization URL it would send a browser to. For tests that drive the sign-in pages
 * themselves rather than through the SDK client.
 */
import type { TestWorker } from './worker.ts';

export async function registerClient(worker: Pick<TestWorker, 'url'>, name: string, redirectUri: string): Promise<string> {
  const response = await fetch(`${worker.url}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }),
  });
  const body = (await response.json()) as { client_id?: string };
  if (!body.client_id) throw new Error(`registration failed: ${JSON.stringify(body)}`);
  return body.client_id;
}

export function authorizeUrl(worker: Pick<TestWorker, 'url' | 'mcpUrl'>, clientId: string, redirectUri: string, state: string): string {
  const url = new URL(`${worker.url}/authorize`);
  const challenge = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  for (const [key, value] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    resource: worker.mcpUrl,
    scope: 'mcp',
  })) {
    url.searchParams.set(key, value);
  }
  return url.toString();
}
