import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_NAME_CHARS, MAX_METADATA_STRING_CHARS, MAX_REDIRECT_URI_CHARS, MAX_REDIRECT_URIS } from '../../worker/auth/client-registration.ts';
import { REDIRECT_URI } from './oauth-flow.ts';
import { BASE_URL } from './relay-socket.ts';

function register(metadata: Record<string, unknown>): Promise<Response> {
  return SELF.fetch(`${BASE_URL}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_name: 'registration test',
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...metadata,
    }),
  });
}

const longUri = (length: number): string => `http://127.0.0.1:43110/${'a'.repeat(length - 'http://127.0.0.1:43110/'.length)}`;

describe('dynamic client registration limits', () => {
  it('registers a client at every cap', async () => {
    const uris = Array.from({ length: MAX_REDIRECT_URIS }, (_, index) => (index === 0 ? longUri(MAX_REDIRECT_URI_CHARS) : `http://127.0.0.1:43110/cb${index}`));
    const response = await register({
      client_name: 'n'.repeat(MAX_CLIENT_NAME_CHARS),
      redirect_uris: uris,
      client_uri: `https://example.com/${'c'.repeat(MAX_METADATA_STRING_CHARS - 20)}`,
    });
    expect(response.status).toBe(201);
  });

  it.each([
    ['a client name over the cap', { client_name: 'n'.repeat(MAX_CLIENT_NAME_CHARS + 1) }, 'invalid_client_metadata'],
    ['a client name with control characters', { client_name: 'evil\u001b[2J' }, 'invalid_client_metadata'],
    ['a client name that is not a string', { client_name: ['x'] }, 'invalid_client_metadata'],
    [
      'too many redirect URIs',
      { redirect_uris: Array.from({ length: MAX_REDIRECT_URIS + 1 }, (_, index) => `http://127.0.0.1:43110/cb${index}`) },
      'invalid_redirect_uri',
    ],
    ['a redirect URI over the cap', { redirect_uris: [longUri(MAX_REDIRECT_URI_CHARS + 1)] }, 'invalid_redirect_uri'],
    ['a redirect URI with a trailing space', { redirect_uris: [`${REDIRECT_URI} `] }, 'invalid_redirect_uri'],
    ['a redirect URI with a leading tab', { redirect_uris: [`\t${REDIRECT_URI}`] }, 'invalid_redirect_uri'],
    ['a redirect URI with a newline inside', { redirect_uris: ['http://127.0.0.1:43110/cb\nx'] }, 'invalid_redirect_uri'],
    ['a redirect URI that is not a string', { redirect_uris: [42] }, 'invalid_redirect_uri'],
    ['another string field over the cap', { logo_uri: `https://example.com/${'l'.repeat(MAX_METADATA_STRING_CHARS)}` }, 'invalid_client_metadata'],
    ['too many contacts', { contacts: Array.from({ length: 11 }, (_, index) => `a${index}@example.com`) }, 'invalid_client_metadata'],
  ])('refuses %s with 400 %s', async (_name, metadata, error) => {
    const response = await register(metadata);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error });
  });

  it('refuses a body that is not JSON', async () => {
    const response = await SELF.fetch(`${BASE_URL}/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"client_name":' });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_client_metadata' });
  });
});
