/**
 * Sign-up by Client ID Metadata Document (CIMD): a client whose client_id is the https URL of its
 * metadata document signs in with no registration step. The documents come from a stand-in for the
 * client's web site (test/harness/cimd-stand-in.ts), which the pool puts behind the Worker's
 * outbound fetch(). Each bad document is refused at /authorize with a page that says why, no grant
 * stored and no redirect to a URI nobody verified.
 */
import { SELF } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { clientLabel } from '../../worker/auth/authorization-steps.ts';
import { CIMD_HOST, CIMD_REDIRECT_URI, cimdClientId } from '../harness/cimd-stand-in.ts';
import { cookiesFrom, hiddenField, signInThroughForm } from '../harness/sign-in-form.ts';
import { authorize, exchangeCode, INITIALIZE, mcpPost, pkceAuthorizeUrl, registerClient, RESOURCE, selfFetch, TEST_ADMIN } from './oauth-flow.ts';
import { BASE_URL } from './relay-socket.ts';

const storedGrant = z.object({ clientId: z.string() });

/** Grants stored for `clientId`, read from the provider's KV (`grant:<user>:<id>`, its storage schema). */
async function grantsFor(clientId: string): Promise<number> {
  const listed = await env.OAUTH_KV.list({ prefix: 'grant:', limit: 1000 });
  let count = 0;
  for (const { name } of listed.keys) {
    const grant = storedGrant.safeParse(await env.OAUTH_KV.get(name, 'json'));
    if (grant.success && grant.data.clientId === clientId) count += 1;
  }
  return count;
}

async function cimdAuthorizeUrl(clientId: string, redirectUri = CIMD_REDIRECT_URI): Promise<string> {
  return (await pkceAuthorizeUrl(clientId, { redirect_uri: redirectUri })).url;
}

/** Open /authorize for `clientId` and expect the refusal page: no redirect, no grant. */
async function expectRefused(clientId: string, redirectUri?: string): Promise<string> {
  const response = await selfFetch(await cimdAuthorizeUrl(clientId, redirectUri), { redirect: 'manual' });
  const html = await response.text();
  expect(response.status).toBe(400);
  expect(response.headers.get('location')).toBeNull();
  expect(html).not.toContain('name="handle"');
  expect(await grantsFor(clientId)).toBe(0);
  return html;
}

describe('authorization-server metadata', () => {
  it('advertises CIMD with token endpoint auth method none, and keeps dynamic registration', async () => {
    const server: unknown = await (await SELF.fetch(`${BASE_URL}/.well-known/oauth-authorization-server`)).json();
    expect(server).toMatchObject({ client_id_metadata_document_supported: true, registration_endpoint: `${BASE_URL}/register` });
    const methods = z.object({ token_endpoint_auth_methods_supported: z.array(z.string()) }).parse(server).token_endpoint_auth_methods_supported;
    expect(methods).toContain('none');
  });
});

describe('sign-in with a metadata document', () => {
  it('signs in a client by its document URL with no registration, and its token opens /mcp', async () => {
    const clientId = cimdClientId('good');
    const { verifier, result } = await authorize({ client_id: clientId, redirect_uri: CIMD_REDIRECT_URI });
    expect(result.status).toBe(302);
    const location = new URL(result.location ?? 'about:blank');
    expect(`${location.origin}${location.pathname}`).toBe(CIMD_REDIRECT_URI);
    const code = location.searchParams.get('code') ?? '';
    expect(code).not.toBe('');
    expect(await grantsFor(clientId)).toBe(1);

    const tokens = await exchangeCode(clientId, code, verifier);
    expect(tokens.status).toBe(200);
    const token = z.object({ access_token: z.string() }).parse(await tokens.json()).access_token;
    expect((await SELF.fetch(RESOURCE, { method: 'POST', body: '{}' })).status).toBe(401);
    const session = await mcpPost(token, INITIALIZE);
    expect(session.status).toBe(200);
    await session.body?.cancel();
  });

  it('names the client in the audit log with its verified domain after its self-chosen name', () => {
    expect(clientLabel(cimdClientId('good', 'n'), 'Claude Code')).toBe(`Claude Code (${CIMD_HOST})`);
    expect(clientLabel('opaque-registered-id', 'Claude Code')).toBe('Claude Code');
    expect(clientLabel('opaque-registered-id', '  ')).toBe('opaque-registered-id');
  });
});

