/**
 * A loopback stand-in for GitHub's OAuth app flow and the few REST calls sign-in uses, speaking
 * GitHub's wire format:
 *   GET  /login/oauth/authorize         client_id, redirect_uri (exact), state, scope, PKCE → 302 with code
 *   POST /login/oauth/access_token      form or JSON; JSON or form answer by Accept; errors as HTTP 200
 *                                       {error, error_description, error_uri}, as GitHub does
 *   GET  /user                          Authorization: Bearer|token
 *   GET  /user/memberships/orgs/{org}   200 {state, role, organization} or 404 (needs read:org)
 *   GET  /orgs/{org}/members/{login}    204 or 404
 * Codes are single use and expire after ten minutes; client id, secret and redirect URI are checked.
 * GitHub's own login and consent screens are out of scope: `signedInAs` plays the person whose
 * GitHub session the browser has.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from './ports.ts';

export interface GithubAccount {
  id: number;
  name?: string;
  email?: string;
  /** Organisations the user is an active member of. */
  orgs?: string[];
  /** Organisations the user is only invited to (pending). */
  pendingOrgs?: string[];
}

export interface GithubStandIn {
  url: string;
  clientId: string;
  clientSecret: string;
  /** Which GitHub user the browser is signed in as at the stand-in. */
  signedInAs: string;
  /** When set, the next authorization answers with this error instead of a code (the user declined). */
  declineNext: boolean;
  /** Every request, for assertions ("METHOD /path"). */
  requests: string[];
  stop(): Promise<void>;
}

interface IssuedCode {
  login: string;
  redirectUri: string;
  scope: string;
  challenge: string | null;
  expiresAt: number;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startGithubStandIn(options: { redirectUri: string; accounts: Record<string, GithubAccount> }): Promise<GithubStandIn> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const codes = new Map<string, IssuedCode>();
  const tokens = new Map<string, { login: string; scope: string }>();
  const accounts = new Map(Object.entries(options.accounts).map(([login, account]) => [login.toLowerCase(), { login, ...account }]));
  const state: GithubStandIn = {
    url,
    clientId: 'Iv1.standin0000000000',
    clientSecret: randomBytes(20).toString('hex'),
    signedInAs: '',
    declineNext: false,
    requests: [],
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };

