/**
 * ImageKit transfers through the whole local stack (wrangler dev, the real relay and sshd), with
 * the loopback ImageKit stand-in in place of ImageKit: both directions for a host and for a
 * container, single use, another user's transfer, a file over MAX_FILE_SIZE, and expiry (the
 * Durable Object's alarm deletes what a transfer left in ImageKit).
 */
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { installFakeProxmox, type FakeProxmox } from '../harness/fake-proxmox.ts';
import { startImageKitStandIn, type ImageKitStandIn } from '../harness/imagekit-stand-in.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { sleep } from '../harness/wait.ts';

const MAX = 256 * 1024;
const TRANSFER_SECONDS = 12;
const PUBLIC_KEY = 'public_test_key';
const PRIVATE_KEY = `private_${randomBytes(12).toString('hex')}`;

let imagekit: ImageKitStandIn;
let pve: FakeProxmox;
let stack: Stack;
let dir: string;

interface Offer {
  transfer_id: string;
  upload_url: string;
  fields: Record<string, string>;
  url: string;
}

async function call(
  name: string,
  args: Record<string, unknown>,
  session?: ConnectedClient,
): Promise<{ text: string; isError: boolean; structured: Record<string, unknown> }> {
  const result = session ? await session.client.callTool({ name, arguments: args }) : await stack.call(name, args);
  return { text: textOf(result as never), isError: Boolean(result.isError), structured: (result.structuredContent ?? {}) as Record<string, unknown> };
}

/** What the curl command in the offer does: a multipart POST of the file with the offered fields. */
async function uploadAsCurlWould(offer: Offer, bytes: Uint8Array, name = 'local.bin'): Promise<Response> {
  const form = new FormData();
  form.set('file', new Blob([new Uint8Array(bytes)]), name);
  for (const [key, value] of Object.entries(offer.fields)) form.set(key, value);
  return fetch(offer.upload_url, { method: 'POST', body: form });
}

const inFolder = (transferId: string) => imagekit.files().filter((file) => file.filePath.includes(`/${transferId}/`));

beforeAll(async () => {
  imagekit = await startImageKitStandIn({ publicKey: PUBLIC_KEY, privateKey: PRIVATE_KEY });
  pve = installFakeProxmox();
  pve.addContainer({ vmid: 101, name: 'web', status: 'running' });
  const { uid, gid } = statSync(pve.containerPath(101, '/'));
  mkdirSync(pve.containerPath(101, '/srv'), { recursive: true });
  chownSync(pve.containerPath(101, '/srv'), uid, gid);
  stack = await startStack({
    sshd: { extraConfig: pve.sshdConfigLines() },
    workerVars: {
      MAX_FILE_SIZE: String(MAX),
      ENABLE_IMAGEKIT: 'true',
      IMAGEKIT_PUBLIC_KEY: PUBLIC_KEY,
      IMAGEKIT_URL_ENDPOINT: imagekit.urlEndpoint,
      IMAGEKIT_API_BASE_URL: imagekit.baseURL,
      IMAGEKIT_TRANSFER_TIMEOUT: String(TRANSFER_SECONDS),
    },
    worker: { secrets: { IMAGEKIT_PRIVATE_KEY: PRIVATE_KEY } },
    relay: (sshd) => ({
      configFile: {
        relay_id: 'ik-relay',
        known_hosts: [sshd.knownHostsPath],
        hosts: [{ name: 'pve', address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath, proxmox: true }],
      },
    }),
  });
  dir = `mre-ik-${randomBytes(4).toString('hex')}`;
  mkdirSync(join(stack.sshd.home, dir));
  chownSync(join(stack.sshd.home, dir), statSync(stack.sshd.home).uid, statSync(stack.sshd.home).gid);
}, 240_000);

afterAll(async () => {
  if (stack) rmSync(join(stack.sshd.home, dir), { recursive: true, force: true });
  await stack?.stop();
  pve?.remove();
  await imagekit?.stop();
});

