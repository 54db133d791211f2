/**
 * Checks of the ImageKit stand-in itself, driven by the official SDK (@imagekit/nodejs) and by plain
 * multipart fetch (what a browser or `curl -F` sends for a client-side upload). If the SDK and the
 * stand-in disagree about the wire format, these fail before any product test relies on it.
 */
import { createHmac, randomUUID } from 'node:crypto';
import ImageKit, { BadRequestError, NotFoundError, PermissionDeniedError, toFile } from '@imagekit/nodejs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ImageKitStandIn, startImageKitStandIn } from '../harness/imagekit-stand-in.ts';

const PUBLIC_KEY = 'public_standin_0123456789abcdef';
const PRIVATE_KEY = `private_${randomUUID()}`;
const HELP = 'For support kindly contact us at support@imagekit.io .';

let ik: ImageKitStandIn;
let client: ImageKit;

beforeAll(async () => {
  ik = await startImageKitStandIn({ publicKey: PUBLIC_KEY, privateKey: PRIVATE_KEY });
  // No retries: a refused request must surface as the error it is.
  client = new ImageKit({ privateKey: PRIVATE_KEY, baseURL: ik.baseURL, maxRetries: 0 });
});

afterAll(async () => {
  await ik?.stop();
});

/** A client-side upload as a browser sends it: multipart fields, no Authorization header. */
async function clientSideUpload(
  fields: Record<string, string>,
  bytes = Buffer.from('client side bytes'),
): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new FormData();
  form.append('file', new Blob([bytes]), 'blob');
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  const response = await fetch(`${ik.baseURL}/api/v1/files/upload`, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the request to be refused');
    },
    (error: unknown) => error,
  );
}

