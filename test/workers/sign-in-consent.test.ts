/**
 * In the Workers pool (fast, no identity provider needed): consent remembered per user and client
 * after a password sign-in, the browser session ending when an admin resets the password, the
 * identity-provider configuration rules, the ID token verifier against keys made here, and the
 * membership decisions.
 */
import { env } from 'cloudflare:workers';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { readSession, sessionCookie } from '../../worker/auth/browser-session.ts';
import { readIdentityProviders } from '../../worker/auth/identity-config.ts';
import { decideGithub, decideOidc } from '../../worker/auth/membership.ts';
import { OidcError, verifyIdToken } from '../../worker/auth/oidc-client.ts';
import { SettingsError } from '../../worker/settings.ts';
import { teamDirectory } from '../../worker/team/team-directory.ts';
import { pkceAuthorizeUrl, registerClient, selfFetch, TEST_ADMIN } from './oauth-flow.ts';
import { cookiesFrom, hiddenField } from '../harness/sign-in-form.ts';

async function authorizationUrl(clientId: string): Promise<string> {
  return (await pkceAuthorizeUrl(clientId)).url;
}

/** Sign in with a password and return the cookies a browser would now hold. */
async function passwordSignIn(clientId: string, credentials = TEST_ADMIN): Promise<{ cookies: string; location: string | null }> {
  const url = await authorizationUrl(clientId);
  const page = await selfFetch(url, { redirect: 'manual' });
  const html = await page.text();
  const posted = await selfFetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookiesFrom(page) },
    body: new URLSearchParams({ csrf: hiddenField(html, 'csrf') ?? '', handle: hiddenField(html, 'handle') ?? '', ...credentials, action: 'approve' }),
  });
  await posted.body?.cancel();
  return { cookies: cookiesFrom(posted), location: posted.headers.get('location') };
}

describe('consent after a password sign-in', () => {
  it('skips the page for the same client and shows it, naming the user, for another', async () => {
    const first = await registerClient('Remembered client');
    const { cookies, location } = await passwordSignIn(first);
    expect(location).toContain('code=');
    expect(cookies).toMatch(/__Host-oauth-approvals=/);
    expect(cookies).toMatch(/mre-session=/);

    const again = await selfFetch(await authorizationUrl(first), { redirect: 'manual', headers: { Cookie: cookies } });
    expect(again.status).toBe(302);
    expect(again.headers.get('location')).toContain('code=');

    const other = await selfFetch(await authorizationUrl(await registerClient('Other <client>')), { redirect: 'manual', headers: { Cookie: cookies } });
    expect(other.status).toBe(200);
    const html = await other.text();
    expect(html).toContain('Signed in as <strong>admin</strong>');
    expect(html).toContain('Other &lt;client&gt;');
    expect(html).not.toContain('Other <client>');
    expect(other.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });

  it('ends the browser session when the password is reset', async () => {
    const directory = teamDirectory(env);
    await directory.addUser('resetme', 'unused', []);
    // A session cookie made for the user, then a reset: it no longer signs anyone in.
    const request = new Request('http://127.0.0.1:8787/authorize');
    const cookie = (await sessionCookie(request, env, { userId: 'builtin/resetme', username: 'resetme' }, 'builtin')).split(';')[0] ?? '';
    const withCookie = new Request('http://127.0.0.1:8787/authorize', { headers: { Cookie: cookie } });
    expect((await readSession(withCookie, env))?.username).toBe('resetme');
    await directory.updateUser('resetme', { passwordHash: 'pbkdf2-sha256:new' });
    expect(await readSession(withCookie, env)).toBeNull();
  });

  it('refuses a consent post without the browser binding cookie', async () => {
    const { cookies } = await passwordSignIn(await registerClient('Binding A'));
    const url = await authorizationUrl(await registerClient('Binding B'));
    const page = await selfFetch(url, { redirect: 'manual', headers: { Cookie: cookies } });
    const html = await page.text();
    const withoutBinding = [cookies, cookiesFrom(page)]
      .join('; ')
      .split('; ')
      .filter((cookie) => !cookie.startsWith('__Host-oauth-consent'))
      .join('; ');
    const posted = await selfFetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: withoutBinding },
      body: new URLSearchParams({ csrf: hiddenField(html, 'csrf') ?? '', handle: hiddenField(html, 'handle') ?? '', as: 'builtin/admin', action: 'approve' }),
    });
    expect(posted.status).toBe(400);
    expect(posted.headers.get('location')).toBeNull();
  });
});

