/**
 * Sign-in through identity providers, end to end: the real `oidc-provider` on loopback and a
 * stand-in speaking GitHub's wire format, the Worker under wrangler dev, the real relay and sshd,
 * and the official MCP SDK client doing discovery, registration and PKCE. Covers membership
 * (groups claim, domains, organisations), refusals (not a member, unverified email, bad ID
 * tokens, a built-in account's name), remembered consent per user and client, and revocation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeUrl as oauthAuthorizeUrl, registerClient as registerOAuthClient } from '../harness/oauth-client.ts';
import { adminApi } from '../harness/admin-api.ts';
import { CookieJar, locationOf } from '../harness/cookie-jar.ts';
import { authorizeAtGithub, startGithubStandIn, type GithubStandIn } from '../harness/github-stand-in.ts';
import { connectMcpClient, type BrowserStep, type ConnectedClient } from '../harness/mcp-client.ts';
import { loginAt, startOidcProvider, type TestOidcProvider } from '../harness/oidc-provider.ts';
import { freePort } from '../harness/ports.ts';
import { answerConsent, formAction, isConsentPage, signInThroughProvider, type FlowResult } from '../harness/provider-sign-in.ts';
import { hiddenField, type Credentials } from '../harness/sign-in-form.ts';
import type { TestSshd } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

const PASSWORD = 'idp-password-7c1e';
const REDIRECT_URI = 'http://127.0.0.1:43999/callback';

let stack: Stack;
let idp: TestOidcProvider;
let github: GithubStandIn;
const sessions: ConnectedClient[] = [];
let viewerPassword = '';

function relayConfig(sshd: TestSshd): unknown {
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath };
  return { relay_id: 'idp-relay', known_hosts: [sshd.knownHostsPath], hosts: [{ name: 'web', ...base }] };
}

const POLICY = {
  version: 1,
  grants: [
    { subjects: ['group:ops'], role: 'operator', hosts: ['*'] },
    { subjects: ['user:vic'], role: 'viewer', hosts: ['*'] },
    { subjects: ['user:octo@github'], role: 'viewer', hosts: ['*'] },
  ],
};

function viaOidc(login: string, jar = new CookieJar()): (url: string | URL) => Promise<FlowResult> {
  return (url) => signInThroughProvider(url, { jar, provider: 'oidc', loginAtProvider: (cookies, at) => loginAt(cookies, at, login, PASSWORD) });
}

function viaGithub(login: string, jar = new CookieJar()): (url: string | URL) => Promise<FlowResult> {
  return (url) => {
    github.signedInAs = login;
    return signInThroughProvider(url, { jar, provider: 'github', loginAtProvider: (_cookies, at) => authorizeAtGithub(at) });
  };
}

async function connect(step: Credentials | BrowserStep): Promise<ConnectedClient> {
  const session = await connectMcpClient(stack.worker.mcpUrl, step);
  sessions.push(session);
  return session;
}

async function call(session: ConnectedClient, name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean }> {
  const result = await session.client.callTool({ name, arguments: args });
  return { text: textOf(result as never), isError: Boolean(result.isError) };
}

/** A client registered the way claude.ai registers (dynamic registration), and an authorization URL for it. */
const registerClient = (name: string): Promise<string> => registerOAuthClient(stack.worker, name, REDIRECT_URI);
const authorizeUrl = (clientId: string): string => oauthAuthorizeUrl(stack.worker, clientId, REDIRECT_URI, 'st-1');

function codeIn(result: FlowResult): string | null {
  return result.location?.startsWith(REDIRECT_URI) ? new URL(result.location).searchParams.get('code') : null;
}

async function usernames(): Promise<string[]> {
  return ((await adminApi(stack.worker).get('users')).body.users as Array<{ username: string }>).map((user) => user.username);
}

