/**
 * The stdio mode's own confirmation (relay config `confirm`, `confirm_fallback`): the built command
 * over stdio, a real sshd, and the SDK v1 client answering the elicitation as a person would (and
 * the SDK v2 client, pinned to 2026-07-28, answering the input_required question on its retry).
 * Commands of a listed class wait for the user's yes (the question shows the host, the exact
 * command with control characters made visible, and the class); a no runs nothing; a class not
 * listed, or a host whose own list is empty, is not asked; `privileged` covers `unknown`; and a
 * client that cannot be asked is refused (or, with confirm_fallback "run", runs).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as Client2026 } from '@modelcontextprotocol/client';
import { StdioClientTransport as Stdio2026 } from '@modelcontextprotocol/client/stdio';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { VERSION } from '../../shared/version.ts';
import { CLI, connectStdio, rawStdioExchange, stdioEnv, type StdioSession } from '../harness/stdio.ts';

let sshd: TestSshd;
const sessions: StdioSession[] = [];
const RUN = `${process.pid}-${Date.now() % 100_000}`;
/** Every question the answering client was asked, and what it answers next. */
const asked: string[] = [];
let nextAnswer: 'accept' | 'decline' = 'accept';

function configFile(fallback: 'refuse' | 'run' | null): string {
  const path = join(mkdtempSync(join(tmpdir(), 'mre-confirm-')), 'relay.config.json');
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath };
  writeFileSync(
    path,
    JSON.stringify({
      known_hosts: [sshd.knownHostsPath],
      confirm: ['mutating', 'privileged'],
      ...(fallback ? { confirm_fallback: fallback } : {}),
      hosts: [
        { name: 'guarded', ...base },
        { name: 'open', ...base, confirm: [] },
      ],
    }),
  );
  return path;
}

async function open(fallback: 'refuse' | 'run' | null, answering: boolean): Promise<StdioSession> {
  const session = await connectStdio(
    stdioEnv(sshd, { HOST: '' }),
    ['--config', configFile(fallback)],
    answering
      ? (message) => {
          asked.push(message);
          return nextAnswer === 'accept' ? { confirm: true } : 'decline';
        }
      : undefined,
  );
  sessions.push(session);
  return session;
}

async function call(session: StdioSession, name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean }> {
  const result = CallToolResultSchema.parse(await session.client.callTool({ name, arguments: args }, CallToolResultSchema));
  return { text: textOf(result), isError: Boolean(result.isError) };
}

function marker(name: string): string {
  return join(sshd.home, `confirm-${name}-${RUN}`);
}

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await sshd?.stop();
});