describe('server-side API through the official SDK', () => {
  it('uploads, lists by exact folder, gets details, deletes, and then answers 404', async () => {
    const bytes = Buffer.from('hello from the stand-in test\n');
    const uploaded = await client.files.upload({ file: await toFile(bytes, 'notes.txt'), fileName: 'notes.txt', folder: '/reports/2026' });
    expect(uploaded.name).toMatch(/^notes_[A-Za-z0-9]{9}\.txt$/);
    expect(uploaded.filePath).toBe(`/reports/2026/${uploaded.name}`);
    expect(uploaded.size).toBe(bytes.length);
    expect(uploaded.fileType).toBe('non-image');
    expect(uploaded.url).toBe(`${ik.urlEndpoint}/reports/2026/${uploaded.name}`);
    expect(uploaded.fileId).toMatch(/^[0-9a-f]{24}$/);
    expect(uploaded.versionInfo).toEqual({ id: uploaded.fileId, name: 'Version 1' });
    expect(uploaded.AITags).toBeNull();
    // isPrivateFile is only in the upload answer when asked for through responseFields.
    expect(uploaded).not.toHaveProperty('isPrivateFile');

    // A file in a subfolder and one in the parent must not show up in an exact-folder listing.
    await client.files.upload({ file: await toFile(Buffer.from('x'), 'deeper.txt'), fileName: 'deeper.txt', folder: '/reports/2026/q1' });
    await client.files.upload({ file: await toFile(Buffer.from('y'), 'parent.txt'), fileName: 'parent.txt', folder: '/reports' });
    const listed = await client.assets.list({ path: '/reports/2026' });
    expect(listed.map((entry) => ('fileId' in entry ? entry.fileId : null))).toEqual([uploaded.fileId]);
    const [entry] = listed;
    expect(entry).toMatchObject({
      type: 'file',
      name: uploaded.name,
      filePath: uploaded.filePath,
      size: bytes.length,
      isPrivateFile: false,
      url: uploaded.url,
      mime: 'text/plain',
    });
    expect(Date.parse(String((entry as { createdAt?: string }).createdAt))).not.toBeNaN();

    const details = await client.files.get(uploaded.fileId ?? '');
    expect(details).toMatchObject({ type: 'file', fileId: uploaded.fileId, filePath: uploaded.filePath, size: bytes.length, isPrivateFile: false });
    const stored = ik.files().find((file) => file.fileId === uploaded.fileId);
    expect(stored?.bytes.equals(bytes)).toBe(true);
    expect(stored?.folder).toBe('/reports/2026/');

    await client.files.delete(uploaded.fileId ?? '');
    expect(ik.files().some((file) => file.fileId === uploaded.fileId)).toBe(false);
    expect(
      ik
        .requests()
        .filter((request) => request.method === 'DELETE')
        .map((request) => request.status),
    ).toEqual([204]);

    const gone = await rejection(client.files.get(uploaded.fileId ?? ''));
    expect(gone).toBeInstanceOf(NotFoundError);
    expect((gone as NotFoundError).error).toEqual({ message: 'The requested file does not exist.', help: HELP });
    expect(await rejection(client.files.delete(uploaded.fileId ?? ''))).toBeInstanceOf(NotFoundError);
  });

  it('lists folders and answers the supported searchQuery forms', async () => {
    const first = await client.files.upload({
      file: await toFile(Buffer.from('a'), 'search-me.txt'),
      fileName: 'search-me.txt',
      folder: '/search',
      useUniqueFileName: false,
    });
    await client.files.upload({
      file: await toFile(Buffer.from('b'), 'search-other.txt'),
      fileName: 'search-other.txt',
      folder: '/search/inner',
      useUniqueFileName: false,
    });

    const byName = await client.assets.list({ searchQuery: 'name = "search-me.txt"' });
    expect(byName.map((item) => ('filePath' in item ? item.filePath : null))).toEqual([first.filePath]);
    const byPrefix = await client.assets.list({ searchQuery: 'name : "search-"' });
    expect(byPrefix).toHaveLength(2);
    const byPath = await client.assets.list({ searchQuery: '"filePath" = "/search/inner/search-other.txt"' });
    expect(byPath.map((item) => ('name' in item ? item.name : null))).toEqual(['search-other.txt']);
    const within = await client.assets.list({ searchQuery: 'path : "/search" AND private = false' });
    expect(within).toHaveLength(2);

    const foldersOnly = await client.assets.list({ path: '/search', type: 'folder' });
    expect(foldersOnly).toEqual([expect.objectContaining({ type: 'folder', name: 'inner', folderPath: '/search/inner' })]);
    const page = await client.assets.list({ path: '/search', type: 'all', skip: 1, limit: 1 });
    expect(page).toEqual([expect.objectContaining({ type: 'file', name: 'search-me.txt' })]);

    // Outside the supported subset: refused, never silently ignored.
    expect(await rejection(client.assets.list({ searchQuery: 'size > "1mb" OR name = "x"' }))).toBeInstanceOf(BadRequestError);
  });

  it("refuses a wrong private key with 403 and no key at all with 401, with ImageKit's body", async () => {
    const wrong = new ImageKit({ privateKey: 'private_wrong', baseURL: ik.baseURL, maxRetries: 0 });
    const refused = await rejection(wrong.assets.list({}));
    expect(refused).toBeInstanceOf(PermissionDeniedError);
    expect((refused as PermissionDeniedError).error).toEqual({ message: 'Your account cannot be authenticated.', help: HELP });
    const upload = await rejection(wrong.files.upload({ file: await toFile(Buffer.from('z'), 'z.txt'), fileName: 'z.txt' }));
    expect(upload).toBeInstanceOf(PermissionDeniedError);

    const anonymous = await fetch(`${ik.baseURL}/v1/files`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ message: 'Your account cannot be authenticated.', help: HELP });
    // The SDK sends "privateKey:do_not_set"; ImageKit reads only the user name, and so must the stand-in.
    const curlStyle = await fetch(`${ik.baseURL}/v1/files?limit=1`, {
      headers: { Authorization: `Basic ${Buffer.from(`${PRIVATE_KEY}:`).toString('base64')}` },
    });
    expect(curlStyle.status).toBe(200);
  });

  it('keeps the name with useUniqueFileName false, and honours overwriteFile false', async () => {
    const kept = await client.files.upload({
      file: await toFile(Buffer.from('v1'), 'fixed.txt'),
      fileName: 'fixed.txt',
      folder: '/names',
      useUniqueFileName: false,
    });
    expect(kept.name).toBe('fixed.txt');
    expect(kept.filePath).toBe('/names/fixed.txt');
    const changed = await client.files.upload({ file: await toFile(Buffer.from('v1'), 'fixed.txt'), fileName: 'fixed.txt', folder: '/names' });
    expect(changed.name).not.toBe('fixed.txt');
    expect(changed.name).toMatch(/^fixed_[A-Za-z0-9]{9}\.txt$/);

    // Overwrite (the default) keeps the file id and adds a version.
    const second = await client.files.upload({
      file: await toFile(Buffer.from('version two'), 'fixed.txt'),
      fileName: 'fixed.txt',
      folder: '/names',
      useUniqueFileName: false,
    });
    expect(second.fileId).toBe(kept.fileId);
    expect(second.versionInfo?.name).toBe('Version 2');
    expect(
      ik
        .files()
        .find((file) => file.fileId === kept.fileId)
        ?.bytes.toString(),
    ).toBe('version two');

    const refused = await rejection(
      client.files.upload({
        file: await toFile(Buffer.from('v3'), 'fixed.txt'),
        fileName: 'fixed.txt',
        folder: '/names',
        useUniqueFileName: false,
        overwriteFile: false,
      }),
    );
    expect(refused).toBeInstanceOf(BadRequestError);
    expect(
      ik
        .files()
        .find((file) => file.fileId === kept.fileId)
        ?.bytes.toString(),
    ).toBe('version two');
  });

  it('replaces characters ImageKit does not allow in file names', async () => {
    const uploaded = await client.files.upload({ file: await toFile(Buffer.from('q'), 'a b$c.txt'), fileName: 'a b$c.txt', useUniqueFileName: false });
    expect(uploaded.name).toBe('a_b_c.txt');
    expect(uploaded.filePath).toBe('/a_b_c.txt');
  });
});