beforeAll(async () => {
  const workerPort = await freePort();
  const callback = `http://127.0.0.1:${workerPort}/auth/callback`;
  idp = await startOidcProvider({
    redirectUris: [callback],
    accounts: {
      olivia: { password: PASSWORD, email: 'Olivia@Corp.test', groups: ['ops', 'Staff'] },
      dora: { password: PASSWORD, email: 'dora@example.test' },
      mallory: { password: PASSWORD, email: 'mallory@elsewhere.test', groups: ['staff'] },
      unverified: { password: PASSWORD, email: 'unverified@example.test', emailVerified: false },
      noemail: { password: PASSWORD, groups: ['ops'] },
      squatter: { password: PASSWORD, email: 'vic@example.test' },
    },
  });
  github = await startGithubStandIn({
    redirectUri: callback,
    accounts: { Octo: { id: 4242, name: 'Octo Cat', orgs: ['acme'] }, pending: { id: 5151, pendingOrgs: ['acme'] }, stranger: { id: 6161, orgs: ['other'] } },
  });
  stack = await startStack({
    relay: (sshd) => ({ configFile: relayConfig(sshd) }),
    worker: { port: workerPort, secrets: { OIDC_CLIENT_SECRET: idp.clientSecret, GITHUB_CLIENT_SECRET: github.clientSecret } },
    workerVars: {
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: idp.clientId,
      OIDC_DISPLAY_NAME: 'Test IdP',
      OIDC_SCOPES: 'openid email profile groups',
      OIDC_ALLOWED_GROUPS: 'ops',
      OIDC_ALLOWED_DOMAINS: 'example.test',
      GITHUB_CLIENT_ID: github.clientId,
      GITHUB_ALLOWED_ORGS: 'acme',
      GITHUB_OAUTH_URL: github.url,
      GITHUB_API_URL: github.url,
    },
  });
  const admin = adminApi(stack.worker);
  const added = await admin.post('users', { username: 'vic' });
  expect(added.status, JSON.stringify(added.body)).toBe(201);
  viewerPassword = String(added.body.password);
  // A built-in account whose name an IdP user's email would take.
  expect((await admin.post('users', { username: 'vic@example.test' })).status).toBe(201);
  expect((await admin.put('policy', POLICY)).status).toBe(200);
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await stack?.stop();
  await idp?.stop();
  await github?.stop();
});

describe('OpenID Connect and a built-in account, through the MCP SDK flow', () => {
  it('lets an OIDC user in group ops run a command and refuses the built-in viewer; both calls are audited under their names', async () => {
    const olivia = await connect(viaOidc('olivia'));
    const ran = await call(olivia, 'ssh_exec_command', { host: 'web', command: 'echo olivia-was-here' });
    expect(ran.isError, ran.text).toBe(false);
    expect(ran.text).toContain('olivia-was-here');

    const vic = await connect({ username: 'vic', password: viewerPassword });
    const listed = await call(vic, 'ssh_list_hosts', { check: false });
    expect(listed.text).toContain('web');
    const refused = await call(vic, 'ssh_exec_command', { host: 'web', command: 'echo vic-was-here' });
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain('access_denied');

    const admin = adminApi(stack.worker);
    const allowed = await admin.get(`audit?user=${encodeURIComponent('olivia@corp.test')}&tool=ssh_exec_command`);
    expect(allowed.body.entries).toEqual([
      expect.objectContaining({ user: 'olivia@corp.test', host: 'web', target: 'echo olivia-was-here', outcome: 'ok', exitCode: 0 }),
    ]);
    const denied = await admin.get('audit?user=vic&tool=ssh_exec_command');
    expect(denied.body.entries).toEqual([expect.objectContaining({ user: 'vic', outcome: 'denied', code: 'access_denied' })]);

    // The account exists for admins like any other, with the groups the IdP reported.
    const users = (await admin.get('users')).body.users as Array<Record<string, unknown>>;
    expect(users.find((user) => user.username === 'olivia@corp.test')).toMatchObject({ source: 'oidc', idpGroups: ['ops', 'staff'], groups: [] });
  });

  it('lets in a verified email of an allowed domain', async () => {
    const result = await viaOidc('dora')(authorizeUrl(await registerClient('domain client')));
    expect(codeIn(result), result.body.slice(0, 300)).toBeTruthy();
    expect(await usernames()).toContain('dora@example.test');
  });
});

