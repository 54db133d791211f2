/**
 * DNS-rebinding defence, run at the Worker's entry before the OAuth provider and any route.
 *
 * A page on an attacker's name that rebinds that name to this Worker's address (most of all the local
 * mode on 127.0.0.1, where any name reaches wrangler dev) makes the browser send the attacker's name
 * as Host and the attacker's origin as Origin. So:
 *
 * - Host, on every route: its hostname must be PUBLIC_URL's or one in ALLOWED_HOSTNAMES (and, when
 *   PUBLIC_URL is on loopback, any loopback name). On Cloudflare
 *   the edge already routes by Host, so this costs nothing there; locally it keeps every page, the
 *   admin API, /relay and /mcp from answering under a foreign name. The port is not compared (as in the
 *   MCP SDK's validateHostHeader): rebinding changes the name, not the port.
 * - Origin, where a browser has no business calling from elsewhere (`/mcp`, the admin API, `/relay`):
 *   absent passes (non-browser clients send none), otherwise it must be exactly this deployment's
 *   origin, PUBLIC_URL's or the same scheme and port under an allowed name. `null`, malformed values
 *   and other ports on the same host are refused: the SDK's originValidationResponse compares
 *   hostnames only, which would let any other local site on 127.0.0.1 through.
 *
 * Not Origin-checked, on purpose: /token, /register and the metadata documents (browser-based OAuth
 * clients on their own origins call them, and PKCE and the client checks guard them); the sign-in,
 * consent and admin pages (their forms carry CSRF tokens, and a browser may send `Origin: null` on a
 * form post under a no-referrer policy); transfer links (capability URLs any client may use).
 */
import type { WorkerSettings } from './settings.ts';

/** The names and origins this deployment answers as, built from the settings once per isolate. */
export interface DeploymentNames {
  /** Lowercase hostnames (IPv6 in brackets), without ports. */
  hostnames: ReadonlySet<string>;
  /** Serialized origins (scheme://host[:port]), exactly as a browser sends them. */
  origins: ReadonlySet<string>;
  /** PUBLIC_URL's origin, for messages. */
  publicOrigin: string;
}

/** Names of this machine's loopback interface (IPv6 bracketed, as in a URL's hostname). */
const LOOPBACK_NAMES: readonly string[] = ['127.0.0.1', 'localhost', '[::1]'];

export function deploymentNames(settings: Pick<WorkerSettings, 'publicUrl' | 'allowedHostnames'>): DeploymentNames {
  const publicUrl = new URL(settings.publicUrl);
  const origins = new Set([publicUrl.origin]);
  // The local mode on loopback answers to all of the loopback names (a browser opened on localhost
  // rather than 127.0.0.1): a rebinding page cannot send any of them, as its name is the attacker's.
  const loopback = LOOPBACK_NAMES.includes(publicUrl.hostname) ? LOOPBACK_NAMES : [];
  const others = [...new Set([...loopback, ...settings.allowedHostnames])].filter((name) => name !== publicUrl.hostname);
  for (const name of others) {
    // The same deployment under another name: same scheme and port (none for https on 443).
    const other = new URL(publicUrl.origin);
    other.hostname = name;
    origins.add(other.origin);
  }
  return { hostnames: new Set([publicUrl.hostname, ...others]), origins, publicOrigin: publicUrl.origin };
}

/** Paths where a present Origin must be this deployment's. */
export function checksOrigin(pathname: string): boolean {
  return pathname === '/mcp' || pathname.startsWith('/mcp/') || pathname === '/relay' || pathname === '/admin/api' || pathname.startsWith('/admin/api/');
}

/**
 * The hostname a Host value names, lowercased, or null unless the value is a plain `name[:port]`.
 * Only names in the deployment's set are accepted, and those are canonical (a URL parser's own
 * output), so anything a parser would reinterpret is refused without parsing it: userinfo
 * (`evil.example@127.0.0.1` parses to 127.0.0.1), paths, percent-escapes, numeric IPv4 forms
 * (`2130706433`), Unicode names, whitespace. Browsers send the normalised form.
 */
function hostnameOf(host: string): string | null {
  const match = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(host);
  return match?.[1]?.toLowerCase() || null;
}

function refusal(pathname: string, message: string): Response {
  const headers = { 'Cache-Control': 'no-store' };
  // On the MCP endpoint, answer as the MCP SDK's validators do: a JSON-RPC error with no id.
  if (pathname === '/mcp' || pathname.startsWith('/mcp/')) {
    return Response.json({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }, { status: 403, headers });
  }
  return new Response(`${message}\n`, { status: 403, headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8' } });
}

/**
 * A 403 when the request's Host (or, on the paths above, its Origin) is not this deployment's;
 * undefined when it may go on. The refused value is not echoed back.
 */
export function rebindingRefusal(request: Request, names: DeploymentNames): Response | undefined {
  const { pathname } = new URL(request.url);
  // workerd fills Host from the request line; the URL's host is the same value, and the fallback
  // for a request made inside the runtime without one.
  const host = request.headers.get('Host') ?? new URL(request.url).host;
  const hostname = hostnameOf(host);
  if (hostname === null || !names.hostnames.has(hostname)) {
    return refusal(
      pathname,
      `Forbidden: this deployment answers only as ${names.publicOrigin} and the names in ALLOWED_HOSTNAMES; the request's Host header is not one of them.`,
    );
  }
  if (!checksOrigin(pathname)) return undefined;
  const origin = request.headers.get('Origin');
  if (origin !== null && !names.origins.has(origin)) {
    return refusal(
      pathname,
      `Forbidden: requests from a web page must come from ${names.publicOrigin} (or the same deployment under a name in ALLOWED_HOSTNAMES); the request's Origin header is not.`,
    );
  }
  return undefined;
}
