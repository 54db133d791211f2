/**
 * Limits at the Worker's edges, through wrangler dev, the real relay and sshd: transfer uploads that
 * lie about their size, ssh_write_file over the in-call limit, the admin CLI's output through a slow
 * pipe, and the sign-in rate limit against a client that sets its own address headers.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKER_WRITE_BYTES_PER_CALL } from '../../shared/limits.ts';
import { adminApi } from '../harness/admin-api.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { PROJECT_ROOT } from '../harness/worker.ts';

/** Above the in-call write limit, so that limit (not MAX_FILE_SIZE) is what ssh_write_file meets. */
const MAX = WORKER_WRITE_BYTES_PER_CALL + 2 * 1024 * 1024;
/** worker/team/team-directory.ts ADDRESS_FAILURES_ALLOWED (a workerd module; the pool test pins it at 20). */
const ADDRESS_FAILURES_ALLOWED = 20;
let stack: Stack;
const dir = `mre-limits-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  stack = await startStack({ workerVars: { MAX_FILE_SIZE: String(MAX) } });
  // Made by the SSH user (through the tool), so the relay may write there.
  const made = await stack.call('ssh_write_file', { path: `${dir}/.keep`, content: '', create_dirs: true });
  expect(made.isError, textOf(made)).toBeFalsy();
});

afterAll(async () => {
  if (stack) rmSync(join(stack.sshd.home, dir), { recursive: true, force: true });
  await stack?.stop();
});

const onHost = (path: string): string => join(stack.sshd.home, dir, path);
const leftovers = (): string[] => readdirSync(join(stack.sshd.home, dir)).filter((name) => name !== '.keep');

function uploadLink(result: CallToolResult): string {
  expect(result.isError, textOf(result)).toBeFalsy();
  const url = (result.structuredContent as { url?: unknown } | undefined)?.url;
  if (typeof url !== 'string') throw new Error('no link url');
  return url;
}

/**
 * PUT over a raw socket, so the headers can lie: `headers` as given, then `size` bytes in chunked
 * encoding. Resolves with the status line (or 'closed' when the server hung up without one).
 */
function rawChunkedPut(url: string, headers: string[], size: number): Promise<string> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(target.port), target.hostname);
    let answer = '';
    socket.on('data', (data) => {
      answer += data.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 'closed'));
    socket.on('connect', () => {
      socket.write(
        `PUT ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n${headers.map((line) => `${line}\r\n`).join('')}Transfer-Encoding: chunked\r\n\r\n`,
      );
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      let sent = 0;
      const more = (): void => {
        while (sent < size) {
          const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
          sent += part.length;
          const flowing = socket.write(`${part.length.toString(16)}\r\n`) && socket.write(part) && socket.write('\r\n');
          if (!flowing) {
            socket.once('drain', more);
            return;
          }
        }
        socket.write('0\r\n\r\n');
      };
      more();
    });
  });
}

async function settled(): Promise<void> {
  // The relay removes a broken upload's temporary file when it hears of the failure; give it a bounded moment.
  const until = Date.now() + 10_000;
  while (leftovers().some((name) => name.endsWith('.tmp')) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
}

describe('transfer-link uploads over the limit through wrangler dev', () => {
  it('writes nothing for a chunked PUT (no Content-Length) over MAX_FILE_SIZE', async () => {
    const url = uploadLink(await stack.call('ssh_request_upload', { path: `${dir}/chunked.bin` }));
    const status = await rawChunkedPut(url, [], MAX + 1);
    // The Worker answers 411 (a link upload needs a Content-Length) without reading the body. What
    // reaches the client varies under wrangler dev: its proxy then fails draining the large unread
    // body and may answer 500 instead, or the connection resets under the answer. Never 201.
    expect(status).not.toBe('201');
    await settled();
    expect(existsSync(onHost('chunked.bin'))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('writes nothing for a chunked PUT whose Content-Length says it is small', async () => {
    const url = uploadLink(await stack.call('ssh_request_upload', { path: `${dir}/lying.bin` }));
    const status = await rawChunkedPut(url, ['Content-Length: 16'], MAX + 1);
    expect(status).not.toBe('201');
    await settled();
    expect(existsSync(onHost('lying.bin'))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('writes nothing for a chunked PUT that claims exactly MAX_FILE_SIZE and sends one byte more', async () => {
    const url = uploadLink(await stack.call('ssh_request_upload', { path: `${dir}/one-more.bin` }));
    const status = await rawChunkedPut(url, [`Content-Length: ${MAX}`], MAX + 1);
    // The Worker answers 413 once its counter passes MAX (test/workers/body-limits.test.ts checks
    // that status in workerd). Under wrangler dev the client may instead see 500: the dev proxy
    // fails when the Worker stops reading a body mid-way ("Failed to drain the unused request
    // body"), or the connection resets under the answer. A request with both Content-Length and
    // chunked encoding may also reach the Worker without its Content-Length (HTTP says to ignore it
    // then, and the dev proxy drops it), and the upload route refuses that with 411 Length Required.
    // Never 201, and nothing on the host.
    expect(['411', '413', '500', 'closed']).toContain(status);
    await settled();
    expect(existsSync(onHost('one-more.bin'))).toBe(false);
    expect(leftovers()).toEqual([]);
  });
});

describe('ssh_write_file through the Worker', () => {
  it('describes the in-call limit, not MAX_FILE_SIZE, and points to ssh_request_upload', async () => {
    const { tools } = await stack.mcp.client.listTools();
    const description = tools.find((tool) => tool.name === 'ssh_write_file')?.description ?? '';
    expect(description).toContain(`${WORKER_WRITE_BYTES_PER_CALL.toLocaleString('en-US')} bytes in one call`);
    expect(description).toContain('ssh_request_upload');
  });

  it('writes a file of exactly the in-call limit', async () => {
    const content = randomBytes(WORKER_WRITE_BYTES_PER_CALL).toString('base64');
    const result = await stack.call('ssh_write_file', { path: `${dir}/at-limit.bin`, content, encoding: 'base64' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(existsSync(onHost('at-limit.bin'))).toBe(true);
    rmSync(onHost('at-limit.bin'));
  });

  it('answers a write one byte over the in-call limit with a file_too_large tool error, not an HTTP error', async () => {
    const content = randomBytes(WORKER_WRITE_BYTES_PER_CALL + 1).toString('base64');
    const result = await stack.call('ssh_write_file', { path: `${dir}/over.bin`, content, encoding: 'base64' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('file_too_large');
    expect(textOf(result)).toContain('ssh_request_upload');
    expect(existsSync(onHost('over.bin'))).toBe(false);
  });
});

describe('mcp-remote-exec admin audit --jsonl through a slow pipe', () => {
  it('prints every line the server holds, even past the 64 KiB pipe buffer', async () => {
    // Audit rows keep up to 2000 characters of a command: 100 such calls make well over 64 KiB.
    const filler = `true ${'x'.repeat(1990)}`;
    for (let batch = 0; batch < 10; batch += 1) {
      await Promise.all(Array.from({ length: 10 }, () => stack.call('ssh_exec_command', { command: filler })));
    }
    const held = await adminApi(stack.worker).get('audit?format=jsonl&limit=10000');
    expect(held.status).toBe(200);
    const expected = held.text.split('\n').filter((line) => line !== '').length;
    expect(held.text.length).toBeGreaterThan(3 * 64 * 1024);

    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'mcp-remote-exec.mjs'), 'admin', 'audit', '--jsonl', '--limit', '10000'], {
      env: {
        ...process.env,
        MCP_REMOTE_EXEC_URL: stack.worker.url,
        MCP_REMOTE_EXEC_ADMIN_USER: stack.worker.adminUser,
        MCP_REMOTE_EXEC_ADMIN_PASSWORD: stack.worker.adminPassword,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
    });
    // A slow reader: nothing is read until the command has had time to fetch its answer and try
    // to exit with most of it still waiting for the pipe; then everything is read.
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.stdout.pause();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    // After an explicit pause(), a 'data' listener alone does not restart the flow.
    child.stdout.resume();
    expect(await exited, stderr).toBe(0);
    const lines = Buffer.concat(chunks)
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '');
    expect(lines.length).toBeGreaterThanOrEqual(expected);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });
});

describe('the sign-in rate limit against a client that sets its own address headers', () => {
  it('keeps counting failures in one bucket whatever CF-Connecting-IP, X-Forwarded-For or X-Real-IP say', async () => {
    const spoof = (index: number): Record<string, string> => ({
      'CF-Connecting-IP': `203.0.113.${index + 1}`,
      'X-Forwarded-For': `198.51.100.${index + 1}`,
      'X-Real-IP': `192.0.2.${index + 1}`,
    });
    const basic = (username: string, password: string): string => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    for (let attempt = 0; attempt < ADDRESS_FAILURES_ALLOWED; attempt += 1) {
      // A different user name each time: only the per-address limit can stop this.
      const response = await fetch(`${stack.worker.url}/admin/api/users`, { headers: { Authorization: basic(`guess${attempt}`, 'wrong'), ...spoof(attempt) } });
      await response.text();
      expect(response.status).toBe(401);
    }
    // Even the right password, from a "new" address by every header, is now refused.
    const locked = await fetch(`${stack.worker.url}/admin/api/users`, {
      headers: { Authorization: basic(stack.worker.adminUser, stack.worker.adminPassword), ...spoof(200) },
    });
    await locked.text();
    expect(locked.status).toBe(429);
  });
});
