/**
 * ssh_check_command in the stdio mode: the class, programs and reasons of a command from the
 * relay's own classifier, no decision (stdio has no team policy, and says so), and nothing run.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { connectStdio, stdioEnv, type StdioSession } from '../harness/stdio.ts';

let sshd: TestSshd;
let session: StdioSession;

beforeAll(async () => {
  sshd = await startSshd();
  session = await connectStdio(stdioEnv(sshd));
});

afterAll(async () => {
  await session?.close();
  await sshd?.stop();
});

describe('ssh_check_command over stdio', () => {
  it('gives the class only, says there is no policy here, and runs nothing', async () => {
    const marker = join(sshd.home, `stdio-check-${process.pid}`);
    const result = CallToolResultSchema.parse(
      await session.client.callTool({ name: 'ssh_check_command', arguments: { command: `df -h; touch ${marker}` } }, CallToolResultSchema),
    );
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ class: 'mutating', programs: ['df', 'touch'], decision: null });
    expect(textOf(result)).toContain('stdio mode has no team policy');
    expect(textOf(result)).toContain('Nothing was run.');
    expect(existsSync(marker)).toBe(false);
  });

  it('classifies a command as sudo: true would run it', async () => {
    const result = CallToolResultSchema.parse(
      await session.client.callTool({ name: 'ssh_check_command', arguments: { command: 'df -h', sudo: true } }, CallToolResultSchema),
    );
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ class: 'privileged', decision: null });
  });
});