describe('upload size limit', () => {
  let small: ImageKitStandIn;
  let smallClient: ImageKit;
  beforeAll(async () => {
    small = await startImageKitStandIn({ publicKey: PUBLIC_KEY, privateKey: PRIVATE_KEY, maxFileSize: 4096 });
    smallClient = new ImageKit({ privateKey: PRIVATE_KEY, baseURL: small.baseURL, maxRetries: 0 });
  });
  afterAll(async () => {
    await small?.stop();
  });

  it('accepts a file of exactly the limit and refuses one byte more, storing nothing', async () => {
    const atLimit = await smallClient.files.upload({ file: await toFile(Buffer.alloc(4096, 1), 'at.bin'), fileName: 'at.bin' });
    expect(atLimit.size).toBe(4096);
    const over = await rejection(smallClient.files.upload({ file: await toFile(Buffer.alloc(4097, 1), 'over.bin'), fileName: 'over.bin' }));
    expect(over).toBeInstanceOf(BadRequestError);
    expect((over as BadRequestError).error).toMatchObject({ help: HELP });
    expect(small.files().map((file) => file.size)).toEqual([4096]);
  });

  it('answers a body far past the limit instead of hanging or resetting the connection', async () => {
    const over = await rejection(smallClient.files.upload({ file: await toFile(Buffer.alloc(3 * 1024 * 1024, 2), 'huge.bin'), fileName: 'huge.bin' }));
    expect(over).toBeInstanceOf(BadRequestError);
  });

  it('defaults to 25 MB', () => {
    expect(ik.maxFileSize).toBe(25 * 1024 * 1024);
  });
});

