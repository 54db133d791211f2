/**
 * `npm run deploy` as the admin runs it, on temp configs, as a dry run (which asks Cloudflare
 * nothing): a deployable config passes the checks and is bundled by wrangler; a config with the
 * local defaults and no admin password hash is stopped with the full list, before wrangler runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../worker/auth/password-hash.ts';
import { offlineWranglerEnv, PROJECT_ROOT } from '../harness/worker.ts';

const dir = mkdtempSync(join(tmpdir(), 'mre-deploy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The project's wrangler.toml with its entry point made absolute, so it can live in a temp dir. */
const template = readFileSync(join(PROJECT_ROOT, 'wrangler.toml'), 'utf8').replace(
  /^main = .*$/m,
  `main = ${JSON.stringify(join(PROJECT_ROOT, 'worker', 'index.ts'))}`,
);

/** Deployable: a real-looking KV namespace id and a workers.dev PUBLIC_URL. */
const deployable = template
  .replace('PUBLIC_URL = "http://127.0.0.1:8787"', 'PUBLIC_URL = "https://mcp-remote-exec.team.workers.dev"')
  .replace('id = "00000000000000000000000000000000"', 'id = "0123456789abcdef0123456789abcdef"');

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function deploy(args: string[]): { status: number | null; output: string } {
  const result = spawnSync('npm', ['run', '-s', 'deploy', '--', ...args], {
    cwd: PROJECT_ROOT,
    // The banner's update check is the only thing wrangler would fetch in a dry run.
    env: offlineWranglerEnv(),
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('npm run deploy -- --dry-run', () => {
  it('checks a deployable config, then bundles it with wrangler', async () => {
    const config = write('good.toml', deployable);
    const secrets = write('good.env', `ADMIN_PASSWORD_HASH=${await hashPassword('a long admin password', 10_000)}\n`);
    const outdir = join(dir, 'good-out');
    const { status, output } = deploy(['--dry-run', '--config', config, '--secrets-from', secrets, '--outdir', outdir]);
    expect(status, output).toBe(0);
    expect(output).toContain('✓ no problems found');
    expect(output).toContain(`note: secrets checked from ${secrets}`);
    // wrangler ran on the same file: the KV id and PUBLIC_URL are the temp config's.
    expect(output).toContain('env.OAUTH_KV (0123456789abcdef0123456789abcdef)');
    expect(output).toContain('--dry-run: exiting now.');
    expect(readdirSync(outdir)).toContain('index.js');
  });

  it('stops a config with the local defaults and no admin password hash, listing every problem, before wrangler runs', () => {
    const config = write('bad.toml', template);
    const secrets = write('bad.env', 'RELAY_TOKEN_HASH=' + 'a'.repeat(64) + '\n');
    const outdir = join(dir, 'bad-out');
    const { status, output } = deploy(['--dry-run', '--config', config, '--secrets-from', secrets, '--outdir', outdir]);
    expect(status, output).toBe(1);
    const problems = output.split('\n').filter((line) => line.startsWith('  ✗ '));
    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain('KV namespace OAUTH_KV: id "00000000000000000000000000000000" is a placeholder');
    expect(problems[1]).toContain('PUBLIC_URL is http://127.0.0.1:8787, an address of this machine');
    expect(problems[2]).toContain('ADMIN_PASSWORD_HASH is not set, so nobody could sign in');
    expect(output).toContain('3 problems: nothing was deployed.');
    expect(output).not.toContain('--dry-run: exiting now.');
    expect(existsSync(outdir)).toBe(false);
  });

  it('says the secrets were not checked when a dry run is given no --secrets-from, and goes on', () => {
    const { status, output } = deploy(['--dry-run', '--config', write('unchecked.toml', deployable)]);
    expect(status, output).toBe(0);
    expect(output).toContain('note: secrets were not checked (a dry run asks Cloudflare nothing; pass --secrets-from FILE to check them)');
    expect(output).toContain('--dry-run: exiting now.');
  });

  it('refuses an unknown option with the usage, and deploys nothing', () => {
    const { status, output } = deploy(['--dry-rnu']);
    expect(status, output).toBe(2);
    expect(output).toContain('Usage: npm run deploy');
  });
});
