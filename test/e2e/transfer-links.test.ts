import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childrenOf } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

const MAX = 8 * 1024 * 1024;
const TTL_SECONDS = 4;
let stack: Stack;
const dir = `mre-links-${randomBytes(4).toString('hex')}`;

interface Link {
  url: string;
  curl: string;
  method: string;
  expires_in_seconds: number;
  max_bytes: number;
}

beforeAll(async () => {
  stack = await startStack({ workerVars: { MAX_FILE_SIZE: String(MAX), TRANSFER_LINK_TTL_SECONDS: String(TTL_SECONDS) } });
  const made = await stack.call('ssh_write_file', { path: `${dir}/.keep`, content: '', create_dirs: true });
  expect(made.isError, textOf(made)).toBeFalsy();
});

afterAll(async () => {
  if (stack) rmSync(join(stack.sshd.home, dir), { recursive: true, force: true });
  await stack?.stop();
});

const onHost = (path: string): string => join(stack.sshd.home, path);
const linkOf = (result: CallToolResult): Link => {
  expect(result.isError, textOf(result)).toBeFalsy();
  return result.structuredContent as unknown as Link;
};
/** Start a PUT that announces 4 MiB, send 512 KiB and keep the connection open until the relay's temporary file exists. */
async function uploadLeftOpen(url: string): Promise<ReturnType<typeof httpRequest>> {
  const upload = httpRequest(url, { method: 'PUT', headers: { 'Content-Length': String(4 * 1024 * 1024) } });
  upload.on('error', () => undefined);
  upload.write(Buffer.alloc(512 * 1024, 7));
  const until = Date.now() + 10_000;
  while (tempFiles().length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  return upload;
}

async function untilNoTempFiles(withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (tempFiles().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}

const tempFiles = (): string[] => readdirSync(onHost(dir)).filter((name) => name.endsWith('.tmp'));

describe('one-time transfer links', () => {
  it('uploads a multi-megabyte file through a link, atomically, reporting its SHA-256', async () => {
    const bytes = randomBytes(5 * 1024 * 1024 + 7);
    const link = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/up.bin`, permissions: 640 }));
    expect(link).toMatchObject({ method: 'PUT', expires_in_seconds: TTL_SECONDS, max_bytes: MAX });
    expect(link.url).toMatch(new RegExp(`^${stack.worker.url}/transfer/[0-9a-f]{32}/[A-Za-z0-9_-]{43}$`));
    expect(link.curl).toContain(`curl --fail-with-body -T ./LOCAL_FILE '${link.url}'`);
    const response = await fetch(link.url, { method: 'PUT', body: bytes });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), mode: '0640' });
    expect(readFileSync(onHost(`${dir}/up.bin`)).equals(bytes)).toBe(true);
    expect(tempFiles()).toEqual([]);
  });

  it('works once: a used link is indistinguishable from an unknown one', async () => {
    const link = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/once.txt` }));
    expect((await fetch(link.url, { method: 'PUT', body: 'first' })).status).toBe(201);
    const again = await fetch(link.url, { method: 'PUT', body: 'second' });
    expect(again.status).toBe(404);
    const unknown = await fetch(`${stack.worker.url}/transfer/${'0'.repeat(32)}/${'A'.repeat(43)}`, { method: 'PUT', body: 'x' });
    expect(unknown.status).toBe(404);
    expect(await again.text()).toBe(await unknown.text());
    expect(readFileSync(onHost(`${dir}/once.txt`), 'utf8')).toBe('first');
  });

  it('downloads a file through a link, byte for byte, once', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 3);
    const put = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/down.bin` }));
    expect((await fetch(put.url, { method: 'PUT', body: bytes })).status).toBe(201);
    const link = linkOf(await stack.call('ssh_request_download', { path: `${dir}/down.bin` }));
    expect(link.method).toBe('GET');
    const response = await fetch(link.url);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
    expect((await fetch(link.url)).status).toBe(404);
  });

  it('expires: a link used after its lifetime is refused', async () => {
    const link = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/late.txt` }));
    await new Promise((resolve) => setTimeout(resolve, (TTL_SECONDS + 1) * 1000));
    expect((await fetch(link.url, { method: 'PUT', body: 'late' })).status).toBe(404);
    expect(existsSync(onHost(`${dir}/late.txt`))).toBe(false);
  });

  it('refuses a body larger than MAX_FILE_SIZE before writing anything', async () => {
    const link = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/huge.bin` }));
    const response = await fetch(link.url, { method: 'PUT', body: Buffer.alloc(MAX + 1) });
    expect(response.status).toBe(413);
    expect(existsSync(onHost(`${dir}/huge.bin`))).toBe(false);
  });

  it('leaves the target as it was when the client sends less than its Content-Length and hangs up', async () => {
    const put = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/victim.txt` }));
    expect((await fetch(put.url, { method: 'PUT', body: 'precious' })).status).toBe(201);
    const link = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/victim.txt`, overwrite: true }));
    await new Promise<void>((resolve) => {
      const request = httpRequest(link.url, { method: 'PUT', headers: { 'Content-Length': String(2 * 1024 * 1024) } });
      request.on('error', () => resolve());
      request.on('close', () => resolve());
      request.write(Buffer.alloc(256 * 1024, 1));
      setTimeout(() => request.destroy(), 300);
    });
    // The relay notices the stream ended short, removes its temporary file and leaves the target.
    const until = Date.now() + 10_000;
    while (tempFiles().length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(tempFiles()).toEqual([]);
    expect(readFileSync(onHost(`${dir}/victim.txt`), 'utf8')).toBe('precious');
  });

  it('deletes the temporary file of a write cut off by the relay dying, once the relay is back', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'mre-relay-state-'));
    try {
      await stack.restartRelay({ env: { MCP_REMOTE_EXEC_STATE_DIR: stateDir } });
      const link = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/cut-off.bin` }));
      const upload = await uploadLeftOpen(link.url);
      expect(tempFiles()).toHaveLength(1);
      stack.relay.process.signal('SIGKILL');
      await stack.relay.process.exited;
      upload.destroy();
      // The relay died before it could delete its temporary file.
      expect(tempFiles()).toHaveLength(1);
      await stack.restartRelay({ env: { MCP_REMOTE_EXEC_STATE_DIR: stateDir } });
      await untilNoTempFiles(10_000);
      expect(tempFiles()).toEqual([]);
      expect(existsSync(onHost(`${dir}/cut-off.bin`))).toBe(false);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('deletes the temporary file of a write whose SSH connection dropped, and keeps the target', async () => {
    const put = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/dropped.txt` }));
    expect((await fetch(put.url, { method: 'PUT', body: 'kept' })).status).toBe(201);
    const link = linkOf(await stack.call('ssh_request_upload', { path: `${dir}/dropped.txt`, overwrite: true }));
    const upload = await uploadLeftOpen(link.url);
    expect(tempFiles()).toHaveLength(1);
    // End the sshd processes serving the relay's connections: the write fails mid-stream.
    for (const pid of childrenOf(stack.sshd.pid)) process.kill(pid, 'SIGTERM');
    upload.destroy();
    // Clean-up waits out the dead connection (bounded) and deletes the file over a new one.
    await untilNoTempFiles(30_000);
    expect(tempFiles(), stack.relay.process.output().slice(-3000)).toEqual([]);
    expect(readFileSync(onHost(`${dir}/dropped.txt`), 'utf8')).toBe('kept');
  });

  it('refuses at request time what would fail later', async () => {
    await stack.call('ssh_write_file', { path: `${dir}/exists.txt`, content: 'x' });
    expect(textOf(await stack.call('ssh_request_upload', { path: `${dir}/exists.txt` }))).toContain('Error [already_exists]');
    expect(textOf(await stack.call('ssh_request_download', { path: `${dir}/missing.bin` }))).toContain('Error [path_not_found]');
    expect(textOf(await stack.call('ssh_request_download', { path: dir }))).toContain('Error [path_is_directory]');
  });

  it('never writes a link token to its own logs', async () => {
    await stack.call('ssh_write_file', { path: `${dir}/logged.txt`, content: 'x', overwrite: true });
    const link = linkOf(await stack.call('ssh_request_download', { path: `${dir}/logged.txt` }));
    await (await fetch(link.url)).arrayBuffer();
    const token = link.url.split('/').pop() ?? '';
    expect(token).toHaveLength(43); // 256 bits, base64url
    // Our log lines are JSON objects; wrangler's own access log (like Cloudflare's request logs)
    // records URLs, which the README's security notes point out.
    const ours = stack.worker.process
      .output()
      .split('\n')
      .filter((line) => line.includes('"level"'));
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.filter((line) => line.includes(token))).toEqual([]);
    expect(stack.relay.process.output()).not.toContain(token);
  });
});