describe('client-side upload (token, expire, signature)', () => {
  it("accepts the SDK's authentication parameters once, then refuses the same token", async () => {
    const auth = client.helper.getAuthenticationParameters();
    const fields = {
      publicKey: PUBLIC_KEY,
      token: auth.token,
      expire: String(auth.expire),
      signature: auth.signature,
      fileName: 'browser.txt',
      folder: '/client',
    };
    const first = await clientSideUpload(fields);
    expect(first.status).toBe(200);
    expect(first.body.filePath).toMatch(/^\/client\/browser_[A-Za-z0-9]{9}\.txt$/);
    expect(ik.files().some((file) => file.filePath === first.body.filePath)).toBe(true);

    const again = await clientSideUpload(fields);
    expect(again.status).toBe(400);
    expect(again.body).toEqual({
      message: `The token with value '${auth.token}' has been used before. We suggest using V4 UUIDs, or another random string with enough entropy to avoid collisions.`,
      help: HELP,
    });
  });

  it('refuses a signature not made with the private key', async () => {
    const token = randomUUID();
    const expire = Math.floor(Date.now() / 1000) + 600;
    const forged = createHmac('sha1', 'not-the-private-key')
      .update(token + expire)
      .digest('hex');
    const result = await clientSideUpload({ publicKey: PUBLIC_KEY, token, expire: String(expire), signature: forged, fileName: 'forged.txt' });
    expect(result.status).toBe(400);
    expect(result.body).toEqual({ message: 'Your request contains invalid signature parameter.', help: HELP });
    // A correct signature over a different expire is just as wrong.
    const good = client.helper.getAuthenticationParameters(token, expire);
    const shifted = await clientSideUpload({ publicKey: PUBLIC_KEY, token, expire: String(expire + 1), signature: good.signature, fileName: 'forged.txt' });
    expect(shifted.status).toBe(400);
    expect(shifted.body.message).toBe('Your request contains invalid signature parameter.');
    expect(ik.files().some((file) => file.name.startsWith('forged'))).toBe(false);
  });

  it('refuses an expire in the past, and one an hour or more ahead', async () => {
    const expireMessage = 'Your request contains invalid expire parameter. Expire parameter should be a Unix time in less than 1 hour into the future.';
    const past = client.helper.getAuthenticationParameters(randomUUID(), Math.floor(Date.now() / 1000) - 5);
    const expired = await clientSideUpload({
      publicKey: PUBLIC_KEY,
      token: past.token,
      expire: String(past.expire),
      signature: past.signature,
      fileName: 'late.txt',
    });
    expect(expired.status).toBe(400);
    expect(expired.body).toEqual({ message: expireMessage, help: HELP });

    const far = client.helper.getAuthenticationParameters(randomUUID(), Math.floor(Date.now() / 1000) + 3600 + 60);
    const tooFar = await clientSideUpload({
      publicKey: PUBLIC_KEY,
      token: far.token,
      expire: String(far.expire),
      signature: far.signature,
      fileName: 'early.txt',
    });
    expect(tooFar.status).toBe(400);
    expect(tooFar.body.message).toBe(expireMessage);

    // The same parameters become expired when the stand-in's clock moves past them.
    const soon = client.helper.getAuthenticationParameters(randomUUID(), Math.floor(Date.now() / 1000) + 120);
    ik.setNow(Date.now() + 180_000);
    try {
      const late = await clientSideUpload({
        publicKey: PUBLIC_KEY,
        token: soon.token,
        expire: String(soon.expire),
        signature: soon.signature,
        fileName: 'late.txt',
      });
      expect(late.status).toBe(400);
      expect(late.body.message).toBe(expireMessage);
    } finally {
      ik.setNow();
    }
    const inTime = await clientSideUpload({
      publicKey: PUBLIC_KEY,
      token: soon.token,
      expire: String(soon.expire),
      signature: soon.signature,
      fileName: 'late.txt',
    });
    expect(inTime.status).toBe(200);
  });

  it("refuses a public key that is not the account's", async () => {
    const auth = client.helper.getAuthenticationParameters();
    const result = await clientSideUpload({
      publicKey: 'public_other',
      token: auth.token,
      expire: String(auth.expire),
      signature: auth.signature,
      fileName: 'x.txt',
    });
    expect(result.status).toBe(403);
    expect(result.body).toEqual({ message: 'Your account cannot be authenticated.', help: HELP });
  });
});

