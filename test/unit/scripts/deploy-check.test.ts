/**
 * The deploy check over config fixtures: the project's own wrangler.toml with one thing changed at a
 * time, read by wrangler's own config reader (as `wrangler deploy` reads it), and secrets given the
 * two ways the check takes them (a dotenv file with values, `wrangler secret list` JSON with names).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDeployment, REQUIRED_COMPATIBILITY_FLAGS, type DeployReport } from '../../../scripts/deploy-check.ts';
import { DeployConfigError, readDeployConfig, readSecretsFile, type SecretsInfo } from '../../../scripts/deploy-config.ts';
import { hashPassword } from '../../../worker/auth/password-hash.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const TEMPLATE = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'mre-deploy-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GOOD_URL = 'https://mcp-remote-exec.team.workers.dev';
const GOOD_KV_ID = '0123456789abcdef0123456789abcdef';
const ADMIN_HASH = await hashPassword('a long admin password', 10_000);
let files = 0;

function replaced(text: string, from: string | RegExp, to: string): string {
  const next = text.replace(from, to);
  if (next === text) throw new Error(`fixture edit found nothing to replace: ${String(from)}`);
  return next;
}

/** The project's wrangler.toml made deployable (real-looking KV id, a workers.dev PUBLIC_URL), then `edit`ed. */
function goodToml(edit: (toml: string) => string = (toml) => toml): string {
  let toml = replaced(TEMPLATE, /^main = .*$/m, `main = ${JSON.stringify(join(ROOT, 'worker', 'index.ts'))}`);
  toml = replaced(toml, 'PUBLIC_URL = "http://127.0.0.1:8787"', `PUBLIC_URL = "${GOOD_URL}"`);
  toml = replaced(toml, 'id = "00000000000000000000000000000000"', `id = "${GOOD_KV_ID}"`);
  return edit(toml);
}

function writeTemp(name: string, text: string): string {
  const path = join(dir, `${files++}-${name}`);
  writeFileSync(path, text);
  return path;
}

function secretsFile(lines: Record<string, string>): SecretsInfo {
  return readSecretsFile(
    writeTemp(
      'secrets.env',
      Object.entries(lines)
        .map(([name, value]) => `${name}=${value}\n`)
        .join(''),
    ),
  );
}

const GOOD_SECRETS = (): SecretsInfo => secretsFile({ ADMIN_PASSWORD_HASH: ADMIN_HASH });

async function check(toml: string, secrets: SecretsInfo = GOOD_SECRETS()): Promise<DeployReport> {
  return checkDeployment(await readDeployConfig(writeTemp('wrangler.toml', toml)), secrets, 'wrangler.toml');
}

/** Set (or add) a var under [vars]. */
function withVar(name: string, value: string): (toml: string) => string {
  return (toml) => {
    const line = new RegExp(`^${name} = .*$`, 'm');
    return line.test(toml) ? toml.replace(line, `${name} = ${value}`) : replaced(toml, '[vars]\n', `[vars]\n${name} = ${value}\n`);
  };
}

/** Top-level keys must come before the first table in TOML. */
function topLevel(line: string): (toml: string) => string {
  return (toml) => replaced(toml, /^(compatibility_date = .*)$/m, `$1\n${line}`);
}