describe('stdio own confirmation', () => {
  it('asks before a mutating command and runs it on yes, naming the host, the command and its class', async () => {
    const session = await open(null, true);
    const file = marker('yes');
    nextAnswer = 'accept';
    const before = asked.length;
    const ran = await call(session, 'ssh_exec_command', { host: 'guarded', command: `touch ${file}` });
    expect(ran.isError, ran.text).toBe(false);
    expect(asked.length).toBe(before + 1);
    expect(asked.at(-1)).toContain(`touch ${file}`);
    expect(asked.at(-1)).toContain('mutating');
    expect(asked.at(-1)).toContain('guarded');
    expect(existsSync(file)).toBe(true);
  });

  it('runs nothing when the user declines, for commands and for background jobs', async () => {
    const session = await open(null, true);
    nextAnswer = 'decline';
    const file = marker('no');
    const refused = await call(session, 'ssh_exec_command', { host: 'guarded', command: `touch ${file}` });
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain('approval_refused');
    expect(refused.text).toContain('declined');
    const job = await call(session, 'ssh_start_job', { host: 'guarded', command: `touch ${file}-job` });
    expect(job.isError).toBe(true);
    expect(job.text).toContain('declined');
    // Give a job that did start (it must not have) time to run.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(existsSync(file)).toBe(false);
    expect(existsSync(`${file}-job`)).toBe(false);
  });

  it('does not ask for a class that is not listed, nor on a host whose own list is empty; privileged covers unknown, shown with control characters made visible', async () => {
    const session = await open(null, true);
    nextAnswer = 'decline';
    const before = asked.length;
    const read = await call(session, 'ssh_exec_command', { host: 'guarded', command: 'df -h' });
    expect(read.isError, read.text).toBe(false);
    const file = marker('open');
    const elsewhere = await call(session, 'ssh_exec_command', { host: 'open', command: `touch ${file}` });
    expect(elsewhere.isError, elsewhere.text).toBe(false);
    expect(existsSync(file)).toBe(true);
    expect(asked.length).toBe(before);
    // `$a x` cannot be classified with certainty: unknown, which the listed privileged covers.
    const hidden = marker('unknown');
    const unknown = await call(session, 'ssh_exec_command', { host: 'guarded', command: `a=touch; $a ${hidden} # \u001b[31mred` });
    expect(unknown.isError).toBe(true);
    expect(asked.length).toBe(before + 1);
    expect(asked.at(-1)).toContain('unknown');
    expect(asked.at(-1)).toContain(`a=touch; $a ${hidden} # \\x1b[31mred`);
    expect(asked.at(-1)).not.toContain('\u001b');
    expect(existsSync(hidden)).toBe(false);
  });

  it('asks a 2026-07-28 client by input_required and runs on its yes; its no runs nothing', async () => {
    const client = new Client2026(
      { name: 'stdio-confirm-2026', version: VERSION },
      { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { elicitation: { form: {} } } },
    );
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push('message' in request.params ? request.params.message : '');
      return nextAnswer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
    });
    await client.connect(
      new Stdio2026({
        command: process.execPath,
        args: [CLI, '--config', configFile(null)],
        env: stdioEnv(sshd, { HOST: '' }),
        cwd: mkdtempSync(join(tmpdir(), 'mre-stdio-cwd-')),
      }),
    );
    sessions.push({ close: () => client.close() } as StdioSession);
    const before = asked.length;
    nextAnswer = 'accept';
    const file = marker('modern-yes');
    const ran = await client.callTool({ name: 'ssh_exec_command', arguments: { host: 'guarded', command: `touch ${file}` } });
    expect(ran.isError, JSON.stringify(ran.content)).toBeFalsy();
    expect(asked.length).toBe(before + 1);
    expect(asked.at(-1)).toContain(`touch ${file}`);
    expect(existsSync(file)).toBe(true);
    nextAnswer = 'decline';
    const declined = marker('modern-no');
    const refused = await client.callTool({ name: 'ssh_start_job', arguments: { host: 'guarded', command: `touch ${declined}` } });
    expect(refused.isError).toBe(true);
    expect(JSON.stringify(refused.content)).toContain('declined');
    expect(asked.length).toBe(before + 2);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(existsSync(declined)).toBe(false);
  });

  it('takes no yes from a 2026-07-28 request that was not asked the question', async () => {
    const file = marker('modern-unasked');
    const envelope = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'raw-2026', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
    };
    const yes = { confirm: { action: 'accept', content: { confirm: true } } };
    // One request per server process: an exchange ends with its last request's answer.
    for (const retry of [{ inputResponses: yes }, { inputResponses: yes, requestState: `mac:${'0'.repeat(32)}.${Date.now()}.${'0'.repeat(64)}` }]) {
      const exchange = await rawStdioExchange(stdioEnv(sshd, { CONFIRM_CLASSES: 'mutating' }), [
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'ssh_exec_command', arguments: { command: `touch ${file}` }, ...retry, _meta: envelope },
        },
      ]);
      const answer = exchange.stdout.map((line) => JSON.parse(line) as { id?: number; result?: Record<string, unknown> }).find((line) => line.id === 1);
      expect(answer?.result, exchange.stdout.join('\n')).toMatchObject({ resultType: 'input_required' });
    }
    expect(existsSync(file)).toBe(false);
  });

  it('refuses when the client cannot be asked, and runs with confirm_fallback "run"', async () => {
    const strict = await open(null, false);
    const file = marker('fallback');
    const refused = await call(strict, 'ssh_exec_command', { host: 'guarded', command: `touch ${file}` });
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain('cannot be asked');
    expect(existsSync(file)).toBe(false);
    const lenient = await open('run', false);
    const ran = await call(lenient, 'ssh_exec_command', { host: 'guarded', command: `touch ${file}` });
    expect(ran.isError, ran.text).toBe(false);
    expect(existsSync(file)).toBe(true);
  });
});
