/**
 * The MCP conformance suite's server scenarios, run against both ways this product speaks MCP, once
 * per protocol revision the suite has scenarios for:
 * - the local Worker (wrangler dev, real relay), through a loopback proxy that adds the bearer token
 *   the harness got by signing in through OAuth (the suite cannot sign in itself);
 * - the stdio mode (the built command), through a bridge that serves it over Streamable HTTP, one
 *   child per session (the suite speaks only HTTP).
 * The suite's client always offers its SDK's newest revision; the proxy and the bridge pin the
 * offer to the revision under test, and each run first proves the pin took.
 *
 * A run passes when exactly the scenarios in test/conformance/expected-failures.yml fail: a new
 * failure fails it, and so does a listed scenario that now passes (the list cannot go stale).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startBearerProxy } from '../harness/bearer-proxy.ts';
import { readBaseline, runServerSuite, serverScenarios, SPEC_VERSIONS, type SpecVersion, type SuiteRun } from '../harness/conformance.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { startStack, type Stack } from '../harness/stack.ts';
import { stdioEnv } from '../harness/stdio.ts';
import { startStdioHttpBridge } from '../harness/stdio-http-bridge.ts';
import { PROJECT_ROOT } from '../harness/worker.ts';

const BASELINE_PATH = join(PROJECT_ROOT, 'test', 'conformance', 'expected-failures.yml');
const baseline = readBaseline(BASELINE_PATH);
const SUITE_TIMEOUT_MS = 240_000;

/** The revision a server negotiated with an SDK client that connects to `mcpUrl`. */
async function negotiatedVersion(mcpUrl: string): Promise<string | undefined> {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl));
  const client = new Client({ name: 'conformance-pin-check', version: '1' });
  await client.connect(transport);
  try {
    return transport.protocolVersion;
  } finally {
    await client.close();
  }
}

/** Exactly the listed scenarios (those the suite has for this revision) fail; all others pass. */
function expectOnlyBaselineFailures(run: SuiteRun): void {
  const report = run.results.map((result) => `${result.passed ? 'pass' : 'FAIL'} ${result.scenario} ${result.problems.join('; ')}`).join('\n');
  // Every scenario the suite has for the revision ran and wrote its checks.
  expect(run.results.map((result) => result.scenario).sort(), `scenarios that produced results\n${run.output.slice(-4000)}`).toEqual([...run.expected].sort());
  const failing = run.results
    .filter((result) => !result.passed)
    .map((result) => result.scenario)
    .sort();
  const listed = baseline.filter((scenario) => run.expected.includes(scenario)).sort();
  expect(failing, `failing scenarios vs expected-failures.yml (${run.version}):\n${report}`).toEqual(listed);
  // The suite's own baseline check agrees (it exits non-zero on a new failure or a stale entry).
  expect(run.exitCode, run.output.slice(-4000)).toBe(0);
}

describe('conformance: the expected-failures list', () => {
  test('names only scenarios the suite has, each once, and each in the README table with a reason', async () => {
    const known = new Set((await Promise.all(SPEC_VERSIONS.map((version) => serverScenarios(version)))).flat());
    expect(baseline.filter((scenario) => !known.has(scenario))).toEqual([]);
    expect(new Set(baseline).size).toBe(baseline.length);
    const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
    // A table row per scenario: | `name` | why |
    const undocumented = baseline.filter((scenario) => !new RegExp(`^\\| \`${scenario}\` \\| \\S.*\\|$`, 'm').test(readme));
    expect(undocumented).toEqual([]);
  });
});

describe('conformance: the local Worker (OAuth token through a loopback proxy)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  });

  afterAll(async () => {
    await stack?.stop();
  });

  const accessToken = (): string => stack.mcp.accessToken();

  test.each(SPEC_VERSIONS.map((version) => [version]))(
    'protocol %s: every scenario passes except the expected failures',
    async (version: SpecVersion) => {
      const proxy = await startBearerProxy(stack.worker.mcpUrl, accessToken, { protocolVersion: version });
      try {
        expect(await negotiatedVersion(proxy.mcpUrl)).toBe(version);
        expectOnlyBaselineFailures(await runServerSuite(proxy.mcpUrl, version, BASELINE_PATH, SUITE_TIMEOUT_MS));
      } finally {
        await proxy.stop();
      }
    },
    SUITE_TIMEOUT_MS + 30_000,
  );
});

describe('conformance: the stdio mode (through a Streamable HTTP bridge)', () => {
  let sshd: TestSshd;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  test.each(SPEC_VERSIONS.map((version) => [version]))(
    'protocol %s: every scenario passes except the expected failures',
    async (version: SpecVersion) => {
      const bridge = await startStdioHttpBridge(stdioEnv(sshd), { protocolVersion: version });
      try {
        expect(await negotiatedVersion(bridge.mcpUrl)).toBe(version);
        expectOnlyBaselineFailures(await runServerSuite(bridge.mcpUrl, version, BASELINE_PATH, SUITE_TIMEOUT_MS));
      } catch (error) {
        throw new Error(`${error instanceof Error ? error.message : String(error)}\nstdio stderr:\n${bridge.stderr().slice(-4000)}`, { cause: error });
      } finally {
        await bridge.stop();
      }
    },
    SUITE_TIMEOUT_MS + 30_000,
  );
});
