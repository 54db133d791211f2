/**
 * The checks `npm run deploy` makes before it deploys: whatever would make the deployed Worker wrong
 * (unreachable, refusing its own domain, nobody able to sign in) or unsafe (secrets in plain vars,
 * test switches on). Each problem says what to change and where. The Worker's own settings
 * validation runs here too, so a value the Worker would refuse at its first request is refused now.
 */
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';
import { parsePasswordHash } from '../worker/auth/password-hash.ts';
import type { DeployConfig, DeployRoute, SecretsInfo } from './deploy-config.ts';

const ROOT = resolve(import.meta.dirname, '..');

/** Compatibility flags the code depends on (the comments in wrangler.toml say why each). */
export const REQUIRED_COMPATIBILITY_FLAGS = ['nodejs_compat', 'global_fetch_strictly_public', 'enable_request_signal'] as const;

/** Secrets: never in [vars], where they are plain text in the config and on the dashboard. */
export const SECRET_NAMES = [
  'ADMIN_PASSWORD_HASH',
  'RELAY_TOKEN_HASH',
  'OIDC_CLIENT_SECRET',
  'GITHUB_CLIENT_SECRET',
  'IMAGEKIT_PRIVATE_KEY',
  'APPROVAL_WEBHOOK_SECRET',
] as const;

/** Switches only the tests set (worker/env.d.ts): each points the Worker at stand-ins or adds test tools. */
export const TEST_ONLY_VARS = ['MCP_REMOTE_EXEC_TEST_TOOLS', 'GITHUB_OAUTH_URL', 'GITHUB_API_URL', 'APPROVAL_WEBHOOK_RETRY_MS'] as const;

export interface DeployReport {
  /** Each stops the deploy. */
  problems: string[];
  /** What was not checked, or is worth knowing; none stops the deploy. */
  notes: string[];
}

type Validator = (env: Record<string, unknown>) => unknown;

/**
 * The Worker's own validators (worker/settings.ts readSettings, worker/auth/identity-config.ts
 * readIdentityProviders). Imported by path at run time: those files type-check against the Worker's
 * `Env` (worker/tsconfig.json), which the scripts' tsconfig does not have, and Node runs them as they are.
 */
async function workerValidator(file: string, exportName: string): Promise<Validator> {
  const module: unknown = await import(pathToFileURL(join(ROOT, file)).href);
  const exported = typeof module === 'object' && module !== null ? (module as Record<string, unknown>)[exportName] : undefined;
  if (typeof exported !== 'function') throw new Error(`${file} no longer exports ${exportName}`);
  return exported as Validator;
}

/** Secrets a var turns on (the Worker refuses to start that feature without them). */
const SECRETS_TURNED_ON_BY: Readonly<Record<string, string>> = {
  OIDC_CLIENT_SECRET: 'OIDC_CLIENT_ID',
  GITHUB_CLIENT_SECRET: 'GITHUB_CLIENT_ID',
  IMAGEKIT_PRIVATE_KEY: 'ENABLE_IMAGEKIT',
};

/**
 * A value standing in for a secret that is set but whose value this check does not know (a name
 * from `wrangler secret list`). Names the Worker reads as URLs (an OIDC_ISSUER kept as a secret) get
 * a well-formed https URL so that only what is known is judged.
 */
function placeholderFor(name: string): string {
  return /(_URL|_ISSUER|_ENDPOINT)$/.test(name) ? 'https://value-not-known.invalid' : 'set (value not known to the check)';
}