describe('ImageKit transfers', () => {
  it('offers the four ImageKit tools next to the link tools', async () => {
    const names = (await stack.mcp.client.listTools()).tools.map((tool) => tool.name);
    for (const name of ['imagekit_request_upload', 'imagekit_confirm_upload', 'imagekit_request_download', 'imagekit_confirm_download', 'ssh_request_upload'])
      expect(names).toContain(name);
  });

  it('uploads to a host: single-use credentials, confirm writes the file and deletes it from ImageKit', async () => {
    const requested = await call('imagekit_request_upload', { remote_path: `${dir}/up.bin`, permissions: '640' });
    expect(requested.isError, requested.text).toBe(false);
    const offer = requested.structured as unknown as Offer;
    expect(requested.text).toContain('curl');
    const expire = Number(offer.fields.expire);
    expect(expire * 1000).toBeLessThanOrEqual(Date.now() + TRANSFER_SECONDS * 1000 + 1000);
    expect(requested.structured.credentials_expire_at).toBe(new Date(expire * 1000).toISOString());
    const bytes = randomBytes(100_000);
    const uploaded = await uploadAsCurlWould(offer, bytes);
    expect(uploaded.status, await uploaded.clone().text()).toBe(200);
    // The credentials work once.
    const again = await uploadAsCurlWould(offer, bytes);
    expect(again.status).toBeGreaterThanOrEqual(400);
    expect(inFolder(offer.transfer_id)).toHaveLength(1);

    const confirmed = await call('imagekit_confirm_upload', { transfer_id: offer.transfer_id });
    expect(confirmed.isError, confirmed.text).toBe(false);
    const onHost = join(stack.sshd.home, dir, 'up.bin');
    expect(readFileSync(onHost).equals(bytes)).toBe(true);
    expect(statSync(onHost).mode & 0o777).toBe(0o640);
    expect(confirmed.structured).toMatchObject({ host: 'pve', size: bytes.length, deleted_from_imagekit: true });
    expect(inFolder(offer.transfer_id)).toEqual([]);

    const replayed = await call('imagekit_confirm_upload', { transfer_id: offer.transfer_id });
    expect(replayed.isError).toBe(true);
    expect(replayed.text).toContain('already confirmed');
  });

  it('refuses at request time to replace an existing file without overwrite', async () => {
    writeFileSync(join(stack.sshd.home, dir, 'exists.txt'), 'keep\n');
    const requested = await call('imagekit_request_upload', { remote_path: `${dir}/exists.txt` });
    expect(requested.isError).toBe(true);
    expect(requested.text).toContain('already_exists');
  });

  it('uploads into a container', async () => {
    const requested = await call('imagekit_request_upload', { remote_path: '/srv/in-ct.txt', ctid: 101 });
    expect(requested.isError, requested.text).toBe(false);
    const offer = requested.structured as unknown as Offer;
    expect((await uploadAsCurlWould(offer, Buffer.from('into the container\n'))).status).toBe(200);
    const confirmed = await call('imagekit_confirm_upload', { transfer_id: offer.transfer_id });
    expect(confirmed.isError, confirmed.text).toBe(false);
    expect(readFileSync(pve.containerPath(101, '/srv/in-ct.txt'), 'utf8')).toBe('into the container\n');
  });

  it('downloads from a host through a signed, expiring URL, and confirm deletes it', async () => {
    const bytes = randomBytes(50_000);
    writeFileSync(join(stack.sshd.home, dir, 'down.bin'), bytes);
    const requested = await call('imagekit_request_download', { remote_path: `${dir}/down.bin` });
    expect(requested.isError, requested.text).toBe(false);
    const offer = requested.structured as unknown as Offer;
    expect(offer.url).toMatch(/[?&]ik-s=[0-9a-f]{40}/);
    expect(offer.url).toMatch(/[?&]ik-t=\d+/);
    const got = await fetch(offer.url);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    const unsigned = await fetch(offer.url.split('?')[0] ?? '');
    expect(unsigned.status).toBeGreaterThanOrEqual(400);
    await unsigned.body?.cancel();
    const confirmed = await call('imagekit_confirm_download', { transfer_id: offer.transfer_id });
    expect(confirmed.isError, confirmed.text).toBe(false);
    expect(inFolder(offer.transfer_id)).toEqual([]);
  });

  it('downloads from a container', async () => {
    writeFileSync(pve.containerPath(101, '/srv/from-ct.txt'), 'out of the container\n');
    const requested = await call('imagekit_request_download', { remote_path: '/srv/from-ct.txt', ctid: '101' });
    expect(requested.isError, requested.text).toBe(false);
    const got = await fetch((requested.structured as unknown as Offer).url);
    expect(await got.text()).toBe('out of the container\n');
  });

  it('refuses files over MAX_FILE_SIZE both ways, leaving the host file as it was and nothing in ImageKit', async () => {
    writeFileSync(join(stack.sshd.home, dir, 'big.bin'), randomBytes(MAX + 1));
    const down = await call('imagekit_request_download', { remote_path: `${dir}/big.bin` });
    expect(down.isError).toBe(true);
    expect(down.text).toMatch(/file_too_large|MAX_FILE_SIZE/);

    writeFileSync(join(stack.sshd.home, dir, 'target.txt'), 'original\n');
    const requested = await call('imagekit_request_upload', { remote_path: `${dir}/target.txt`, overwrite: true });
    const offer = requested.structured as unknown as Offer;
    expect((await uploadAsCurlWould(offer, randomBytes(MAX + 10))).status).toBe(200);
    const confirmed = await call('imagekit_confirm_upload', { transfer_id: offer.transfer_id });
    expect(confirmed.isError).toBe(true);
    expect(confirmed.text).toContain('file_too_large');
    expect(readFileSync(join(stack.sshd.home, dir, 'target.txt'), 'utf8')).toBe('original\n');
    expect(inFolder(offer.transfer_id)).toEqual([]);
  });

  it("gives nothing to another user who presents someone else's transfer id", async () => {
    const admin = adminApi(stack.worker);
    const added = await admin.post('users', { username: 'mallory', groups: ['ops'] });
    expect(added.status, added.text).toBe(201);
    expect((await admin.put('policy', { version: 1, grants: [{ subjects: ['group:ops'], role: 'operator', hosts: ['*'] }] })).status).toBe(200);
    const requested = await call('imagekit_request_upload', { remote_path: `${dir}/victim.txt` });
    const offer = requested.structured as unknown as Offer;
    expect((await uploadAsCurlWould(offer, Buffer.from('from the owner\n'))).status).toBe(200);
    const mallory = await connectMcpClient(stack.worker.mcpUrl, { username: 'mallory', password: String(added.body.password) });
    try {
      const stolen = await call('imagekit_confirm_upload', { transfer_id: offer.transfer_id }, mallory);
      expect(stolen.isError).toBe(true);
      expect(stolen.text).toContain(`There is no open transfer "${offer.transfer_id}" of yours`);
      const unknown = await call('imagekit_confirm_upload', { transfer_id: 'f'.repeat(32) }, mallory);
      expect(unknown.text.replace('f'.repeat(32), offer.transfer_id)).toBe(stolen.text);
    } finally {
      await mallory.close();
    }
    // The owner still can.
    const confirmed = await call('imagekit_confirm_upload', { transfer_id: offer.transfer_id });
    expect(confirmed.isError, confirmed.text).toBe(false);
  });

  it('refuses a malformed transfer id before anything happens', async () => {
    const result = await call('imagekit_confirm_upload', { transfer_id: '../../etc' });
    expect(result.isError).toBe(true);
    expect(result.text).toContain('transfer_id');
  });

  it('expires: the alarm deletes what was uploaded, and a late confirm is refused', async () => {
    const requested = await call('imagekit_request_upload', { remote_path: `${dir}/late.txt` });
    const offer = requested.structured as unknown as Offer;
    expect((await uploadAsCurlWould(offer, Buffer.from('too late\n'))).status).toBe(200);
    expect(inFolder(offer.transfer_id)).toHaveLength(1);
    const deadline = Date.now() + (TRANSFER_SECONDS + 20) * 1000;
    while (inFolder(offer.transfer_id).length > 0 && Date.now() < deadline) await sleep(250);
    expect(inFolder(offer.transfer_id)).toEqual([]);
    const late = await call('imagekit_confirm_upload', { transfer_id: offer.transfer_id });
    expect(late.isError).toBe(true);
    expect(late.text).toMatch(/expired|no open transfer/);
  }, 60_000);
});
