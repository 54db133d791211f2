/**
 * `npm test`: check the formatting (Prettier) and type-check, then the fast tests (unit + Workers pool), then the end-to-end tests
 * (real sshd, wrangler dev, relay) once with a 2025-era MCP client (SDK v1) and once more with a
 * 2026-07-28 client (SDK v2; the files that never touch /mcp are not repeated), then the
 * fault-injection tests, each in their own run so they do not compete for the CPU. Ends with
 * one summary line, "tests: N passed, N failed", and a non-zero exit if anything failed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const vitest = join(dirname(require.resolve('vitest/package.json')), 'vitest.mjs');
const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const reports = mkdtempSync(join(tmpdir(), 'mre-test-reports-'));
const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };

function run(label: string, args: string[], extraEnv: Record<string, string> = {}): number {
  process.stdout.write(`\n=== ${label}\n`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...env, ...extraEnv } });
  return result.status ?? 1;
}

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

function counts(file: string): Counts {
  try {
    const report: unknown = JSON.parse(readFileSync(file, 'utf8'));
    const number = (key: string): number =>
      typeof report === 'object' && report !== null && key in report && typeof (report as Record<string, unknown>)[key] === 'number'
        ? ((report as Record<string, number>)[key] ?? 0)
        : 0;
    return {
      passed: number('numPassedTests'),
      failed: number('numFailedTests') + number('numRuntimeErrorTestSuites'),
      skipped: number('numPendingTests') + number('numTodoTests'),
    };
  } catch {
    return { passed: 0, failed: 1, skipped: 0 };
  }
}

const failures: string[] = [];
const only = process.argv.slice(2);

const prettier = join(dirname(require.resolve('prettier/package.json')), 'bin', 'prettier.cjs');
if (run('format check (prettier; `npm run format` fixes it)', [prettier, '--check', '.', '--log-level', 'warn']) !== 0) failures.push('format check');
for (const project of ['tsconfig.json', 'worker/tsconfig.json', 'test/workers/tsconfig.json']) {
  if (run(`type-check ${project}`, [tsc, '-p', project]) !== 0) failures.push(`type-check ${project}`);
}
// End-to-end files that never reach /mcp (stdio mode, fixtures, bundling): one run is enough.
const ERA_NEUTRAL_E2E = [
  'test/e2e/stdio*.test.ts',
  'test/e2e/sshd-harness.test.ts',
  'test/e2e/deploy-bundle.test.ts',
  'test/e2e/deploy-check.test.ts',
  'test/e2e/fake-proxmox.test.ts',
  'test/e2e/imagekit-stand-in.test.ts',
  'test/e2e/relay-jobs.test.ts',
  'test/e2e/relay-agent.test.ts',
  'test/e2e/ssh-certificate.test.ts',
  'test/e2e/guest-jobs.test.ts',
  'test/e2e/classifier-bundle.test.ts',
];
// mcp-eras.test.ts drives both eras itself; task-calls.test.ts needs the SDK v1 client's task support; task-calls-modern.test.ts speaks 2026-07-28 itself;
// mcp-remote.test.ts is Claude Desktop through the mcp-remote proxy, which picks the era itself (--protocol legacy and auto, both tested);
// packaged-relay.test.ts (packs and installs the package) and host-key-first-start.test.ts test the relay, not the era of the client that drives it.
const ONCE_ONLY_E2E = [
  ...ERA_NEUTRAL_E2E,
  'test/e2e/mcp-eras.test.ts',
  'test/e2e/task-calls.test.ts',
  'test/e2e/task-calls-modern.test.ts',
  'test/e2e/mcp-remote.test.ts',
  'test/e2e/packaged-relay.test.ts',
  'test/e2e/host-key-first-start.test.ts',
];
const suites: Array<{ name: string; projects: string[]; env?: Record<string, string>; args?: string[] }> = [
  { name: 'unit + workers', projects: ['unit', 'workers'] },
  { name: 'e2e, 2025-11-25 client', projects: ['e2e'], env: { MCP_CLIENT_ERA: '2025-11-25' } },
  { name: 'e2e, 2026-07-28 client', projects: ['e2e'], env: { MCP_CLIENT_ERA: '2026-07-28' }, args: ONCE_ONLY_E2E.flatMap((glob) => ['--exclude', glob]) },
  { name: 'faults', projects: ['faults'] },
];
const total: Counts = { passed: 0, failed: 0, skipped: 0 };
for (const suite of suites) {
  if (only.length > 0 && !suite.projects.some((project) => only.includes(project))) continue;
  const report = join(reports, `${suite.name.replace(/\W+/g, '-')}.json`);
  const code = run(
    `vitest: ${suite.name}`,
    [
      vitest,
      'run',
      ...suite.projects.flatMap((project) => ['--project', project]),
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
      ...(suite.args ?? []),
    ],
    suite.env,
  );
  const found = counts(report);
  total.passed += found.passed;
  total.failed += found.failed;
  total.skipped += found.skipped;
  if (code !== 0) failures.push(`vitest ${suite.name} (exit ${code})`);
}
rmSync(reports, { recursive: true, force: true });
if (failures.length > 0) process.stdout.write(`\nFailed: ${failures.join('; ')}\n`);
process.stdout.write(`\ntests: ${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}\n`);
process.exit(failures.length > 0 ? 1 : 0);
