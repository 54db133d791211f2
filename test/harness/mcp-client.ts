/**
 * The official MCP SDK clients, connecting the way claude.ai does: a 401 from /mcp leads to the
 * protected-resource metadata, the authorization server metadata, dynamic client registration and
 * an authorization-code flow with PKCE (S256). The browser step is done over HTTP here: fetch the
 * sign-in form, post it with its CSRF token and cookie, and read the code from the redirect.
 *
 * Two eras, one shape: '2025-11-25' is the SDK v1 client (a session, initialize, what most
 * clients speak today); '2026-07-28' is the SDK v2 client pinned to the stateless revision. Which
 * one a test gets is chosen per call, else by MCP_CLIENT_ERA for the whole run (npm test runs the
 * end-to-end suite once per era). Tests talk to `client`, which looks the same for both.
 */
import { Client as Client2025 } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError as Unauthorized2025 } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport as Transport2025 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  ElicitRequestSchema,
  ListToolsResultSchema,
  type CallToolResult,
  type ListToolsResult,
} from '@modelcontextprotocol/sdk/types.js';
import type { OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import {
  Client as Client2026,
  StreamableHTTPClientTransport as Transport2026,
  UnauthorizedError as Unauthorized2026,
  type StoredOAuthClientInformation,
  type StoredOAuthTokens,
} from '@modelcontextprotocol/client';
import { VERSION } from '../../shared/version.ts';
import { signInThroughForm, type Credentials, type SignInResult } from './sign-in-form.ts';

/** Plays the browser from the authorization URL to the redirect back to the client (e.g. through an identity provider). */
export type BrowserStep = (authorizationUrl: URL) => Promise<SignInResult>;

export const TEST_REDIRECT_URL = 'http://127.0.0.1:33418/callback';

export const MCP_ERAS = ['2025-11-25', '2026-07-28'] as const;
export type McpEra = (typeof MCP_ERAS)[number];

/** The era for this run: MCP_CLIENT_ERA, else 2025-11-25. */
export function defaultEra(): McpEra {
  const given = process.env.MCP_CLIENT_ERA;
  if (given === undefined || given === '') return '2025-11-25';
  const era = MCP_ERAS.find((candidate) => candidate === given);
  if (!era) throw new Error(`MCP_CLIENT_ERA must be one of ${MCP_ERAS.join(', ')}, not ${given}`);
  return era;
}

/**
 * An OAuth client provider whose "browser" is signInThroughForm (or a given BrowserStep). State
 * lives in memory. Generic over the stored shapes, which each SDK types on its own.
 */
export class FormDrivingAuthProvider<ClientInformation = unknown, Tokens = unknown> {
  private client: ClientInformation | undefined;
  private savedTokens: Tokens | undefined;
  private verifier = '';
  private readonly browser: BrowserStep;
  lastAuthorizationUrl: URL | undefined;
  authorizationCode: string | undefined;
  /** The redirect's `iss` (RFC 9207), which the SDK v2 client checks against the authorization server. */
  authorizationIssuer: string | undefined;

  constructor(signIn: Credentials | BrowserStep) {
    this.browser = typeof signIn === 'function' ? signIn : (url) => signInThroughForm(fetch, url, signIn);
  }

  get redirectUrl(): string {
    return TEST_REDIRECT_URL;
  }

  get clientMetadata(): { client_name: string; redirect_uris: string[]; grant_types: string[]; response_types: string[]; token_endpoint_auth_method: string } {
    return {
      client_name: 'mcp-remote-exec e2e client',
      redirect_uris: [TEST_REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation(): ClientInformation | undefined {
    return this.client;
  }

  saveClientInformation(information: ClientInformation): void {
    this.client = information;
  }

  tokens(): Tokens | undefined {
    return this.savedTokens;
  }

  saveTokens(tokens: Tokens): void {
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
    const redirect = new URL(result.location).searchParams;
    const code = redirect.get('code');
    if (!code) throw new Error(`redirect carries no code: ${result.location}`);
    this.authorizationCode = code;
    this.authorizationIssuer = redirect.get('iss') ?? undefined;
  }
}

/** What a test may pass with a call, on either era. */
export interface CallOptions {
  signal?: AbortSignal;
  timeout?: number;
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
}

/** The calls tests make, the same for both eras (results in the SDK v1 types, validated). */
export interface EraClient {
  /** The schema argument of the v1 client is accepted and ignored: results are always validated as CallToolResult. */
  callTool(params: { name: string; arguments?: Record<string, unknown> }, resultSchema?: unknown, options?: CallOptions): Promise<CallToolResult>;
  listTools(): Promise<ListToolsResult>;
}

/** The underlying SDK client, for tests that need what only one era has (a session id, raw requests). */
export type RawClient =
  { era: '2025-11-25'; client: Client2025; transport: Transport2025 } | { era: '2026-07-28'; client: Client2026; transport: Transport2026 };

export interface ConnectedClient {
  era: McpEra;
  client: EraClient;
  raw: RawClient;
  /** The signed-in user's access token (for raw HTTP requests in tests). */
  accessToken(): string;
  close(): Promise<void>;
}

export interface ConnectOptions {
  era?: McpEra;
  /** Answer the server's questions (elicitation on 2025, input_required on 2026-07-28); without it the client declares no elicitation support. */
  answer?: (message: string) => Record<string, string | boolean> | 'decline';
  /** Extra HTTP headers on every request (e.g. COUNT_DO_CALLS_HEADER, to have the Worker count this client's calls). */
  headers?: Record<string, string>;
}

function tokenOf(tokens: unknown): string {
  const token = typeof tokens === 'object' && tokens !== null && 'access_token' in tokens ? tokens.access_token : undefined;
  if (typeof token !== 'string') throw new Error('not signed in');
  return token;
}

export function answerResult(
  answer: ConnectOptions['answer'],
  message: string,
): { action: 'accept'; content: Record<string, string | boolean> } | { action: 'decline' } {
  const given = answer?.(message) ?? 'decline';
  return given === 'decline' ? { action: 'decline' } : { action: 'accept', content: given };
}

async function connect2025(url: URL, signIn: Credentials | BrowserStep, options: ConnectOptions): Promise<ConnectedClient> {
  const provider = new FormDrivingAuthProvider<OAuthClientInformationMixed, OAuthTokens>(signIn);
  const make = (): Client2025 => {
    const client = new Client2025({ name: 'mcp-remote-exec-e2e', version: VERSION }, options.answer ? { capabilities: { elicitation: { form: {} } } } : {});
    if (options.answer) client.setRequestHandler(ElicitRequestSchema, async (request) => answerResult(options.answer, request.params.message));
    return client;
  };
  let client = make();
  let transport = new Transport2025(url, { authProvider: provider, ...(options.headers ? { requestInit: { headers: options.headers } } : {}) });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof Unauthorized2025) || !provider.authorizationCode) throw error;
    await transport.finishAuth(provider.authorizationCode);
    client = make();
    transport = new Transport2025(url, { authProvider: provider, ...(options.headers ? { requestInit: { headers: options.headers } } : {}) });
    await client.connect(transport);
  }
  const connected = client;
  return {
    era: '2025-11-25',
    raw: { era: '2025-11-25', client: connected, transport },
    client: {
      callTool: async (params, _schema, callOptions) => CallToolResultSchema.parse(await connected.callTool(params, CallToolResultSchema, callOptions)),
      listTools: () => connected.listTools(),
    },
    accessToken: () => tokenOf(provider.tokens()),
    close: () => connected.close(),
  };
}

async function connect2026(url: URL, signIn: Credentials | BrowserStep, options: ConnectOptions): Promise<ConnectedClient> {
  const provider = new FormDrivingAuthProvider<StoredOAuthClientInformation, StoredOAuthTokens>(signIn);
  const make = (): Client2026 => {
    // Pinned, not 'auto': a test of the 2026-07-28 lane must fail rather than fall back to 2025.
    const client = new Client2026(
      { name: 'mcp-remote-exec-e2e', version: VERSION },
      { versionNegotiation: { mode: { pin: '2026-07-28' } }, ...(options.answer ? { capabilities: { elicitation: { form: {} } } } : {}) },
    );
    // On 2026-07-28 the client answers an input_required result through this handler and retries the call.
    if (options.answer)
      client.setRequestHandler('elicitation/create', async (request) =>
        answerResult(options.answer, 'message' in request.params ? request.params.message : ''),
      );
    return client;
  };
  let client = make();
  let transport = new Transport2026(url, { authProvider: provider, ...(options.headers ? { requestInit: { headers: options.headers } } : {}) });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof Unauthorized2026) || !provider.authorizationCode) throw error;
    await transport.finishAuth(provider.authorizationCode, provider.authorizationIssuer);
    client = make();
    transport = new Transport2026(url, { authProvider: provider, ...(options.headers ? { requestInit: { headers: options.headers } } : {}) });
    await client.connect(transport);
  }
  const connected = client;
  return {
    era: '2026-07-28',
    raw: { era: '2026-07-28', client: connected, transport },
    client: {
      callTool: async (params, _schema, callOptions) => CallToolResultSchema.parse(await connected.callTool(params, callOptions)),
      listTools: async () => ListToolsResultSchema.parse(await connected.listTools()),
    },
    accessToken: () => tokenOf(provider.tokens()),
    close: () => connected.close(),
  };
}

export async function connectMcpClient(mcpUrl: string, signIn: Credentials | BrowserStep, options: ConnectOptions = {}): Promise<ConnectedClient> {
  const url = new URL(mcpUrl);
  return (options.era ?? defaultEra()) === '2026-07-28' ? connect2026(url, signIn, options) : connect2025(url, signIn, options);
}