describe('refusals', () => {
  it('refuses a person outside the allowed emails, domains and groups: a page says why, no code, no account', async () => {
    const result = await viaOidc('mallory')(authorizeUrl(await registerClient('refusal client')));
    expect(result.status).toBe(403);
    expect(result.pages).toEqual(['sign-in', 'refused']);
    expect(result.body).toContain('not a member of this team');
    expect(result.location).toBeNull();
    expect(await usernames()).not.toContain('mallory@elsewhere.test');
  });

  it('refuses an unverified email and a missing email', async () => {
    const unverified = await viaOidc('unverified')(authorizeUrl(await registerClient('unverified client')));
    expect(unverified.status).toBe(403);
    expect(unverified.body).toContain('not verified');
    const noEmail = await viaOidc('noemail')(authorizeUrl(await registerClient('no email client')));
    expect(noEmail.status).toBe(403);
    expect(noEmail.body).toContain('did not share an email');
    expect(await usernames()).not.toContain('unverified@example.test');
  });

  it('never lets an IdP user take over a built-in account of the same name', async () => {
    const result = await viaOidc('squatter')(authorizeUrl(await registerClient('squat client')));
    expect(result.status).toBe(403);
    expect(result.body).toContain('belongs to a built-in account');
    expect(codeIn(result)).toBeNull();
  });

  for (const misbehaviour of ['wrong-nonce', 'wrong-audience', 'wrong-issuer', 'expired', 'foreign-key'] as const) {
    it(`refuses an ID token with ${misbehaviour.replace('-', ' ')}`, async () => {
      idp.misbehave = misbehaviour;
      try {
        const result = await viaOidc('olivia')(authorizeUrl(await registerClient(`bad token ${misbehaviour}`)));
        expect(result.status).toBe(502);
        expect(result.body).toContain('did not confirm who you are');
        expect(codeIn(result)).toBeNull();
      } finally {
        idp.misbehave = 'none';
      }
    });
  }
});

