import { describe, expect, it } from 'vitest';
import { ImageKitConfigError, readImageKitConfig } from '../../../shared/imagekit/config.ts';
import { claimTransfer, CONFIRM_STALE_MS, type ImageKitTransfer } from '../../../shared/imagekit/transfers.ts';

const complete = { ENABLE_IMAGEKIT: 'true', IMAGEKIT_PUBLIC_KEY: 'pub', IMAGEKIT_PRIVATE_KEY: 'priv', IMAGEKIT_URL_ENDPOINT: 'https://ik.imagekit.io/acme/' };

describe('ImageKit settings', () => {
  it('is off unless ENABLE_IMAGEKIT is true', () => {
    expect(readImageKitConfig({})).toBeNull();
    expect(readImageKitConfig({ ENABLE_IMAGEKIT: 'false', IMAGEKIT_PUBLIC_KEY: 'x' })).toBeNull();
  });

  it.each(['IMAGEKIT_PUBLIC_KEY', 'IMAGEKIT_PRIVATE_KEY', 'IMAGEKIT_URL_ENDPOINT'] as const)(
    'names %s when it is missing, rather than turning the plugin off',
    (name) => {
      const source: Record<string, string | undefined> = { ...complete, [name]: undefined };
      expect(() => readImageKitConfig(source)).toThrow(ImageKitConfigError);
      expect(() => readImageKitConfig(source)).toThrow(`${name} is not set`);
    },
  );

  it('has the seed defaults and trims the endpoint', () => {
    expect(readImageKitConfig(complete)).toMatchObject({
      folder: '/mcp-remote-exec',
      transferTimeoutSeconds: 3600,
      urlEndpoint: 'https://ik.imagekit.io/acme',
      apiBaseUrl: null,
    });
  });

  it('refuses a folder with .. or odd characters, and a timeout out of range', () => {
    expect(() => readImageKitConfig({ ...complete, IMAGEKIT_FOLDER: '/a/../b' })).toThrow('IMAGEKIT_FOLDER');
    expect(() => readImageKitConfig({ ...complete, IMAGEKIT_FOLDER: 'no-slash' })).toThrow('IMAGEKIT_FOLDER');
    expect(() => readImageKitConfig({ ...complete, IMAGEKIT_TRANSFER_TIMEOUT: '5' })).toThrow('IMAGEKIT_TRANSFER_TIMEOUT');
    expect(() => readImageKitConfig({ ...complete, ENABLE_IMAGEKIT: 'maybe' })).toThrow('ENABLE_IMAGEKIT');
  });
});

describe('transfer state rules', () => {
  const transfer: ImageKitTransfer = {
    id: 'a'.repeat(32),
    kind: 'upload',
    ownerId: 'alice',
    host: 'web',
    path: '/x',
    overwrite: false,
    folder: '/f/a',
    createdAt: 0,
    expiresAt: 10_000,
    state: 'open',
  };

  it('lets the owner claim an open transfer before it expires', () => {
    expect(claimTransfer(transfer, transfer.id, 'alice', 'upload', 5_000)).toMatchObject({ ok: true });
  });

  it("answers another user's transfer exactly like a missing one", () => {
    const foreign = claimTransfer(transfer, transfer.id, 'mallory', 'upload', 5_000);
    const missing = claimTransfer(null, transfer.id, 'mallory', 'upload', 5_000);
    expect(foreign).toEqual(missing);
    expect(foreign).toMatchObject({ ok: false, error: { code: 'transfer_closed' } });
  });

  it('refuses a replay, a confirm in progress, a late confirm and the wrong kind', () => {
    expect(claimTransfer({ ...transfer, state: 'done' }, transfer.id, 'alice', 'upload', 5_000)).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('already confirmed') },
    });
    expect(claimTransfer({ ...transfer, state: 'confirming' }, transfer.id, 'alice', 'upload', 5_000)).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('right now') },
    });
    expect(claimTransfer(transfer, transfer.id, 'alice', 'upload', 10_000)).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('expired') },
    });
    expect(claimTransfer(transfer, transfer.id, 'alice', 'download', 5_000)).toMatchObject({ ok: false, error: { code: 'invalid_argument' } });
  });

  it('takes a confirm that was cut off without releasing its claim as failed, after a while', () => {
    const stuck: ImageKitTransfer = { ...transfer, state: 'confirming', claimedAt: 1_000, expiresAt: 10 * CONFIRM_STALE_MS };
    expect(claimTransfer(stuck, transfer.id, 'alice', 'upload', 1_000 + CONFIRM_STALE_MS - 1)).toMatchObject({ ok: false });
    expect(claimTransfer(stuck, transfer.id, 'alice', 'upload', 1_000 + CONFIRM_STALE_MS)).toMatchObject({ ok: true });
  });
});
