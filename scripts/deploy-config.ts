/**
 * What `npm run deploy` checks, read from where it lives: the wrangler config (through wrangler's own
 * reader, so TOML, JSON and JSONC are read exactly as `wrangler deploy` reads them) and the names (and,
 * from a file, the values) of the Worker's secrets. Nothing here reaches the network except
 * `deployedSecretNames`, which asks Cloudflare through `wrangler secret list`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { z } from 'zod';

const require = createRequire(import.meta.url);

/** wrangler's command line, and telemetry off as in `npm start` (scripts/start-local.ts). */
export const WRANGLER = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
export const QUIET_WRANGLER_ENV: Readonly<Record<string, string>> = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
};

const routeSchema = z.union([
  z.string(),
  z.object({ pattern: z.string(), custom_domain: z.boolean().optional(), zone_name: z.string().optional(), zone_id: z.string().optional() }),
]);

/** The parts of a wrangler config the checks read (wrangler has already validated its own shape). */
const deployConfigSchema = z.object({
  name: z.string().optional(),
  compatibility_date: z.string().optional(),
  compatibility_flags: z.array(z.string()).default([]),
  vars: z.record(z.string(), z.unknown()).default({}),
  kv_namespaces: z.array(z.object({ binding: z.string(), id: z.string().optional() })).default([]),
  d1_databases: z.array(z.object({ binding: z.string(), database_id: z.string().optional() })).default([]),
  route: routeSchema.optional(),
  routes: z.array(routeSchema).optional(),
  workers_dev: z.boolean().optional(),
});

export type DeployConfig = z.infer<typeof deployConfigSchema>;
export type DeployRoute = z.infer<typeof routeSchema>;

export class DeployConfigError extends Error {
  override name = 'DeployConfigError';
}

/** The wrangler config at `path`, as `wrangler deploy` would read it. */
export async function readDeployConfig(path: string): Promise<DeployConfig> {
  Object.assign(process.env, QUIET_WRANGLER_ENV);
  // Loaded when needed: wrangler's module is large and the unit tests of the checks do not need it.
  const { unstable_readConfig } = await import('wrangler');
  let raw: unknown;
  try {
    raw = unstable_readConfig({ config: path }, { hideWarnings: true });
  } catch (error) {
    throw new DeployConfigError(`could not read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = deployConfigSchema.safeParse(raw);
  if (!parsed.success) throw new DeployConfigError(`${path} is not a wrangler config this check understands: ${parsed.error.message}`);
  return parsed.data;
}

/**
 * What is known about the Worker's secrets: their names, and their values when they came from a
 * file; or nothing, with the reason.
 */
export type SecretsInfo = { known: true; source: string; names: ReadonlySet<string>; values: ReadonlyMap<string, string> } | { known: false; reason: string };

const secretListSchema = z.array(z.object({ name: z.string() }));

/** A dotenv line: NAME=value, optionally quoted; `#` comments and blank lines skipped. */
const DOTENV_LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/;

/**
 * `--secrets-from FILE`: either what `wrangler secret list --format json` prints (names only) or a
 * dotenv file of NAME=value lines such as `.dev.vars` (names and values; the values are checked,
 * never printed).
 */
export function readSecretsFile(path: string): SecretsInfo {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new DeployConfigError(`could not read --secrets-from ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (text.trimStart().startsWith('[')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new DeployConfigError(`--secrets-from ${path} starts like JSON but is not valid JSON`);
    }
    const list = secretListSchema.safeParse(json);
    if (!list.success) throw new DeployConfigError(`--secrets-from ${path} is not the output of \`wrangler secret list --format json\` ([{ "name": … }, …])`);
    return { known: true, source: path, names: new Set(list.data.map((secret) => secret.name)), values: new Map() };
  }
  const values = new Map<string, string>();
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const match = DOTENV_LINE.exec(line);
    if (!match?.[1]) throw new DeployConfigError(`--secrets-from ${path}, line ${index + 1}: not a NAME=value line`);
    const value = (match[2] ?? '').replace(/^(['"])(.*)\1$/, '$2');
    if (value !== '') values.set(match[1], value);
  }
  return { known: true, source: path, names: new Set(values.keys()), values };
}

/** The secrets Cloudflare holds for the Worker (`wrangler secret list`: needs the network and a login). */
export function deployedSecretNames(configPath: string): SecretsInfo {
  const result = spawnSync(process.execPath, [WRANGLER, 'secret', 'list', '--format', 'json', '--config', configPath], {
    env: { ...process.env, ...QUIET_WRANGLER_ENV },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const failure = (why: string): SecretsInfo => ({ known: false, reason: `\`wrangler secret list\` ${why}` });
  if (result.error) return failure(`did not run: ${result.error.message}`);
  if (result.status !== 0) return failure(`failed: ${lastLines(`${result.stdout}\n${result.stderr}`)}`);
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    return failure(`printed something other than JSON: ${lastLines(result.stdout)}`);
  }
  const list = secretListSchema.safeParse(json);
  if (!list.success) return failure('printed JSON of an unexpected shape');
  return { known: true, source: 'wrangler secret list', names: new Set(list.data.map((secret) => secret.name)), values: new Map() };
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' / ').slice(0, 500);
}