describe('documents that are refused', () => {
  it('refuses a document whose client_id is not its own URL', async () => {
    const html = await expectRefused(cimdClientId('wrong-id'));
    expect(html).toContain('This app could not be verified');
    expect(html).toContain('does not match metadata URL');
  });

  it('refuses a document larger than 5 KiB', async () => {
    const html = await expectRefused(cimdClientId('oversize'));
    expect(html).toContain('This app could not be verified');
    expect(html).toMatch(/size limit/);
  });

  it('refuses a document over 5 KiB sent without a Content-Length', async () => {
    const html = await expectRefused(cimdClientId('oversize-streamed'));
    expect(html).toContain('This app could not be verified');
    expect(html).toMatch(/size limit/);
  });

  it('refuses client_id URLs that cannot name a document (plain http, dot segments, a fragment) without fetching', async () => {
    for (const clientId of [
      `http://${CIMD_HOST}/good/a/client.json`,
      `https://${CIMD_HOST}/good/%2e%2e/client.json`,
      `https://${CIMD_HOST}/good/b/client.json#x`,
    ]) {
      const response = await selfFetch(await cimdAuthorizeUrl(clientId), { redirect: 'manual' });
      expect(response.status, clientId).toBe(400);
      expect(response.headers.get('location'), clientId).toBeNull();
      expect(await response.text(), clientId).not.toContain('name="handle"');
      expect(await grantsFor(clientId), clientId).toBe(0);
    }
  });

  it('refuses a redirect URI the document does not list, without redirecting there', async () => {
    const clientId = cimdClientId('good');
    // The same client with the callback its document lists is fine: what is refused is the URI alone.
    const listed = await selfFetch(await cimdAuthorizeUrl(clientId), { redirect: 'manual' });
    expect(listed.status).toBe(200);
    await listed.body?.cancel();
    const html = await expectRefused(clientId, 'http://127.0.0.1:43111/elsewhere');
    expect(html).toContain('This sign-in link is not valid');
    expect(html).toContain('Invalid redirect URI.');
    // Posting a password sign-in straight at that request changes nothing: the request is refused first.
    const posted = await selfFetch(await cimdAuthorizeUrl(clientId, 'https://attacker.example/callback'), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...TEST_ADMIN, action: 'approve' }),
    });
    expect(posted.status).toBe(400);
    expect(posted.headers.get('location')).toBeNull();
    await posted.body?.cancel();
    expect(await grantsFor(clientId)).toBe(0);
  });

  describe('a site that never answers', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('is refused when the provider stops waiting for it', async () => {
      // The provider's 10 s fetch timeout is a fixed setTimeout; fake it so the test does not wait 10 s.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const clientId = cimdClientId('silent');
      let settled = false;
      const pending = selfFetch(await cimdAuthorizeUrl(clientId), { redirect: 'manual' }).finally(() => {
        settled = true;
      });
      // Move fake time on until the request ends; real waits in between let the fetch get going.
      for (let step = 0; step < 100 && !settled; step += 1) {
        await vi.advanceTimersByTimeAsync(1_000);
        await scheduler.wait(20);
      }
      vi.useRealTimers();
      const response = await pending;
      const html = await response.text();
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(html).toContain('timed out');
      expect(await grantsFor(clientId)).toBe(0);
    });
  });
});

describe('the consent page', () => {
  it('names the verified domain apart from the self-chosen name, and warns about a loopback redirect', async () => {
    // Sign in once (for a registered client) so the browser holds a session, then ask for the CIMD client.
    const first = await registerClient('Session starter');
    const { url: firstUrl } = await pkceAuthorizeUrl(first);
    const signInPage = await selfFetch(firstUrl, { redirect: 'manual' });
    const signInHtml = await signInPage.text();
    const signedIn = await selfFetch(firstUrl, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookiesFrom(signInPage) },
      body: new URLSearchParams({
        csrf: hiddenField(signInHtml, 'csrf') ?? '',
        handle: hiddenField(signInHtml, 'handle') ?? '',
        ...TEST_ADMIN,
        action: 'approve',
      }),
    });
    await signedIn.body?.cancel();
    expect(signedIn.status).toBe(302);
    // The registered client's page says its name is unverified and shows no domain.
    expect(signInHtml).toContain('its name is not verified');
    expect(signInHtml).not.toContain('class="domain"');

    const clientId = cimdClientId('good');
    const consent = await selfFetch(await cimdAuthorizeUrl(clientId), { redirect: 'manual', headers: { Cookie: cookiesFrom(signedIn) } });
    const html = await consent.text();
    expect(consent.status).toBe(200);
    expect(html).toContain('Signed in as <strong>admin</strong>');
    expect(html).toContain(`<p class="domain">An app from <strong>${CIMD_HOST}</strong></p>`);
    expect(html).toContain('It calls itself <strong>Stand-in CIMD client</strong>');
    expect(html).not.toContain('its name is not verified');
    expect(html).toContain('Access goes to an app on this computer.');
    expect(await grantsFor(clientId)).toBe(0);
  });

  it('names the verified domain on the sign-in page too', async () => {
    const response = await selfFetch(await cimdAuthorizeUrl(cimdClientId('good')), { redirect: 'manual' });
    const html = await response.text();
    expect(response.status).toBe(200);
    expect(html).toContain(`<p class="domain">An app from <strong>${CIMD_HOST}</strong></p>`);
    expect(html).toContain('name="password"');
  });
});

describe('dynamic registration, still there for clients without a document', () => {
  it('signs in a registered client as before', async () => {
    const result = await signInThroughForm(selfFetch, await cimdAuthorizeUrl(await registerClient('DCR fallback', [CIMD_REDIRECT_URI])), TEST_ADMIN);
    expect(result.status).toBe(302);
    expect(result.location).toContain('code=');
  });
});
