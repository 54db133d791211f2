/**
 * The official MCP SDK client, connecting the way claude.ai does: a 401 from /mcp leads it to the
 * protected-resource metadata, the authorization server metadata, dynamic client registration and
 * an authorization-code flow with PKCE (S256). The browser step is done over HTTP here: fetch the
 * sign-in form, post it with its CSRF token and cookie, and read the code from the redirect.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { VERSION } from '../../shared/version.ts';
import { signInThroughForm, type Credentials, type SignInResult } from './sign-in-form.ts';

/** Plays the browser from the authorization URL to the redirect back to the client (e.g. through an identity provider). */
export type BrowserStep = (authorizationUrl: URL) => Promise<SignInResult>;

export const TEST_REDIRECT_URL = 'http://127.0.0.1:33418/callback';

/** An OAuthClientProvider whose "browser" is signInThroughForm (or a given BrowserStep). State lives in memory. */
export class FormDrivingAuthProvider implements OAuthClientProvider {
  private client: OAuthClientInformationMixed | undefined;
  private savedTokens: OAuthTokens | undefined;
  private verifier = '';
  private readonly browser: BrowserStep;
  lastAuthorizationUrl: URL | undefined;
  authorizationCode: string | undefined;

  constructor(signIn: Credentials | BrowserStep) {
    this.browser = typeof signIn === 'function' ? signIn : (url) => signInThroughForm(fetch, url, signIn);
  }

  get redirectUrl(): string {
    return TEST_REDIRECT_URL;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'mcp-remote-exec e2e client',
      redirect_uris: [TEST_REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.client;
  }

  saveClientInformation(information: OAuthClientInformationMixed): void {
    this.client = information;
  }

  tokens(): OAuthTokens | undefined {
    return this.savedTokens;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.savedTokens = tokens;
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    return this.verifier;
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    this.lastAuthorizationUrl = url;
    const result = await this.browser(url);
    if (result.status !== 302 || !result.location) throw new Error(`sign-in did not redirect (HTTP ${result.status}):\n${result.body.slice(0, 1000)}`);
    const code = new URL(result.location).searchParams.get('code');
    if (!code) throw new Error(`redirect carries no code: ${result.location}`);
    this.authorizationCode = code;
  }
}

export interface ConnectedClient {
  client: Client;
  auth: FormDrivingAuthProvider;
  close(): Promise<void>;
}

export async function connectMcpClient(mcpUrl: string, signIn: Credentials | BrowserStep): Promise<ConnectedClient> {
  const auth = new FormDrivingAuthProvider(signIn);
  const url = new URL(mcpUrl);
  let client = new Client({ name: 'mcp-remote-exec-e2e', version: VERSION });
  let transport = new StreamableHTTPClientTransport(url, { authProvider: auth });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !auth.authorizationCode) throw error;
    await transport.finishAuth(auth.authorizationCode);
    client = new Client({ name: 'mcp-remote-exec-e2e', version: VERSION });
    transport = new StreamableHTTPClientTransport(url, { authProvider: auth });
    await client.connect(transport);
  }
  const connected = client;
  return {
    client: connected,
    auth,
    async close() {
      await connected.close();
    },
  };
}
