/**
 * Smoke test for bench/peers.ts: start the loopback sshd, install/prepare the peer MCP servers,
 * and for each one connect the official SDK client over stdio, list its tools, run
 * `echo peer-ok` through its exec tool (printing the text it returns), then time sequential
 * `true` calls.
 *
 * Run: PATH=/work/main/node_modules/.bin:$PATH node bench/peers-smoke.ts   (root, like the e2e tests)
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startSshd } from '../test/harness/sshd.ts';
import type { TestSshd } from '../test/harness/sshd.ts';
import { preparePeers } from './peers.ts';
import type { PeerServer } from './peers.ts';
import { row, summarize, timeSequential } from './stats.ts';

const CALLS = Number(process.env.CALLS ?? 30);
const STDERR_KEEP = 8 * 1024;

interface ToolCallOutcome {
  text: string;
  isError: boolean;
}

function outcome(result: unknown): ToolCallOutcome {
  if (typeof result !== 'object' || result === null) return { text: String(result), isError: true };
  const isError = 'isError' in result && result.isError === true;
  const parts: string[] = [];
  if ('content' in result && Array.isArray(result.content)) {
    for (const item of result.content as unknown[]) {
      if (typeof item === 'object' && item !== null && 'text' in item && typeof item.text === 'string') {
        parts.push(item.text);
      }
    }
  }
  return { text: parts.join('\n'), isError };
}

async function smoke(peer: PeerServer): Promise<void> {
  console.log(`\n=== ${peer.name}@${peer.version}: ${peer.command} ${peer.args.join(' ')}`);
  const transport = new StdioClientTransport({ command: peer.command, args: peer.args, env: peer.env, stderr: 'pipe' });
  // Keep only the tail of the peer's stderr (both log every call there) for failure reports.
  let stderrTail = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_KEEP);
  });
  const client = new Client({ name: 'peers-smoke', version: '0.0.0' });
  try {
    await client.connect(transport);
    const server = client.getServerVersion();
    const { tools } = await client.listTools();
    console.log(`server ${server?.name ?? '?'} ${server?.version ?? '?'}; ${tools.length} tools`);
    if (!tools.some((tool) => tool.name === peer.execTool)) {
      throw new Error(`${peer.name} has no tool ${peer.execTool}; it has: ${tools.map((tool) => tool.name).join(', ')}`);
    }

    const echo = outcome(await client.callTool({ name: peer.execTool, arguments: peer.execArgs('echo peer-ok') }));
    console.log(`${peer.execTool}(echo peer-ok) -> isError=${echo.isError}\n${echo.text}`);
    if (echo.isError || !echo.text.includes('peer-ok')) throw new Error(`${peer.name}: echo peer-ok did not come back`);

    const samples = await timeSequential(CALLS, async () => {
      const result = outcome(await client.callTool({ name: peer.execTool, arguments: peer.execArgs('true') }));
      if (result.isError) throw new Error(`${peer.name}: true failed: ${result.text}`);
    });
    console.log(row(`${peer.name} ${peer.execTool}("true"), sequential`, summarize(samples)));
  } catch (error) {
    console.error(`--- ${peer.name} stderr (tail) ---\n${stderrTail}`);
    throw error;
  } finally {
    await client.close();
  }
}

let sshd: TestSshd | undefined;
let failed = false;
try {
  sshd = await startSshd();
  console.log(`sshd on 127.0.0.1:${sshd.port} (user ${sshd.user})`);
  const peers = await preparePeers(sshd);
  for (const peer of peers) {
    try {
      await smoke(peer);
    } catch (error) {
      failed = true;
      console.error(`${peer.name}: FAILED: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
} finally {
  await sshd?.stop();
}
if (failed) process.exitCode = 1;
