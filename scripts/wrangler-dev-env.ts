/**
 * The environment `wrangler dev` runs under, for the local mode (scripts/start-local.ts) and the
 * test stand (test/harness/worker.ts): offline, and without two developer tools wrangler turns on by
 * default, which a product's local mode must not have.
 *
 * - The local explorer (X_LOCAL_EXPLORER): wrangler serves a storage browser on the Worker's own
 *   port, under /cdn-cgi/local/explorer, with no sign-in. Its API runs SQL in any Durable Object
 *   and reads and writes KV, so anything that can reach the port (another user or process on the
 *   machine) could read the team directory and the audit log, or write itself in as an admin,
 *   around every check the Worker makes.
 * - Local observability (X_LOCAL_OBSERVABILITY): a trace collector, a streaming tail Worker in the
 *   same workerd, attached to every invocation: each request, Durable Object call, WebSocket message
 *   and alarm. It feeds the explorer's traces view, but has a switch of its own, so both are forced.
 *   On the one thread that runs the Worker and all its Durable Objects locally it cost as much CPU
 *   as the Worker itself: workerd's CPU per relay_ping went from 11.1 to 6.1 ms without it on the
 *   bench VM. Deployed Workers have nothing like it on their path.
 *
 * These are forced, not defaults: an inherited X_LOCAL_EXPLORER=true does not turn the explorer on.
 */
export function wranglerDevEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_SEND_ERROR_REPORTS: 'false',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    X_LOCAL_EXPLORER: 'false',
    X_LOCAL_OBSERVABILITY: 'false',
  };
}
