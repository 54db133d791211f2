/**
 * The Worker entry. OAuthProvider wraps everything: /mcp requires a valid access token bound to
 * PUBLIC_URL/mcp; /authorize is our sign-in page; /token, /register and the well-known metadata
 * belong to the provider; /relay is the relay's WebSocket (its own token, checked before upgrade).
 * In front of it all: the DNS-rebinding guard (Host, and Origin on /mcp, /relay and the admin API),
 * request body limits, the refusal of JSON-RPC batches on /mcp, then checks on /register and /token.
 */
import { getOAuthApi, OAuthProvider, type OAuthProviderOptions } from '@cloudflare/workers-oauth-provider';
import { withBodyLimit } from './body-limits.ts';
import { batchRefusal } from './mcp-batches.ts';
import { deploymentNames, rebindingRefusal, type DeploymentNames } from './rebinding-guard.ts';
import { checkRegistration } from './auth/client-registration.ts';
import { guardRefreshReuse, REFRESH_TOKEN_TTL_SECONDS } from './auth/refresh-reuse.ts';
import { ADMIN_API_PREFIX, handleAdminApi } from './admin/admin-api.ts';
import { handleAdminPage, isAdminPagePath } from './admin/admin-page.ts';
import { handleOwnApprovals, isOwnApprovalsPath } from './approvals/own-approvals-page.ts';
import { handleAuthorize } from './auth/authorize.ts';
import { followClientRevocation } from './auth/grant-revocation.ts';
import { ACCESS_TOKEN_TTL_SECONDS, envWithCachedTokens } from './auth/token-cache.ts';
import { CALLBACK_PATH, handleUpstreamCallback } from './auth/upstream-sign-in.ts';
import { logEvent } from './log.ts';
import { countingEnv, countingRequested, withDoCallCount } from './do-call-count.ts';
import { mcpApiHandler } from './mcp/transport.ts';
import { holdBody } from './mcp/request-body.ts';
import { handleRelayConnect } from './relay/relay-route.ts';
import { handleTransfer, TRANSFER_PATH } from './transfers/transfer-route.ts';
import { readSettings, SettingsError } from './settings.ts';

export { McpSession } from './mcp/session-mailbox.ts';
export { RelayHub } from './relay/relay-hub.ts';
export { TransferLink } from './transfers/transfer-link.ts';
export { TeamDirectory } from './team/team-directory.ts';
export { AuditLog } from './audit/audit-log.ts';
export { ImageKitTransferState } from './imagekit/transfer-state.ts';
export { RefreshLedger } from './auth/refresh-ledger.ts';
export { JobBook } from './jobs/job-book.ts';
export { ApprovalDesk } from './approvals/approval-desk.ts';

const defaultHandler = {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const transfer = TRANSFER_PATH.exec(url.pathname);
    if (transfer?.[1] && transfer[2]) return handleTransfer(request, env, transfer[1], transfer[2]);
    if (url.pathname.startsWith(ADMIN_API_PREFIX)) return handleAdminApi(request, env);
    if (isAdminPagePath(url.pathname)) return handleAdminPage(request, env);
    if (isOwnApprovalsPath(url.pathname)) return handleOwnApprovals(request, env);
    switch (url.pathname) {
      case '/authorize':
        return handleAuthorize(request, env);
      case CALLBACK_PATH:
        return handleUpstreamCallback(request, env);
      case '/relay':
        return handleRelayConnect(request, env);
      case '/':
        return new Response(`mcp-remote-exec\n\nMCP endpoint: ${readSettings(env).resource}\n`, { headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
      case '/healthz':
        return new Response('ok\n');
      default:
        return new Response('Not found\n', { status: 404 });
    }
  },
};

function providerOptions(env: Env): OAuthProviderOptions<Env> {
  const settings = readSettings(env);
  return {
    apiRoute: '/mcp',
    apiHandler: mcpApiHandler,
    defaultHandler,
    authorizeEndpoint: '/authorize',
    tokenEndpoint: '/token',
    // Sign-up: a client whose client_id is an https URL to its metadata document (CIMD) needs no
    // registration; the provider fetches and checks that document (needs global_fetch_strictly_public,
    // wrangler.toml). Dynamic registration at /register stays for clients that do not do CIMD.
    clientIdMetadataDocumentEnabled: true,
    clientRegistrationEndpoint: '/register',
    scopesSupported: ['mcp'],
    accessTokenTTL: ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTTL: REFRESH_TOKEN_TTL_SECONDS,
    resourceMetadata: { resource: settings.resource, resource_name: 'mcp-remote-exec' },
  };
}

interface Entry {
  provider: OAuthProvider<Env>;
  options: OAuthProviderOptions<Env>;
  maxFileSize: number;
  names: DeploymentNames;
}

// Built once per isolate: the resource URL comes from env, which module scope cannot see.
let entry: Entry | undefined;

function buildEntry(env: Env): Entry {
  const options = providerOptions(env);
  const settings = readSettings(env);
  return { provider: new OAuthProvider<Env>(options), options, maxFileSize: settings.tools.maxFileSize, names: deploymentNames(settings) };
}

/**
 * What runs in front of the provider, by path: registration checks and refresh-token reuse
 * detection wrap the provider's own endpoints; everything else goes straight to it.
 */
function route(request: Request, env: Env, ctx: ExecutionContext, built: Entry): Promise<Response> {
  const { pathname } = new URL(request.url);
  // /mcp only reads access tokens: their records may come from this isolate's copy (worker/auth/token-cache.ts).
  const providerEnv = pathname === '/mcp' || pathname.startsWith('/mcp/') ? envWithCachedTokens(env) : env;
  const toProvider = (forwarded: Request): Promise<Response> => built.provider.fetch(forwarded, providerEnv, ctx);
  if (pathname === '/register') return checkRegistration(request, toProvider);
  if (pathname === '/token' && request.method === 'POST')
    return guardRefreshReuse(request, env, getOAuthApi(built.options, env), (forwarded) => followClientRevocation(forwarded, env, toProvider));
  return toProvider(request);
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    // Test builds count the Durable Object calls of requests that ask (worker/do-call-count.ts).
    if (countingRequested(env, request)) return withDoCallCount(0, () => serve(request, countingEnv(env), ctx));
    return serve(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;

async function serve(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  let built: Entry;
  try {
    built = entry ??= buildEntry(env);
  } catch (error) {
    if (error instanceof SettingsError) {
      logEvent('error', 'configuration error', { error: error.message });
      return new Response(`Configuration error: ${error.message}\n`, { status: 500 });
    }
    throw error;
  }
  // A foreign Host or Origin is refused before a byte of the body is read or a token looked at.
  const refused = rebindingRefusal(request, built.names);
  if (refused) return refused;
  // Body limits next, before any handler reads a byte (worker/body-limits.ts); then batches, which
  // need the body that the limit has just read whole.
  return withBodyLimit(request, built.maxFileSize, async (limited, bytes) => {
    const refusedBatch = batchRefusal(limited, bytes);
    if (refusedBatch) return refusedBatch;
    // The MCP route parses these bytes rather than reading the body again (worker/mcp/request-body.ts).
    if (bytes !== null) holdBody(limited, bytes);
    return route(limited, env, ctx, built);
  });
}