describe('deploy check', () => {
  it('passes a deployable config with the admin password hash set', async () => {
    const report = await check(goodToml());
    expect(report.problems).toEqual([]);
    expect(report.notes.join('\n')).toContain('RELAY_TOKEN_HASH is not set');
  });

  it("refuses the repository's own wrangler.toml (the local defaults): placeholder KV id and loopback PUBLIC_URL", async () => {
    const report = await check(replaced(TEMPLATE, /^main = .*$/m, `main = ${JSON.stringify(join(ROOT, 'worker', 'index.ts'))}`));
    expect(report.problems).toHaveLength(2);
    expect(report.problems[0]).toMatch(/KV namespace OAUTH_KV: id "0{32}" is a placeholder.*wrangler kv namespace create OAUTH_KV/);
    expect(report.problems[1]).toMatch(/PUBLIC_URL is http:\/\/127\.0\.0\.1:8787, an address of this machine/);
  });

  it.each(['REPLACE_WITH_YOUR_ID', '<your namespace id>', '0123456789abcdef'])('finds a KV id that is not a namespace id: "%s"', async (id) => {
    const report = await check(goodToml((toml) => replaced(toml, `id = "${GOOD_KV_ID}"`, `id = "${id}"`)));
    expect(report.problems).toEqual([expect.stringContaining(`KV namespace OAUTH_KV: id "${id}" is a placeholder`)]);
  });

  it('finds a missing OAUTH_KV binding', async () => {
    const report = await check(goodToml((toml) => replaced(toml, 'binding = "OAUTH_KV"', 'binding = "OTHER_KV"')));
    expect(report.problems).toEqual([expect.stringContaining('has no OAUTH_KV namespace')]);
  });

  it('finds a placeholder D1 database id', async () => {
    const d1 = '\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "db"\ndatabase_id = "00000000-0000-0000-0000-000000000000"\n';
    expect((await check(goodToml((toml) => toml + d1))).problems).toEqual([
      expect.stringContaining('D1 database DB: database_id "00000000-0000-0000-0000-000000000000" is a placeholder'),
    ]);
    const real = d1.replace('00000000-0000-0000-0000-000000000000', '3f2c9a1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b');
    expect((await check(goodToml((toml) => toml + real))).problems).toEqual([]);
  });

  it.each(['http://localhost:8787', 'https://127.0.0.1', 'https://[::1]:8443', 'https://192.168.1.10', 'https://10.0.0.5', 'https://mcp.localhost'])(
    'finds PUBLIC_URL on loopback or a private address: %s',
    async (url) => {
      const report = await check(goodToml(withVar('PUBLIC_URL', `"${url}"`)));
      expect(report.problems[0]).toContain(`PUBLIC_URL is ${url}, an address of this machine or a private network`);
    },
  );

  it('finds PUBLIC_URL over plain http, with a path, on a reserved example name, or missing', async () => {
    expect((await check(goodToml(withVar('PUBLIC_URL', '"http://mcp-remote-exec.team.workers.dev"')))).problems).toContain(
      'PUBLIC_URL must use https on Cloudflare, not "http://mcp-remote-exec.team.workers.dev"',
    );
    expect((await check(goodToml(withVar('PUBLIC_URL', `"${GOOD_URL}/mcp"`)))).problems).toEqual([
      expect.stringContaining('PUBLIC_URL must be an origin only'),
    ]);
    const example = await check(goodToml(withVar('PUBLIC_URL', '"https://mcp.example.com"')));
    expect(example.problems).toContain("PUBLIC_URL's host mcp.example.com is a name reserved for examples: set your own domain or workers.dev name");
    const missing = await check(goodToml((toml) => replaced(toml, /^PUBLIC_URL = .*\n/m, '')));
    expect(missing.problems[0]).toMatch(/^PUBLIC_URL is not set/);
  });

  it.each(REQUIRED_COMPATIBILITY_FLAGS)('finds the compatibility flag %s missing', async (flag) => {
    const report = await check(goodToml((toml) => replaced(toml, `"${flag}"`, '"nodejs_als"')));
    expect(report.problems).toEqual([`compatibility_flags lacks "${flag}", which the Worker needs (see the comment in wrangler.toml)`]);
  });

  it('finds ADMIN_PASSWORD_HASH not set, and one that is not a hash, without printing its value', async () => {
    const none = await check(goodToml(), secretsFile({ RELAY_TOKEN_HASH: 'a'.repeat(64) }));
    expect(none.problems).toEqual([expect.stringContaining('ADMIN_PASSWORD_HASH is not set, so nobody could sign in')]);
    const plain = await check(goodToml(), secretsFile({ ADMIN_PASSWORD_HASH: 'hunter2-the-password' }));
    expect(plain.problems).toEqual([expect.stringContaining('ADMIN_PASSWORD_HASH is not a password hash')]);
    expect(JSON.stringify(plain)).not.toContain('hunter2');
    const token = await check(goodToml(), secretsFile({ ADMIN_PASSWORD_HASH: ADMIN_HASH, RELAY_TOKEN_HASH: 'the-relay-token-itself' }));
    expect(token.problems).toEqual([expect.stringContaining('RELAY_TOKEN_HASH is not a hex SHA-256')]);
    expect(JSON.stringify(token)).not.toContain('the-relay-token-itself');
  });

  it('reads secret names from `wrangler secret list --format json` output', async () => {
    const listed = (names: string[]): SecretsInfo =>
      readSecretsFile(writeTemp('secrets.json', JSON.stringify(names.map((name) => ({ name, type: 'secret_text' })))));
    expect((await check(goodToml(), listed(['ADMIN_PASSWORD_HASH', 'RELAY_TOKEN_HASH']))).problems).toEqual([]);
    expect((await check(goodToml(), listed(['RELAY_TOKEN_HASH']))).problems).toEqual([expect.stringContaining('ADMIN_PASSWORD_HASH is not set')]);
  });

  it('says that secrets were not checked when it could not know them, and stops on nothing else', async () => {
    const report = await check(goodToml(), { known: false, reason: 'a dry run asks Cloudflare nothing' });
    expect(report.problems).toEqual([]);
    expect(report.notes).toEqual([expect.stringContaining('secrets were not checked (a dry run asks Cloudflare nothing)')]);
  });

  it('finds a secret put under [vars], and a test-only switch left on', async () => {
    const report = await check(goodToml(withVar('ADMIN_PASSWORD_HASH', `"${ADMIN_HASH}"`)));
    expect(report.problems).toEqual([expect.stringContaining('ADMIN_PASSWORD_HASH is in [vars], where it is plain text')]);
    const test = await check(goodToml(withVar('MCP_REMOTE_EXEC_TEST_TOOLS', '"true"')));
    expect(test.problems).toEqual(['[vars] MCP_REMOTE_EXEC_TEST_TOOLS is for tests only (it points the Worker at stand-ins or adds test tools): remove it']);
  });

  it("runs the Worker's own settings validation: a var it would refuse, a TOML number, a half-configured sign-in", async () => {
    expect((await check(goodToml(withVar('TIMEOUT', '"9999"')))).problems).toEqual([
      'the Worker would refuse its settings: TIMEOUT must be a whole number from 1 to 300 (wrangler.toml [vars] or .dev.vars), not "9999"',
    ]);
    expect((await check(goodToml(withVar('TIMEOUT', '30')))).problems[0]).toBe('[vars] TIMEOUT is 30, not a string: quote it (TIMEOUT = "30")');
    const oidc = goodToml((toml) => withVar('OIDC_ISSUER', '"https://login.team.dev"')(withVar('OIDC_CLIENT_ID', '"mre"')(toml)));
    expect((await check(oidc)).problems).toEqual([expect.stringContaining('OIDC_CLIENT_SECRET is not set, but OpenID Connect sign-in is on')]);
    expect((await check(oidc, secretsFile({ ADMIN_PASSWORD_HASH: ADMIN_HASH, OIDC_CLIENT_SECRET: 'x' }))).problems).toEqual([]);
    // Secrets not known: the provider's secret is assumed set, so only the vars are judged.
    expect((await check(oidc, { known: false, reason: 'offline' })).problems).toEqual([]);
  });

  it('wants PUBLIC_URL on a custom domain routed to this Worker, and every routed name allowed by the Host check', async () => {
    const custom = withVar('PUBLIC_URL', '"https://mcp.team.dev"');
    expect((await check(goodToml(custom))).problems).toEqual([
      `PUBLIC_URL's host mcp.team.dev is not routed to this Worker: add routes = [{ pattern = "mcp.team.dev", custom_domain = true }] to wrangler.toml (README "A custom domain")`,
    ]);
    const routed = topLevel('routes = [{ pattern = "mcp.team.dev", custom_domain = true }]');
    expect((await check(goodToml((toml) => routed(custom(toml))))).problems).toEqual([]);
    // A second routed name the Worker would refuse (403) until ALLOWED_HOSTNAMES lists it.
    const second = topLevel('routes = [{ pattern = "mcp.team.dev", custom_domain = true }, { pattern = "ssh.team.dev/*", zone_name = "team.dev" }]');
    expect((await check(goodToml((toml) => second(custom(toml))))).problems).toEqual([
      expect.stringContaining("route ssh.team.dev is neither PUBLIC_URL's host nor in ALLOWED_HOSTNAMES, so the Worker would answer 403 there"),
    ]);
    const allowed = withVar('ALLOWED_HOSTNAMES', '"ssh.team.dev"');
    expect((await check(goodToml((toml) => allowed(second(custom(toml)))))).problems).toEqual([]);
  });

  it("wants a workers.dev PUBLIC_URL to be this Worker's name there, with workers.dev on", async () => {
    const other = await check(goodToml(withVar('PUBLIC_URL', '"https://someone-else.team.workers.dev"')));
    expect(other.problems).toEqual([expect.stringContaining("PUBLIC_URL's host someone-else.team.workers.dev is not this Worker's workers.dev name")]);
    const off = await check(goodToml(topLevel('workers_dev = false')));
    expect(off.problems).toEqual([expect.stringContaining('sets workers_dev = false')]);
  });

  it('lists every problem at once', async () => {
    const report = await check(TEMPLATE.replace(/^main = .*$/m, `main = ${JSON.stringify(join(ROOT, 'worker', 'index.ts'))}`), secretsFile({}));
    expect(report.problems.map((problem) => problem.split(' ').slice(0, 2).join(' '))).toEqual(['KV namespace', 'PUBLIC_URL is', 'ADMIN_PASSWORD_HASH is']);
  });
});

