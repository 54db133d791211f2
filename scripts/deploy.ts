/**
 * `npm run deploy`: check, then `wrangler deploy`. The checks (scripts/deploy-check.ts) stop the
 * deploy with the full list of what is wrong; only a clean check deploys. Telemetry is off, as in
 * `npm start`.
 *
 *   npm run deploy [-- --config wrangler.toml] [--secrets-from FILE] [--dry-run [--outdir DIR]]
 *
 * --secrets-from FILE  check the secrets named in FILE (dotenv NAME=value lines, or the JSON that
 *                      `wrangler secret list --format json` prints) instead of asking Cloudflare.
 * --dry-run            check, then `wrangler deploy --dry-run` (bundles, uploads nothing; works
 *                      offline). Without --secrets-from the secrets are not checked, and it says so.
 * --outdir DIR         keep the dry run's bundle in DIR (default: a temp dir, removed afterwards).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkDeployment } from './deploy-check.ts';
import { DeployConfigError, deployedSecretNames, QUIET_WRANGLER_ENV, readDeployConfig, readSecretsFile, WRANGLER, type SecretsInfo } from './deploy-config.ts';

const ROOT = resolve(import.meta.dirname, '..');

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let options;
  try {
    options = parseArgs({
      options: {
        config: { type: 'string', default: join(ROOT, 'wrangler.toml') },
        'secrets-from': { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        outdir: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    fail(
      `${error instanceof Error ? error.message : String(error)}\nUsage: npm run deploy [-- --config FILE] [--secrets-from FILE] [--dry-run [--outdir DIR]]`,
    );
  }
  const configPath = resolve(options.config);
  const dryRun = options['dry-run'];
  if (options.outdir !== undefined && !dryRun) fail('--outdir is for --dry-run only');

  let secrets: SecretsInfo;
  const secretsFrom = options['secrets-from'];
  try {
    const config = await readDeployConfig(configPath);
    if (secretsFrom !== undefined) secrets = readSecretsFile(resolve(secretsFrom));
    else if (dryRun) secrets = { known: false, reason: 'a dry run asks Cloudflare nothing; pass --secrets-from FILE to check them' };
    else secrets = deployedSecretNames(configPath);
    const report = await checkDeployment(config, secrets, configPath);
    // Outside a dry run, secrets that could not be read stop the deploy: a Worker nobody can sign in to is wrong.
    if (!dryRun && !secrets.known)
      report.problems.push(`could not check the Worker's secrets: ${secrets.reason} (log in with \`npx wrangler login\`, or pass --secrets-from FILE)`);
    process.stdout.write(`Deploy check of ${configPath}:\n`);
    for (const note of report.notes) process.stdout.write(`  note: ${note}\n`);
    if (report.problems.length > 0) {
      process.stdout.write(report.problems.map((problem) => `  ✗ ${problem}\n`).join(''));
      fail(
        `\n${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}: nothing was deployed. Fix ${report.problems.length === 1 ? 'it' : 'them'} and run npm run deploy again.`,
        1,
      );
    }
    process.stdout.write('  ✓ no problems found\n\n');
  } catch (error) {
    if (error instanceof DeployConfigError) fail(error.message);
    throw error;
  }

  const outdir = dryRun ? (options.outdir ?? mkdtempSync(join(tmpdir(), 'mre-deploy-dry-run-'))) : undefined;
  const args = [WRANGLER, 'deploy', '--config', configPath, ...(outdir ? ['--dry-run', '--outdir', outdir] : [])];
  // The banner asks the npm registry for wrangler's latest version: a dry run stays offline without it.
  const env = { ...process.env, ...QUIET_WRANGLER_ENV, ...(dryRun ? { WRANGLER_HIDE_BANNER: 'true' } : {}) };
  const result = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit', env });
  if (outdir !== undefined && options.outdir === undefined) rmSync(outdir, { recursive: true, force: true });
  process.exit(result.status ?? 1);
}

await main();
