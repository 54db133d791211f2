/**
 * The stdio mode serves both protocol eras from the same SDK v2 server code: a 2026-07-28 client
 * (SDK v2, pinned) runs a command and gets progress; both eras can be asked a question mid-call
 * (2025: elicitation on the connection; 2026-07-28: input_required and retry).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as Client2026 } from '@modelcontextprotocol/client';
import { StdioClientTransport as Stdio2026 } from '@modelcontextprotocol/client/stdio';
import { Client as Client2025 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as Stdio2025 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../shared/version.ts';
import { expectProgressLines, PROGRESS_LINES_COMMAND, type SeenProgress } from '../harness/progress-lines.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { CLI, stdioEnv } from '../harness/stdio.ts';

let sshd: TestSshd;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  for (const close of closers) await close().catch(() => undefined);
  await sshd?.stop();
});

function serverParams(): { command: string; args: string[]; env: Record<string, string>; cwd: string } {
  return {
    command: process.execPath,
    args: [CLI],
    env: stdioEnv(sshd, { MCP_REMOTE_EXEC_TEST_TOOLS: 'true' }),
    cwd: mkdtempSync(join(tmpdir(), 'mre-stdio-cwd-')),
  };
}

async function connect2026(): Promise<Client2026> {
  const client = new Client2026(
    { name: 'stdio-2026', version: VERSION },
    { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { elicitation: { form: {} } } },
  );
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: 'Grace' } }));
  await client.connect(new Stdio2026(serverParams()));
  closers.push(() => client.close());
  return client;
}

describe('stdio mode, 2026-07-28 client', () => {
  it('runs a command with progress carrying its latest output line (escaped, bounded), and asks its question as input_required', async () => {
    const client = await connect2026();
    const progress: SeenProgress[] = [];
    const ran = await client.callTool(
      { name: 'ssh_exec_command', arguments: { command: PROGRESS_LINES_COMMAND, timeout: 30 } },
      { onprogress: (event) => progress.push(event) },
    );
    expect(ran.structuredContent).toMatchObject({ stdout: expect.stringMatching(/^step 1\nstep 2 /), exit_code: 0 });
    // The latest output line, escaped and bounded, in the progress messages.
    expectProgressLines(progress);
    const asked = await client.callTool({ name: 'test_ask_name', arguments: {} });
    expect(asked.structuredContent).toEqual({ name: 'Grace', era: 'modern' });
  });
});

describe('stdio mode, 2025-era client', () => {
  it('asks its question as an elicitation on the connection', async () => {
    const client = new Client2025({ name: 'stdio-2025', version: VERSION }, { capabilities: { elicitation: { form: {} } } });
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Lin' } }));
    await client.connect(new Stdio2025(serverParams()));
    closers.push(() => client.close());
    const asked = await client.callTool({ name: 'test_ask_name', arguments: {} });
    expect(asked.structuredContent).toEqual({ name: 'Lin', era: 'legacy' });
  });
});
