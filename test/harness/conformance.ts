/**
 * The MCP conformance suite (@modelcontextprotocol/conformance, pinned in package.json) run as its
 * CLI: `conformance server --url … --spec-version … -o <dir>`, one run per protocol revision. The
 * results are read from the per-scenario `checks.json` files it writes, not from its console text.
 * It needs no network beyond the URL it is given (its GitHub client is for other commands).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';

const require = createRequire(import.meta.url);
/** The package's exports hide dist/; resolve the bin next to package.json. */
const CLI = join(dirname(require.resolve('@modelcontextprotocol/conformance/package.json')), 'dist', 'index.js');

/** The server revisions the suite has scenarios for (its `list` tags), oldest first. */
export const SPEC_VERSIONS = ['2025-06-18', '2025-11-25'] as const;
export type SpecVersion = (typeof SPEC_VERSIONS)[number];

const CheckSchema = z.object({
  id: z.string(),
  status: z.enum(['SUCCESS', 'FAILURE', 'WARNING', 'SKIPPED', 'INFO']),
  errorMessage: z.string().optional(),
});
const ChecksSchema = z.array(CheckSchema);

export interface ScenarioResult {
  scenario: string;
  /** As the suite counts it: any FAILURE or WARNING check fails the scenario. */
  passed: boolean;
  /** The failing checks' ids and messages, for the assertion message. */
  problems: string[];
}

export interface SuiteRun {
  version: SpecVersion;
  /** The scenarios the suite has for this revision (from `conformance list`). */
  expected: string[];
  results: ScenarioResult[];
  exitCode: number | null;
  output: string;
}

function runCli(args: string[], timeoutMs: number): Promise<{ exitCode: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } },
      (error, stdout, stderr) => {
        const exitCode = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ exitCode, output: `${stdout}\n${stderr}` });
      },
    );
  });
}

/** Server scenario names tagged with `version`, from `conformance list --server`. */
export async function serverScenarios(version: SpecVersion): Promise<string[]> {
  const { exitCode, output } = await runCli(['list', '--server'], 30_000);
  if (exitCode !== 0) throw new Error(`conformance list failed (${String(exitCode)}):\n${output}`);
  const names: string[] = [];
  for (const line of output.split('\n')) {
    const match = /^\s+- (\S+) \[([^\]]*)\]\s*$/.exec(line);
    if (match?.[1] && match[2]?.split(',').includes(version)) names.push(match[1]);
  }
  if (names.length === 0) throw new Error(`conformance list named no server scenario for ${version}:\n${output}`);
  return names;
}

/** The scenario a result directory is for: `server-<scenario>-<ISO time with - for : and .>`. */
function scenarioOfDir(name: string): string | undefined {
  return /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/.exec(name)?.[1];
}

function readResults(dir: string): ScenarioResult[] {
  const results: ScenarioResult[] = [];
  for (const entry of readdirSync(dir)) {
    const scenario = scenarioOfDir(entry);
    if (!scenario) throw new Error(`unexpected entry in the conformance output: ${entry}`);
    const parsed = ChecksSchema.safeParse(JSON.parse(readFileSync(join(dir, entry, 'checks.json'), 'utf8')));
    if (!parsed.success) throw new Error(`checks.json of ${scenario} is not in the expected format: ${parsed.error.message}`);
    const bad = parsed.data.filter((check) => check.status === 'FAILURE' || check.status === 'WARNING');
    results.push({ scenario, passed: bad.length === 0, problems: bad.map((check) => `${check.id} ${check.status}: ${check.errorMessage ?? ''}`) });
  }
  return results.sort((a, b) => a.scenario.localeCompare(b.scenario));
}

/**
 * Run every server scenario the suite has for `version` against `url`. With a baseline file, the
 * CLI's exit code is its own verdict on it: non-zero on a failure not listed or a listed scenario
 * that passed.
 */
export async function runServerSuite(url: string, version: SpecVersion, baselinePath: string, timeoutMs: number): Promise<SuiteRun> {
  const expected = await serverScenarios(version);
  const dir = mkdtempSync(join(tmpdir(), 'mre-conformance-'));
  try {
    const { exitCode, output } = await runCli(
      ['server', '--url', url, '--suite', 'all', '--spec-version', version, '--expected-failures', baselinePath, '-o', dir],
      timeoutMs,
    );
    return { version, expected, results: readResults(dir), exitCode, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `server:` list of an expected-failures file (the suite's own baseline format). */
export function readBaseline(path: string): string[] {
  const names: string[] = [];
  let inServer = false;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (/^\s*(#.*)?$/.test(line)) continue;
    if (/^server:\s*$/.test(line)) {
      inServer = true;
      continue;
    }
    const item = /^\s+-\s+([a-z0-9-]+)\s*(#.*)?$/.exec(line);
    if (inServer && item?.[1]) names.push(item[1]);
    else throw new Error(`${path}: only a "server:" list of scenario names is expected, got: ${line}`);
  }
  return names;
}