const LOOPBACK_OR_PRIVATE = [
  /^localhost$/,
  /\.localhost$/,
  /^127\./,
  /^0\.0\.0\.0$/,
  /^\[::1?\]$/,
  /^10\./,
  /^192\.168\./,
  /^172\.(1[6-9]|2\d|3[01])\./,
  /^169\.254\./,
  /^\[f[cd]/,
];
/** Names reserved for documentation and tests (RFC 2606, RFC 6761): a copied example, not a deployment. */
const PLACEHOLDER_HOST = /(^|\.)(example\.(com|org|net)|example|test|invalid)$/;

function hostOfRoute(route: DeployRoute): string | null {
  const pattern = typeof route === 'string' ? route : route.pattern;
  // "mcp.example.com/*" → mcp.example.com; a wildcard name cannot be PUBLIC_URL or an allowed name.
  const host =
    pattern
      .replace(/^https?:\/\//, '')
      .split('/')[0]
      ?.toLowerCase() ?? '';
  return host === '' || host.includes('*') ? null : host;
}

function routesOf(config: DeployConfig): DeployRoute[] {
  return [...(config.routes ?? []), ...(config.route === undefined ? [] : [config.route])];
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Everything wrong with deploying `config` with these secrets; empty `problems` means go. */
export async function checkDeployment(config: DeployConfig, secrets: SecretsInfo, configName = 'wrangler.toml'): Promise<DeployReport> {
  const problems: string[] = [];
  const notes: string[] = [];
  const vars = config.vars;

  // Bindings to storage that must exist in the account: an id copied from the template is not one.
  const oauthKv = config.kv_namespaces.find((namespace) => namespace.binding === 'OAUTH_KV');
  if (!oauthKv)
    problems.push(
      `${configName} has no OAUTH_KV namespace: add [[kv_namespaces]] binding = "OAUTH_KV" with the id from \`npx wrangler kv namespace create OAUTH_KV\``,
    );
  for (const namespace of config.kv_namespaces) {
    const id = namespace.id ?? '';
    if (!/^[0-9a-f]{32}$/i.test(id) || /^0+$/.test(id)) {
      problems.push(
        `KV namespace ${namespace.binding}: id "${id}" is a placeholder, not a namespace of your account: run \`npx wrangler kv namespace create ${namespace.binding}\` and put the printed id into ${configName}`,
      );
    }
  }
  for (const database of config.d1_databases) {
    const id = database.database_id ?? '';
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) || /^[0-]+$/.test(id)) {
      problems.push(
        `D1 database ${database.binding}: database_id "${id}" is a placeholder: run \`npx wrangler d1 create NAME\` and put the printed id into ${configName}`,
      );
    }
  }

  if (!config.compatibility_date) problems.push(`${configName} has no compatibility_date`);
  for (const flag of REQUIRED_COMPATIBILITY_FLAGS) {
    if (!config.compatibility_flags.includes(flag))
      problems.push(`compatibility_flags lacks "${flag}", which the Worker needs (see the comment in wrangler.toml)`);
  }

  // Vars are strings to the Worker; a TOML number or table would arrive as something else and fail its parse.
  const stringVars: Record<string, string> = {};
  for (const [name, value] of Object.entries(vars)) {
    if (typeof value === 'string') stringVars[name] = value;
    else problems.push(`[vars] ${name} is ${JSON.stringify(value)}, not a string: quote it (${name} = "${String(value)}")`);
  }
  for (const name of SECRET_NAMES) {
    if (name in vars)
      problems.push(
        `${name} is in [vars], where it is plain text in ${configName} and on the dashboard: remove it there and \`npx wrangler secret put ${name}\``,
      );
  }
  for (const name of TEST_ONLY_VARS) {
    if (name in vars) problems.push(`[vars] ${name} is for tests only (it points the Worker at stand-ins or adds test tools): remove it`);
  }

  // PUBLIC_URL: tokens are bound to PUBLIC_URL/mcp, so it must be the https URL clients really use.
  const publicUrlText = stringVars['PUBLIC_URL'];
  let publicHost: string | null = null;
  if (publicUrlText === undefined) {
    problems.push(`PUBLIC_URL is not set: set it under [vars] in ${configName} to the https URL clients use, e.g. https://mcp.example.com`);
  } else {
    const url = URL.parse(publicUrlText);
    if (!url) {
      problems.push(`PUBLIC_URL "${publicUrlText}" is not a URL: set it to the https URL clients use, e.g. https://mcp.example.com`);
    } else {
      publicHost = url.hostname;
      if (LOOPBACK_OR_PRIVATE.some((pattern) => pattern.test(url.hostname))) {
        problems.push(
          `PUBLIC_URL is ${publicUrlText}, an address of this machine or a private network (the local default): set it to the URL clients will use, e.g. https://mcp-remote-exec.<you>.workers.dev or your custom domain`,
        );
      } else if (url.protocol !== 'https:') {
        problems.push(`PUBLIC_URL must use https on Cloudflare, not "${publicUrlText}"`);
      }
      if (PLACEHOLDER_HOST.test(url.hostname))
        problems.push(`PUBLIC_URL's host ${url.hostname} is a name reserved for examples: set your own domain or workers.dev name`);
      if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
        problems.push(
          `PUBLIC_URL must be an origin only (scheme and host, no path, query or user): ${url.origin}, not "${publicUrlText}" (clients use PUBLIC_URL/mcp)`,
        );
      }
    }
  }

  // The Worker's own validation: a value it refuses would fail every request after the deploy.
  const env: Record<string, unknown> = { ...vars };
  if (secrets.known) {
    for (const name of secrets.names) env[name] = secrets.values.get(name) ?? placeholderFor(name);
  } else {
    // Unknown secrets: assume those the vars turn on are set, so only the vars are judged here.
    for (const [secret, switchVar] of Object.entries(SECRETS_TURNED_ON_BY)) {
      const on = stringVars[switchVar]?.trim();
      if (on && on !== 'false') env[secret] = placeholderFor(secret);
    }
  }
  let allowedHostnames: string[] = [];
  try {
    const settings = (await workerValidator('worker/settings.ts', 'readSettings'))(env);
    if (typeof settings === 'object' && settings !== null && 'allowedHostnames' in settings && Array.isArray(settings.allowedHostnames)) {
      allowedHostnames = settings.allowedHostnames.filter((name): name is string => typeof name === 'string');
    }
  } catch (error) {
    problems.push(`the Worker would refuse its settings: ${describeError(error)}`);
  }
  try {
    (await workerValidator('worker/auth/identity-config.ts', 'readIdentityProviders'))(env);
  } catch (error) {
    problems.push(`the Worker would refuse its sign-in settings: ${describeError(error)}`);
  }

  // Names: clients must reach PUBLIC_URL's host, and every name routed here must be one the Worker answers to.
  const routes = routesOf(config);
  if (publicHost !== null && !LOOPBACK_OR_PRIVATE.some((pattern) => pattern.test(publicHost ?? ''))) {
    if (publicHost.endsWith('.workers.dev')) {
      if (config.workers_dev === false)
        problems.push(`PUBLIC_URL is a workers.dev name but ${configName} sets workers_dev = false: clients could not reach it`);
      else if (config.name && !publicHost.startsWith(`${config.name.toLowerCase()}.`))
        problems.push(`PUBLIC_URL's host ${publicHost} is not this Worker's workers.dev name (${config.name}.<your subdomain>.workers.dev)`);
    } else if (!routes.some((route) => hostOfRoute(route) === publicHost)) {
      problems.push(
        `PUBLIC_URL's host ${publicHost} is not routed to this Worker: add routes = [{ pattern = "${publicHost}", custom_domain = true }] to ${configName} (README "A custom domain")`,
      );
    }
  }
  for (const route of routes) {
    const host = hostOfRoute(route);
    if (host !== null && host !== publicHost && !allowedHostnames.includes(host)) {
      problems.push(
        `route ${host} is neither PUBLIC_URL's host nor in ALLOWED_HOSTNAMES, so the Worker would answer 403 there (DNS-rebinding guard): add it to ALLOWED_HOSTNAMES or make it PUBLIC_URL`,
      );
    }
  }

  // Secrets: without ADMIN_PASSWORD_HASH nobody can sign in (and no team member can be added).
  if (!secrets.known) {
    notes.push(`secrets were not checked (${secrets.reason}); ADMIN_PASSWORD_HASH must be set before anyone can sign in`);
  } else {
    if (!secrets.names.has('ADMIN_PASSWORD_HASH')) {
      problems.push(
        "ADMIN_PASSWORD_HASH is not set, so nobody could sign in: printf '%s' 'a long admin password' | npm run -s hash-password | npx wrangler secret put ADMIN_PASSWORD_HASH",
      );
    } else {
      const hash = secrets.values.get('ADMIN_PASSWORD_HASH');
      if (hash !== undefined && parsePasswordHash(hash) === null)
        problems.push('ADMIN_PASSWORD_HASH is not a password hash (pbkdf2-sha256:…): make it with `npm run -s hash-password`, never put the password itself');
    }
    const relayHash = secrets.values.get('RELAY_TOKEN_HASH');
    if (relayHash !== undefined && !/^[0-9a-f]{64}$/i.test(relayHash.trim()))
      problems.push('RELAY_TOKEN_HASH is not a hex SHA-256: use the RELAY_TOKEN_HASH line `npm run -s new-relay-token` prints, never the token itself');
    if (!secrets.names.has('RELAY_TOKEN_HASH'))
      notes.push('RELAY_TOKEN_HASH is not set: each relay needs its own token (`npx mcp-remote-exec admin relays add NAME`, README "Several relays")');
    notes.push(`secrets checked from ${secrets.source}`);
  }
  return { problems, notes };
}