describe('consent per client, remembered per user', () => {
  it('asks once per user and client, skips it the second time, asks again for another client or another person', async () => {
    const jar = new CookieJar();
    const first = await registerClient('Consent client A');
    const firstRun = await viaOidc('olivia', jar)(authorizeUrl(first));
    expect(firstRun.pages).toEqual(['sign-in', 'consent']);
    expect(codeIn(firstRun)).toBeTruthy();

    const again = await viaOidc('olivia', jar)(authorizeUrl(first));
    expect(again.pages).toEqual([]);
    expect(codeIn(again)).toBeTruthy();

    const second = await registerClient('Consent client B');
    const other = await viaOidc('olivia', jar)(authorizeUrl(second));
    expect(other.pages).toEqual(['consent']);
    expect(codeIn(other)).toBeTruthy();

    // Another person on the same browser: "Use another account" on a third client's consent page, then the password form.
    const third = await registerClient('Consent client C');
    const url = authorizeUrl(third);
    const consent = await jar.fetch(url);
    const html = await consent.text();
    expect(isConsentPage(html)).toBe(true);
    expect(html).toContain('olivia@corp.test');
    const switched = await jar.post(formAction(html, url), {
      csrf: hiddenField(html, 'csrf') ?? '',
      handle: hiddenField(html, 'handle') ?? '',
      action: 'switch',
    });
    expect(switched.status).toBe(303);
    const signInUrl = locationOf(switched, url) ?? '';
    const signInPage = await jar.fetch(signInUrl);
    const signInHtml = await signInPage.text();
    expect(isConsentPage(signInHtml)).toBe(false);
    const signedIn = await jar.post(formAction(signInHtml, signInUrl), {
      csrf: hiddenField(signInHtml, 'csrf') ?? '',
      handle: hiddenField(signInHtml, 'handle') ?? '',
      username: 'vic',
      password: viewerPassword,
      action: 'approve',
    });
    expect(signedIn.status).toBe(302);
    // Vic approved client C by signing in; Olivia's approvals of A and B are not Vic's.
    const vicOnA = await jar.fetch(authorizeUrl(first));
    const vicOnAHtml = await vicOnA.text();
    expect(isConsentPage(vicOnAHtml)).toBe(true);
    expect(vicOnAHtml).toContain('Signed in as <strong>vic</strong>');
    const vicAgainOnC = await jar.fetch(authorizeUrl(third));
    expect(vicAgainOnC.status).toBe(302);
    expect(locationOf(vicAgainOnC, url)).toContain('code=');
  });

  it('refuses an approval posted without the browser binding cookie, and the pages cannot be framed', async () => {
    const jar = new CookieJar();
    const clientId = await registerClient('Binding client');
    await viaOidc('olivia', jar)(authorizeUrl(clientId));
    const url = authorizeUrl(await registerClient('Binding client 2'));
    const page = await jar.fetch(url);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const html = await page.text();
    expect(isConsentPage(html)).toBe(true);
    for (const name of jar.names(url)) if (name.startsWith('__Host-oauth-consent')) jar.remove(url, name);
    const posted = await answerConsent(jar, url, html, 'approve');
    expect(posted.status).toBe(400);
    expect(posted.headers.get('location')).toBeNull();
    expect(await posted.text()).toContain('expired');

    const signIn = await fetch(url);
    expect(signIn.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(signIn.headers.getSetCookie().some((cookie) => /^__Host-oauth-consent[^=]*=.*Secure/.test(cookie))).toBe(true);
  });

  it('sends the client access_denied when the user denies on the consent page', async () => {
    const result = await signInThroughProvider(authorizeUrl(await registerClient('Deny client')), {
      jar: new CookieJar(),
      provider: 'oidc',
      loginAtProvider: (cookies, at) => loginAt(cookies, at, 'dora', PASSWORD),
      decision: 'deny',
    });
    expect(result.pages).toEqual(['sign-in', 'consent']);
    expect(result.location).toContain('error=access_denied');
    expect(codeIn(result)).toBeNull();
  });
});

describe('GitHub', () => {
  it('lets in a member of the allowed organisation, named <login>@github', async () => {
    const octo = await connect(viaGithub('Octo'));
    const listed = await call(octo, 'ssh_list_hosts', { check: false });
    expect(listed.isError, listed.text).toBe(false);
    expect(listed.text).toContain('web');
    const users = (await adminApi(stack.worker).get('users')).body.users as Array<Record<string, unknown>>;
    expect(users.find((user) => user.username === 'octo@github')).toMatchObject({ source: 'github' });
    expect(github.requests).toContain('GET /user/memberships/orgs/acme');
  });

  it('refuses someone outside the organisation and a pending invitee', async () => {
    for (const login of ['stranger', 'pending']) {
      const result = await viaGithub(login)(authorizeUrl(await registerClient(`GitHub ${login}`)));
      expect(result.status, login).toBe(403);
      expect(result.body).toContain('not a member of this team');
      expect(await usernames()).not.toContain(`${login}@github`);
    }
  });

  it('tells the client access_denied when the person declines at GitHub', async () => {
    github.declineNext = true;
    const result = await viaGithub('Octo')(authorizeUrl(await registerClient('GitHub decline')));
    expect(result.status).toBe(302);
    expect(result.location).toContain('error=access_denied');
    expect(result.location).toContain('state=st-1');
  });
});

describe('revoking an OIDC user', () => {
  it('ends their token at once and refuses their next sign-in', async () => {
    const jar = new CookieJar();
    const olivia = await connect(viaOidc('olivia', jar));
    const before = await call(olivia, 'ssh_exec_command', { host: 'web', command: 'true' });
    expect(before.isError, before.text).toBe(false);
    const disabled = await adminApi(stack.worker).patch(`users/${encodeURIComponent('olivia@corp.test')}`, { disabled: true });
    expect(disabled.status, JSON.stringify(disabled.body)).toBe(200);
    expect(disabled.body.grantsRevoked).toBeGreaterThanOrEqual(1);
    await expect(olivia.client.callTool({ name: 'ssh_exec_command', arguments: { host: 'web', command: 'true' } })).rejects.toThrow();
    // Her browser session is over too, and the IdP sign-in is refused.
    const again = await viaOidc('olivia', jar)(authorizeUrl(await registerClient('after disable')));
    expect(again.pages).toEqual(['sign-in', 'refused']);
    expect(again.body).toContain('disabled');
  });
});