  const tokenAnswer = (req: IncomingMessage, res: ServerResponse, body: Record<string, string>): void => {
    if ((req.headers.accept ?? '').includes('application/json')) return json(res, 200, body);
    res.writeHead(200, { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' });
    res.end(new URLSearchParams(body).toString());
  };
  const tokenError = (req: IncomingMessage, res: ServerResponse, error: string, description: string): void =>
    tokenAnswer(req, res, {
      error,
      error_description: description,
      error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors',
    });

  const bearer = (req: IncomingMessage): { login: string; scope: string } | null => {
    const match = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '');
    return match?.[1] ? (tokens.get(match[1]) ?? null) : null;
  };
  const notFound = (res: ServerResponse): void => json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' });

  const server: Server = createServer((req, res) => {
    const requestUrl = new URL(req.url ?? '/', url);
    state.requests.push(`${req.method} ${requestUrl.pathname}`);
    void (async () => {
      if (req.method === 'GET' && requestUrl.pathname === '/login/oauth/authorize') {
        const params = requestUrl.searchParams;
        const redirectUri = params.get('redirect_uri') ?? options.redirectUri;
        if (params.get('client_id') !== state.clientId) return json(res, 404, { message: 'unknown client_id' });
        // GitHub shows its error page, not a redirect, for a callback that is not the app's.
        if (redirectUri !== options.redirectUri) return json(res, 400, { error: 'redirect_uri_mismatch' });
        const back = new URL(redirectUri);
        if (params.has('state')) back.searchParams.set('state', params.get('state') ?? '');
        if (state.declineNext) {
          state.declineNext = false;
          back.searchParams.set('error', 'access_denied');
          back.searchParams.set('error_description', 'The user has denied your application access.');
        } else {
          const account = accounts.get(state.signedInAs.toLowerCase());
          if (!account) return json(res, 401, { message: 'no GitHub user is signed in at the stand-in' });
          const code = randomBytes(10).toString('hex');
          codes.set(code, {
            login: account.login,
            redirectUri,
            scope: params.get('scope') ?? '',
            challenge: params.get('code_challenge'),
            expiresAt: Date.now() + 600_000,
          });
          back.searchParams.set('code', code);
        }
        res.writeHead(302, { Location: back.toString() });
        return res.end();
      }
      if (req.method === 'POST' && requestUrl.pathname === '/login/oauth/access_token') {
        const text = await readBody(req);
        const fields: Record<string, string> = (req.headers['content-type'] ?? '').includes('application/json')
          ? (JSON.parse(text) as Record<string, string>)
          : Object.fromEntries(new URLSearchParams(text));
        if (fields.client_id !== state.clientId || fields.client_secret !== state.clientSecret) {
          return tokenError(req, res, 'incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
        }
        const issued = fields.code ? codes.get(fields.code) : undefined;
        if (fields.code) codes.delete(fields.code);
        if (!issued || issued.expiresAt < Date.now()) return tokenError(req, res, 'bad_verification_code', 'The code passed is incorrect or expired.');
        if (fields.redirect_uri !== undefined && fields.redirect_uri !== issued.redirectUri) {
          return tokenError(req, res, 'redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
        }
        if (issued.challenge !== null) {
          const computed = createHash('sha256')
            .update(fields.code_verifier ?? '')
            .digest('base64url');
          if (computed !== issued.challenge) return tokenError(req, res, 'bad_verification_code', 'The code_verifier does not match the code_challenge.');
        }
        const token = `gho_${randomBytes(18).toString('hex')}`;
        tokens.set(token, { login: issued.login, scope: issued.scope.replaceAll(' ', ',') });
        return tokenAnswer(req, res, { access_token: token, token_type: 'bearer', scope: issued.scope.replaceAll(' ', ',') });
      }
      if (req.method === 'GET' && requestUrl.pathname === '/user') {
        const who = bearer(req);
        if (!who)
          return json(res, 401, {
            message: 'Requires authentication',
            documentation_url: 'https://docs.github.com/rest/users/users#get-the-authenticated-user',
            status: '401',
          });
        const account = accounts.get(who.login.toLowerCase());
        if (!account) return notFound(res);
        return json(res, 200, {
          login: account.login,
          id: account.id,
          node_id: `U_${account.id}`,
          avatar_url: `${url}/avatars/${account.id}`,
          type: 'User',
          site_admin: false,
          name: account.name ?? null,
          email: account.email ?? null,
          created_at: '2020-01-01T00:00:00Z',
        });
      }
      const membership = /^\/user\/memberships\/orgs\/([^/]+)$/.exec(requestUrl.pathname);
      if (req.method === 'GET' && membership?.[1]) {
        const who = bearer(req);
        if (!who) return json(res, 401, { message: 'Requires authentication' });
        // Without read:org GitHub does not say.
        if (!who.scope.split(',').includes('read:org')) return notFound(res);
        const org = decodeURIComponent(membership[1]).toLowerCase();
        const account = accounts.get(who.login.toLowerCase());
        const active = account?.orgs?.some((name) => name.toLowerCase() === org);
        const pending = account?.pendingOrgs?.some((name) => name.toLowerCase() === org);
        if (!active && !pending) return notFound(res);
        return json(res, 200, { state: active ? 'active' : 'pending', role: 'member', organization: { login: org }, user: { login: account?.login } });
      }
      const member = /^\/orgs\/([^/]+)\/members\/([^/]+)$/.exec(requestUrl.pathname);
      if (req.method === 'GET' && member?.[1] && member[2]) {
        const account = accounts.get(decodeURIComponent(member[2]).toLowerCase());
        const isMember = account?.orgs?.some((name) => name.toLowerCase() === decodeURIComponent(member[1] ?? '').toLowerCase());
        res.writeHead(isMember ? 204 : 404);
        return res.end();
      }
      return notFound(res);
    })().catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { message: error instanceof Error ? error.message : String(error) });
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return state;
}

/** The browser's step at the stand-in: follow its authorize redirect back to the relying party. */
export async function authorizeAtGithub(url: string): Promise<string> {
  const response = await fetch(url, { redirect: 'manual' });
  const location = response.headers.get('location');
  await response.body?.cancel();
  if (response.status !== 302 || !location) throw new Error(`GitHub stand-in answered HTTP ${response.status}`);
  return location;
}
