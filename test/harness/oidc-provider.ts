/**
 * A real OpenID provider for tests: the certified `oidc-provider` package on a loopback port, with
 * its own RS256 signing key (made at start with jose), one confidential client (secret, PKCE),
 * accounts carrying email / email_verified / groups claims, and a small login page of our own
 * (its interaction routes), which a browser or `loginAt()` can use.
 *
 * `misbehave` makes the token endpoint hand out a bad ID token on purpose (wrong nonce, audience,
 * issuer, expired, or signed by a key not in the JWKS), re-signed so only that one thing is wrong.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Provider, type OidcContext } from 'oidc-provider';
import { CookieJar, locationOf } from './cookie-jar.ts';
import { freePort } from './ports.ts';

export interface TestAccount {
  password: string;
  email?: string;
  emailVerified?: boolean;
  groups?: string[];
  name?: string;
}

export type Misbehaviour = 'none' | 'wrong-nonce' | 'wrong-audience' | 'wrong-issuer' | 'expired' | 'foreign-key';

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Accounts by login (the `sub` is `sub-<login>`). */
  accounts: Map<string, TestAccount>;
  misbehave: Misbehaviour;
  stop(): Promise<void>;
}

export interface OidcProviderOptions {
  /** Redirect URIs of the registered client (the Worker's /auth/callback). */
  redirectUris: string[];
  accounts: Record<string, TestAccount>;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function loginPage(uid: string, error?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP: sign in</title>
<style>body{font:16px system-ui;margin:3rem;background:#eef2ff}form{background:#fff;padding:1.5rem;border-radius:8px;max-width:20rem}label{display:block;margin-top:.5rem}</style></head>
<body><h1>Test identity provider</h1>${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="login">Login</label><input id="login" name="login" autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password">
<p><button type="submit">Sign in at the IdP</button></p></form></body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function startOidcProvider(options: OidcProviderOptions): Promise<TestOidcProvider> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = 'mcp-remote-exec-test';
  const clientSecret = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64url');
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = 'test-key-1';
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  const foreign = await generateKeyPair('RS256');
  const accounts = new Map(Object.entries(options.accounts));

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    // Put the scope's claims in the ID token (as Google, Keycloak and Okta do), not only in userinfo.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    findAccount(_ctx, sub) {
      const login = sub.replace(/^sub-/, '');
      const account = accounts.get(login);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          ...(account.email !== undefined ? { email: account.email, email_verified: account.emailVerified ?? true } : {}),
          ...(account.groups ? { groups: account.groups } : {}),
          name: account.name ?? login,
        }),
      };
    },
    // A first-party client: the test IdP grants what it asks without a consent screen of its own.
    async loadExistingGrant(ctx: OidcContext) {
      const { client, session, provider: self } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const existing = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      if (existing) return self.Grant.find(existing);
      const grant = new self.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope('openid email profile groups');
      await grant.save();
      return grant;
    },
  });

  const state: TestOidcProvider = {
    issuer,
    clientId,
    clientSecret,
    accounts,
    misbehave: 'none',
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };

  // Rewrite the ID token after the provider made it, when a test asks for a bad one.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/token' || state.misbehave === 'none') return;
    const body = ctx.body;
    if (typeof body !== 'object' || body === null || !('id_token' in body) || typeof body.id_token !== 'string') return;
    const claims = decodeJwt(body.id_token);
    const now = Math.floor(Date.now() / 1000);
    const changed = {
      ...claims,
      ...(state.misbehave === 'wrong-nonce' ? { nonce: 'not-the-nonce-you-sent' } : {}),
      ...(state.misbehave === 'wrong-audience' ? { aud: 'some-other-client' } : {}),
      ...(state.misbehave === 'wrong-issuer' ? { iss: 'http://127.0.0.1:1/not-the-issuer' } : {}),
      ...(state.misbehave === 'expired' ? { iat: now - 7200, exp: now - 3600 } : {}),
    };
    const key = state.misbehave === 'foreign-key' ? foreign.privateKey : privateKey;
    ctx.body = { ...body, id_token: await new SignJWT(changed).setProtectedHeader({ alg: 'RS256', kid }).sign(key) };
  });

  const core = provider.callback();
  const interaction = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const match = interaction.exec(new URL(req.url ?? '/', issuer).pathname);
    if (!match) {
      core(req, res);
      return;
    }
    void (async () => {
      const details = await provider.interactionDetails(req, res);
      const send = (status: number, html: string): void => {
        res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(html);
      };
      if (req.method === 'GET') return send(200, loginPage(details.uid));
      if (req.method !== 'POST' || !match[2]) return send(405, 'method not allowed');
      const form = await readForm(req);
      const login = form.get('login') ?? '';
      const account = accounts.get(login);
      if (!account || account.password !== form.get('password')) return send(401, loginPage(details.uid, 'Wrong login or password.'));
      const returnTo = await provider.interactionResult(req, res, { login: { accountId: `sub-${login}` } }, { mergeWithLastSubmission: false });
      res.writeHead(303, { Location: returnTo });
      res.end();
    })().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end(`interaction failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return state;
}

/**
 * Sign in at the provider the way a person would: from its authorization URL, through our login
 * page, until it redirects away (to the relying party's callback). Returns that URL.
 */
export async function loginAt(jar: CookieJar, authorizationUrl: string, login: string, password: string): Promise<string> {
  let url = authorizationUrl;
  for (let hop = 0; hop < 10; hop += 1) {
    const response = await jar.fetch(url);
    const next = locationOf(response, url);
    if (response.status === 200 && /\/interaction\/[A-Za-z0-9_-]+$/.test(new URL(url).pathname)) {
      await response.body?.cancel();
      const posted = await jar.post(`${url}/login`, { login, password });
      const after = locationOf(posted, url);
      if (posted.status !== 303 || !after) throw new Error(`IdP login refused (HTTP ${posted.status}): ${(await posted.text()).slice(0, 300)}`);
      url = after;
      continue;
    }
    await response.body?.cancel();
    if (!next) throw new Error(`IdP answered HTTP ${response.status} at ${url} without a redirect`);
    if (new URL(next).origin !== new URL(authorizationUrl).origin) return next;
    url = next;
  }
  throw new Error('IdP sign-in did not finish within 10 redirects');
}