describe('secrets file', () => {
  it('reads dotenv lines (comments, quotes, export) and keeps values only for the checks', () => {
    const info = readSecretsFile(writeTemp('a.env', `# secrets\nexport ADMIN_PASSWORD_HASH="${ADMIN_HASH}"\n\nRELAY_TOKEN_HASH='${'b'.repeat(64)}'\nEMPTY=\n`));
    expect(info.known && [...info.names]).toEqual(['ADMIN_PASSWORD_HASH', 'RELAY_TOKEN_HASH']);
    expect(info.known && info.values.get('ADMIN_PASSWORD_HASH')).toBe(ADMIN_HASH);
  });

  it('refuses a file that is neither dotenv nor the secret list, naming the line', () => {
    expect(() => readSecretsFile(writeTemp('b.env', 'ADMIN_PASSWORD_HASH=x\nthis is not a line\n'))).toThrow(/line 2: not a NAME=value line/);
    expect(() => readSecretsFile(writeTemp('c.json', '[{"nom": "x"}]'))).toThrow(DeployConfigError);
    expect(() => readSecretsFile(writeTemp('d.json', '[oops'))).toThrow(/not valid JSON/);
    expect(() => readSecretsFile(join(dir, 'no-such-file'))).toThrow(/could not read --secrets-from/);
  });
});