describe('delivery of private files through signed URLs', () => {
  const secret = Buffer.from('private bytes \u0000\u0001\u0002 end');
  let filePath = '';
  beforeAll(async () => {
    const uploaded = await client.files.upload({
      file: await toFile(secret, 'secret.bin'),
      fileName: 'secret.bin',
      folder: '/private',
      isPrivateFile: true,
      responseFields: ['isPrivateFile'],
    });
    expect(uploaded.isPrivateFile).toBe(true);
    filePath = uploaded.filePath ?? '';
  });

  it('serves the bytes for a URL signed by helper.buildSrc', async () => {
    const url = client.helper.buildSrc({ urlEndpoint: ik.urlEndpoint, src: filePath, signed: true, expiresIn: 60 });
    expect(url).toMatch(/[?&]ik-t=\d+&ik-s=[0-9a-f]{40}$/);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(secret.length));
    expect(Buffer.from(await response.arrayBuffer()).equals(secret)).toBe(true);
  });

  it('serves a signed URL without expiry, and one carrying a query parameter', async () => {
    const forever = client.helper.buildSrc({ urlEndpoint: ik.urlEndpoint, src: filePath, signed: true });
    expect(forever).not.toContain('ik-t=');
    expect((await fetch(forever)).status).toBe(200);
    const withQuery = client.helper.buildSrc({ urlEndpoint: ik.urlEndpoint, src: filePath, signed: true, expiresIn: 60, queryParameters: { v: '2' } });
    expect(withQuery).toContain('?v=2&ik-t=');
    expect((await fetch(withQuery)).status).toBe(200);
    // Dropping the signed query parameter breaks the signature.
    expect((await fetch(withQuery.replace('v=2&', ''))).status).toBe(401);
  });

  it('refuses a tampered signature, an expired URL and the unsigned URL', async () => {
    const url = client.helper.buildSrc({ urlEndpoint: ik.urlEndpoint, src: filePath, signed: true, expiresIn: 60 });
    const signature = /ik-s=([0-9a-f]{40})/.exec(url)?.[1] ?? '';
    const flipped = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`;
    expect((await fetch(url.replace(signature, flipped))).status).toBe(401);

    const timestamp = Number(/ik-t=(\d+)/.exec(url)?.[1]);
    expect((await fetch(url.replace(`ik-t=${timestamp}`, `ik-t=${timestamp + 3600}`))).status).toBe(401);

    ik.setNow(Date.now() + 120_000);
    try {
      expect((await fetch(url)).status).toBe(401);
    } finally {
      ik.setNow();
    }
    expect((await fetch(url)).status).toBe(200);

    expect((await fetch(`${ik.urlEndpoint}${filePath}`)).status).toBe(401);
    const otherKey = new ImageKit({ privateKey: 'private_other', baseURL: ik.baseURL, maxRetries: 0 });
    expect((await fetch(otherKey.helper.buildSrc({ urlEndpoint: ik.urlEndpoint, src: filePath, signed: true, expiresIn: 60 }))).status).toBe(401);
  });

  it('serves a public file unsigned, and 404 for a path that holds nothing', async () => {
    const uploaded = await client.files.upload({
      file: await toFile(Buffer.from('public'), 'open.txt'),
      fileName: 'open.txt',
      useUniqueFileName: false,
      folder: '/pub',
    });
    const response = await fetch(uploaded.url ?? '');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain');
    expect(await response.text()).toBe('public');
    expect((await fetch(`${ik.urlEndpoint}/pub/missing.txt`)).status).toBe(404);
  });

  it('keeps secrets out of the request log', () => {
    const log = JSON.stringify(ik.requests());
    expect(ik.requests().length).toBeGreaterThan(10);
    expect(log).not.toContain(PRIVATE_KEY);
    expect(log).not.toContain('ik-s');
    expect(log).not.toContain('signature');
  });
});

describe('routing', () => {
  it("answers unknown routes 404 with ImageKit's error body", async () => {
    const response = await fetch(`${ik.baseURL}/v2/nothing`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ help: HELP });
  });
});
