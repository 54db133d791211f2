/**
 * ImageKit in the stdio mode, configured by the environment as in the seed, against the loopback
 * ImageKit stand-in: a missing credential stops the start with its name, the seed's tool
 * replacement, both directions, transfer state that survives a restart, and expired transfers
 * cleaned out of ImageKit when the server starts again.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImageKitStandIn, type ImageKitStandIn } from '../harness/imagekit-stand-in.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { connectStdio, runCliOnce, stdioEnv, type StdioSession } from '../harness/stdio.ts';
import { sleep } from '../harness/wait.ts';

const PUBLIC_KEY = 'public_stdio_key';
const PRIVATE_KEY = `private_${randomBytes(12).toString('hex')}`;
let imagekit: ImageKitStandIn;
let sshd: TestSshd;
let stateDir: string;
let local: string;
const sessions: StdioSession[] = [];

function env(extra: Record<string, string> = {}): Record<string, string> {
  return stdioEnv(sshd, {
    MCP_REMOTE_EXEC_STATE_DIR: stateDir,
    ENABLE_IMAGEKIT: 'true',
    IMAGEKIT_PUBLIC_KEY: PUBLIC_KEY,
    IMAGEKIT_PRIVATE_KEY: PRIVATE_KEY,
    IMAGEKIT_URL_ENDPOINT: imagekit.urlEndpoint,
    IMAGEKIT_API_BASE_URL: imagekit.baseURL,
    ...extra,
  });
}

async function open(extra: Record<string, string> = {}): Promise<StdioSession> {
  const session = await connectStdio(env(extra));
  sessions.push(session);
  return session;
}

async function call(session: StdioSession, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await session.client.callTool({ name, arguments: args }));
}

async function uploadAsCurlWould(offer: { upload_url: string; fields: Record<string, string> }, bytes: Uint8Array): Promise<number> {
  const form = new FormData();
  form.set('file', new Blob([new Uint8Array(bytes)]), 'local.bin');
  for (const [key, value] of Object.entries(offer.fields)) form.set(key, value);
  const response = await fetch(offer.upload_url, { method: 'POST', body: form });
  await response.body?.cancel();
  return response.status;
}

beforeAll(async () => {
  imagekit = await startImageKitStandIn({ publicKey: PUBLIC_KEY, privateKey: PRIVATE_KEY });
  sshd = await startSshd();
  stateDir = mkdtempSync(join(tmpdir(), 'mre-ik-state-'));
  local = mkdtempSync(join(tmpdir(), 'mre-ik-local-'));
}, 60_000);

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await sshd?.stop();
  await imagekit?.stop();
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(local, { recursive: true, force: true });
});

describe('ImageKit in the stdio mode', () => {
  it('refuses to start with a credential missing, naming it', () => {
    const withoutKey = env();
    delete withoutKey.IMAGEKIT_PRIVATE_KEY;
    const result = runCliOnce([], withoutKey);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('IMAGEKIT_PRIVATE_KEY is not set');
  });

  it('replaces the local-path transfer tools, as the seed did', async () => {
    const session = await open({ ENABLE_PROXMOX: 'true' });
    const names = (await session.client.listTools()).tools.map((tool) => tool.name);
    expect(names).toEqual(
      expect.arrayContaining(['imagekit_request_upload', 'imagekit_confirm_upload', 'imagekit_request_download', 'imagekit_confirm_download', 'ssh_read_file']),
    );
    for (const gone of ['ssh_upload_file', 'ssh_download_file', 'proxmox_upload_file_to_container', 'proxmox_download_file_from_container'])
      expect(names).not.toContain(gone);
  });

  it('moves a file up and down, and keeps a transfer across a restart', async () => {
    const first = await open();
    const name = `ik-${randomBytes(4).toString('hex')}.bin`;
    const requested = await call(first, 'imagekit_request_upload', { remote_path: name });
    expect(requested.isError, textOf(requested)).toBeFalsy();
    const offer = requested.structuredContent as { transfer_id: string; upload_url: string; fields: Record<string, string> };
    const bytes = randomBytes(70_000);
    expect(await uploadAsCurlWould(offer, bytes)).toBe(200);
    await first.close();

    const second = await open();
    const confirmed = await call(second, 'imagekit_confirm_upload', { transfer_id: offer.transfer_id });
    expect(confirmed.isError, textOf(confirmed)).toBeFalsy();
    expect(readFileSync(join(sshd.home, name)).equals(bytes)).toBe(true);
    expect(imagekit.files().filter((file) => file.filePath.includes(offer.transfer_id))).toEqual([]);

    const download = await call(second, 'imagekit_request_download', { remote_path: name });
    expect(download.isError, textOf(download)).toBeFalsy();
    const { url, transfer_id: downloadId } = download.structuredContent as { url: string; transfer_id: string };
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(bytes)).toBe(true);
    expect((await call(second, 'imagekit_confirm_download', { transfer_id: downloadId })).isError).toBeFalsy();
    const replay = await call(second, 'imagekit_confirm_download', { transfer_id: downloadId });
    expect(replay.isError).toBe(true);
    expect(textOf(replay)).toContain('already confirmed');
    rmSync(join(sshd.home, name), { force: true });
  });

  it('cleans an expired transfer out of ImageKit when the server starts again', async () => {
    const session = await open({ IMAGEKIT_TRANSFER_TIMEOUT: '10' });
    const requested = await call(session, 'imagekit_request_upload', { remote_path: `never-${randomBytes(3).toString('hex')}.txt` });
    const offer = requested.structuredContent as { transfer_id: string; upload_url: string; fields: Record<string, string> };
    expect(await uploadAsCurlWould(offer, Buffer.from('abandoned\n'))).toBe(200);
    await session.close();
    expect(imagekit.files().filter((file) => file.filePath.includes(offer.transfer_id))).toHaveLength(1);
    await sleep(10_500);
    const restarted = await open();
    const deadline = Date.now() + 10_000;
    while (imagekit.files().some((file) => file.filePath.includes(offer.transfer_id)) && Date.now() < deadline) await sleep(100);
    expect(imagekit.files().filter((file) => file.filePath.includes(offer.transfer_id))).toEqual([]);
    const late = await call(restarted, 'imagekit_confirm_upload', { transfer_id: offer.transfer_id });
    expect(late.isError).toBe(true);
    expect(textOf(late)).toContain('transfer_closed');
  }, 60_000);

  it('keeps a local file out of it: local paths are not ImageKit arguments', async () => {
    writeFileSync(join(local, 'x.txt'), 'x');
    const session = await open();
    const result = await call(session, 'imagekit_request_upload', { remote_path: 'x.txt', local_path: join(local, 'x.txt') });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/local_path|Unrecognized/i);
  });
});
