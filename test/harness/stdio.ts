/**
 * The stdio mode as Claude Desktop runs it: the built `mcp-remote-exec` command, spawned with the
 * seed's environment variables, spoken to by the SDK client over stdin/stdout.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { answerResult, type ConnectOptions } from './mcp-client.ts';
import { VERSION } from '../../shared/version.ts';
import type { TestSshd } from './sshd.ts';
import { PROJECT_ROOT } from './worker.ts';

export const CLI = join(PROJECT_ROOT, 'dist', 'mcp-remote-exec.mjs');

/** The seed's variables for the test sshd, in a fresh working directory with no .env. */
export function stdioEnv(sshd: TestSshd, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: mkdtempSync(join(tmpdir(), 'mre-stdio-home-')),
    I_ACCEPT_RISKS: 'true',
    HOST: '127.0.0.1',
    SSH_PORT: String(sshd.port),
    SSH_USERNAME: sshd.user,
    SSH_KEY: sshd.privateKeyPath,
    SSH_KNOWN_HOSTS: sshd.knownHostsPath,
    ...extra,
  };
}

export function runCliOnce(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const cwd = mkdtempSync(join(tmpdir(), 'mre-stdio-cwd-'));
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd, env, encoding: 'utf8', timeout: 30_000, input: '' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export interface StdioSession {
  client: Client;
  transport: StdioClientTransport;
  stderr(): string;
  close(): Promise<void>;
}

/**
 * `answer`: answer the server's elicitation requests (the SDK v1 client then declares form
 * elicitation); without it the client declares none, like a client that cannot be asked.
 */
export async function connectStdio(env: Record<string, string>, args: string[] = [], answer?: ConnectOptions['answer']): Promise<StdioSession> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, ...args],
    env,
    cwd: mkdtempSync(join(tmpdir(), 'mre-stdio-cwd-')),
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-65536);
  });
  const client = new Client({ name: 'mcp-remote-exec-stdio-test', version: VERSION }, answer ? { capabilities: { elicitation: { form: {} } } } : {});
  if (answer) client.setRequestHandler(ElicitRequestSchema, async (request) => answerResult(answer, request.params.message));
  await client.connect(transport);
  return { client, transport, stderr: () => stderr, close: () => client.close() };
}

/**
 * Speak to the command over stdio without an SDK: write JSON-RPC lines, collect every stdout line
 * until the last request's answer arrives, so a test can check that nothing else is on stdout.
 */
export async function rawStdioExchange(
  env: Record<string, string>,
  messages: Array<Record<string, unknown>>,
  timeoutMs = 20_000,
): Promise<{ stdout: string[]; stderr: string }> {
  const child = spawn(process.execPath, [CLI], { cwd: mkdtempSync(join(tmpdir(), 'mre-stdio-cwd-')), env, stdio: ['pipe', 'pipe', 'pipe'] });
  const lastId = [...messages].reverse().find((message) => 'id' in message)?.id;
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no answer to request ${String(lastId)} within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`)),
        timeoutMs,
      );
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        const lines = stdout.split('\n').filter((line) => line.trim() !== '');
        const answered = lines.some((line) => {
          try {
            const parsed: unknown = JSON.parse(line);
            return typeof parsed === 'object' && parsed !== null && 'id' in parsed && parsed.id === lastId;
          } catch {
            return false;
          }
        });
        if (answered) {
          clearTimeout(timer);
          resolve({ stdout: lines, stderr });
        }
      });
      for (const message of messages) child.stdin.write(`${JSON.stringify(message)}\n`);
    });
  } finally {
    child.stdin.end();
    child.kill('SIGTERM');
  }
}