describe('identity provider configuration', () => {
  const oidc = { OIDC_ISSUER: 'https://idp.example.com', OIDC_CLIENT_ID: 'id', OIDC_CLIENT_SECRET: 'secret' };

  it('is off unless a client id is set, and names the missing variable when half set up', () => {
    expect(readIdentityProviders({})).toEqual({ oidc: null, github: null });
    expect(() => readIdentityProviders({ ...oidc, OIDC_CLIENT_SECRET: '' })).toThrow(/OIDC_CLIENT_SECRET is not set/);
    expect(() => readIdentityProviders({ OIDC_CLIENT_SECRET: 'secret' })).toThrow(/OIDC_CLIENT_SECRET is set but OIDC_CLIENT_ID is not/);
    expect(() => readIdentityProviders({ GITHUB_CLIENT_ID: 'id' })).toThrow(SettingsError);
    expect(() => readIdentityProviders({ ...oidc, OIDC_ISSUER: 'http://idp.example.com' })).toThrow(/https/);
    expect(() => readIdentityProviders({ ...oidc, OIDC_SCOPES: 'email' })).toThrow(/openid/);
    const read = readIdentityProviders({ ...oidc, OIDC_ALLOWED_DOMAINS: '@Example.com, other.org' });
    expect(read.oidc).toMatchObject({
      displayName: 'single sign-on',
      scopes: 'openid email profile',
      groupsClaim: 'groups',
      allowedDomains: ['example.com', 'other.org'],
    });
  });
});

describe('membership', () => {
  const config = readIdentityProviders({
    OIDC_ISSUER: 'https://idp.example.com',
    OIDC_CLIENT_ID: 'id',
    OIDC_CLIENT_SECRET: 's',
    OIDC_ALLOWED_GROUPS: 'ops,/platform',
  }).oidc;
  const claims = { sub: 'abc:1', email: 'Ann@Example.com', email_verified: true };

  it('decides OIDC membership by group (paths included) and lets nobody in without a rule', () => {
    if (!config) throw new Error('config');
    expect(decideOidc(config, { ...claims, groups: ['Ops'] })).toEqual({ ok: true, username: 'ann@example.com', userId: 'oidc/abc%3A1', groups: ['ops'] });
    expect(decideOidc(config, { ...claims, groups: ['/platform'] })).toMatchObject({ ok: true, groups: [] });
    expect(decideOidc(config, { ...claims, groups: ['dev'] })).toMatchObject({ ok: false, reason: 'not_member' });
    expect(decideOidc(config, { ...claims, email_verified: 'true', groups: ['ops'] })).toMatchObject({ ok: false, reason: 'email_unverified' });
    expect(decideOidc({ ...config, allowedGroups: [] }, { ...claims, groups: ['ops'] })).toMatchObject({ ok: false, reason: 'no_rule' });
  });

  it('decides GitHub membership by login or organisation', () => {
    const github = readIdentityProviders({
      GITHUB_CLIENT_ID: 'id',
      GITHUB_CLIENT_SECRET: 's',
      GITHUB_ALLOWED_LOGINS: 'Octocat',
      GITHUB_ALLOWED_ORGS: 'acme',
    }).github;
    if (!github) throw new Error('config');
    expect(decideGithub(github, { login: 'OctoCat', id: 1 }, [])).toEqual({ ok: true, username: 'octocat@github', userId: 'github/1', groups: [] });
    expect(decideGithub(github, { login: 'someone', id: 2 }, ['ACME'])).toMatchObject({ ok: true, username: 'someone@github' });
    expect(decideGithub(github, { login: 'someone', id: 2 }, [])).toMatchObject({ ok: false, reason: 'not_member' });
  });
});

describe('ID token verification', () => {
  async function setup() {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    const sign = (claims: Record<string, unknown>, expiresIn = '5m') =>
      new SignJWT({ nonce: 'n-123', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer('https://idp.example.com')
        .setSubject('u1')
        .setIssuedAt()
        .setExpirationTime(expiresIn)
        .sign(privateKey);
    const expected = { issuer: 'https://idp.example.com', clientId: 'our-client', nonce: 'n-123', keys };
    return { sign, expected };
  }

  it('accepts a good token and refuses wrong audience, nonce, azp with several audiences, expiry and HS256', async () => {
    const { sign, expected } = await setup();
    expect((await verifyIdToken(await sign({ aud: 'our-client' }), expected)).sub).toBe('u1');
    await expect(verifyIdToken(await sign({ aud: 'their-client' }), expected)).rejects.toThrow(OidcError);
    await expect(verifyIdToken(await sign({ aud: 'our-client', nonce: 'other' }), expected)).rejects.toThrow(/nonce/);
    await expect(verifyIdToken(await sign({ aud: ['our-client', 'another'] }), expected)).rejects.toThrow(/azp/);
    expect((await verifyIdToken(await sign({ aud: ['our-client', 'another'], azp: 'our-client' }), expected)).sub).toBe('u1');
    await expect(verifyIdToken(await sign({ aud: 'our-client' }, '-5m'), expected)).rejects.toThrow(/EXPIRED/);
    const hs = await new SignJWT({ aud: 'our-client', nonce: 'n-123' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://idp.example.com')
      .setSubject('u1')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('s'.repeat(32)));
    await expect(verifyIdToken(hs, expected)).rejects.toThrow(OidcError);
  });
});
