/**
 * Two-phase transfers through ImageKit, the same in the Worker and in the stdio mode; only where
 * the state is kept (a Durable Object, or files in the relay's state directory) and how bytes
 * reach the host differ, and both are passed in.
 *
 * Upload: request → single-use upload credentials for a folder of this transfer alone, and a
 * ready curl command; the client uploads; confirm → the one file in that folder (or the file id
 * given, checked to be in it) streams to the host with the usual atomic-write and overwrite
 * rules, is deleted from ImageKit, and the transfer closes. Download: request → the host file is
 * stored as a private file and the client gets a signed URL that expires; confirm deletes it.
 * Each transfer belongs to the user who asked, works once, and is cleaned up when it expires.
 */
import { randomBytes, toHex } from '../encoding.ts';
import { failure, success, type Outcome } from '../errors.ts';
import type { FileWriteResult } from '../file-types.ts';
import { MAX_UPLOAD_CREDENTIAL_SECONDS, type ImageKitConfig } from './config.ts';
import type { ImageKitService, StoredFile } from './service.ts';
import { formatCount } from '../format-count.ts';

export interface ImageKitTransfer {
  id: string;
  kind: 'upload' | 'download';
  /** Who asked: only they can confirm it. */
  ownerId: string;
  /** The host as the executor names it, and the path there (inside container ctid when set). */
  host: string;
  ctid?: string;
  path: string;
  permissions?: number;
  overwrite: boolean;
  /** The ImageKit folder of this transfer alone. */
  folder: string;
  /** download: the stored file. */
  fileId?: string;
  size?: number;
  createdAt: number;
  expiresAt: number;
  state: 'open' | 'confirming' | 'done';
  /** When the running confirm began: one cut off without releasing its claim is taken as failed after a while. */
  claimedAt?: number;
}

/** A confirm that has not finished or released its claim after this long is taken as cut off. */
export const CONFIRM_STALE_MS = 15 * 60_000;

/** Where transfers are kept. claim() moves an open transfer to confirming atomically, so a confirm runs once. */
export interface TransferStore {
  create(transfer: ImageKitTransfer): Promise<void>;
  claim(id: string, ownerId: string, kind: ImageKitTransfer['kind'], now: number): Promise<Outcome<ImageKitTransfer>>;
  /** The confirm worked: the transfer is done for good. */
  finish(id: string): Promise<void>;
  /** The confirm failed in a way the client can fix (e.g. the file was not uploaded yet): open again. */
  release(id: string): Promise<void>;
}

/** The same refusal for an unknown transfer and someone else's: nothing is revealed. */
export function unknownTransfer(id: string): Outcome<never> {
  return failure('transfer_closed', `There is no open transfer "${id}" of yours.`);
}

/** The state rules every store applies in claim(). */
export function claimTransfer(
  transfer: ImageKitTransfer | null | undefined,
  id: string,
  ownerId: string,
  kind: ImageKitTransfer['kind'],
  now: number,
): Outcome<ImageKitTransfer> {
  if (!transfer || transfer.ownerId !== ownerId) return unknownTransfer(id);
  if (transfer.kind !== kind)
    return failure(
      'invalid_argument',
      `Transfer "${id}" is ${transfer.kind === 'upload' ? 'an upload: confirm it with imagekit_confirm_upload' : 'a download: confirm it with imagekit_confirm_download'}.`,
    );
  if (transfer.state === 'done') return failure('transfer_closed', `Transfer "${id}" was already confirmed; a transfer works once.`);
  if (transfer.state === 'confirming' && now - (transfer.claimedAt ?? 0) < CONFIRM_STALE_MS)
    return failure('transfer_closed', `Transfer "${id}" is being confirmed by another call right now.`);
  if (now >= transfer.expiresAt)
    return failure(
      'transfer_closed',
      `Transfer "${id}" expired at ${new Date(transfer.expiresAt).toISOString()}; its files were or will be deleted from ImageKit.`,
    );
  return success(transfer);
}

/** How a transfer reaches the host: the executor's own file operations. */
export interface TransferHost {
  /** For an upload's request: may this path be written (no existing file unless overwrite)? */
  checkWritable(target: { host: string; ctid?: string; path: string; overwrite: boolean }): Promise<Outcome<{ host: string }>>;
  /** Write exactly `size` bytes from `body`, atomically, with the overwrite rule. */
  write(
    target: { host: string; ctid?: string; path: string; permissions?: number; overwrite: boolean },
    body: ReadableStream<Uint8Array>,
    size: number,
  ): Promise<Outcome<FileWriteResult & { host: string }>>;
  /** The whole file, refused over maxBytes. */
  read(target: { host: string; ctid?: string; path: string }, maxBytes: number): Promise<Outcome<{ host: string; data: Uint8Array }>>;
}

export interface ImageKitUploadOffer {
  transferId: string;
  host: string;
  ctid?: string;
  path: string;
  folder: string;
  fileName: string;
  uploadUrl: string;
  fields: {
    publicKey: string;
    signature: string;
    expire: number;
    token: string;
    fileName: string;
    folder: string;
    useUniqueFileName: 'false';
    isPrivateFile: 'true';
    overwriteFile: 'false';
  };
  /** When the upload credentials stop working (ImageKit enforces it), and when the transfer itself expires. */
  credentialsExpireAt: string;
  transferExpiresAt: string;
  maxBytes: number;
}

export interface ImageKitDownloadOffer {
  transferId: string;
  host: string;
  ctid?: string;
  path: string;
  size: number;
  /** Signed: it stops working at expiresAt. */
  url: string;
  expiresAt: string;
}

export interface ImageKitUploadDone {
  transferId: string;
  host: string;
  fileId: string;
  written: FileWriteResult & { host: string };
  deletedFromImageKit: boolean;
}

export interface ImageKitDownloadDone {
  transferId: string;
  host: string;
  deletedFromImageKit: boolean;
}

export interface BridgeContext {
  config: ImageKitConfig;
  service: ImageKitService;
  store: TransferStore;
  host: TransferHost;
  /** The caller: transfers are bound to them. */
  ownerId: string;
  maxFileSize: number;
  now?: () => number;
}

/** A new transfer's id, its own ImageKit folder, and when it expires. */
function newTransfer(context: BridgeContext): { id: string; folder: string; now: number; expiresAt: number } {
  const now = context.now?.() ?? Date.now();
  const id = toHex(randomBytes(16));
  const folder = `${context.config.folder === '/' ? '' : context.config.folder}/${id}`;
  return { id, folder, now, expiresAt: now + context.config.transferTimeoutSeconds * 1000 };
}

const optional = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> => (value !== undefined ? ({ [key]: value } as Record<K, V>) : {});

export async function requestUpload(
  context: BridgeContext,
  request: { host: string; ctid?: string; path: string; permissions?: number; overwrite: boolean },
): Promise<Outcome<ImageKitUploadOffer>> {
  // Refused now (an existing file, a missing directory), not after the client has uploaded.
  const writable = await context.host.checkWritable(request);
  if (!writable.ok) return writable;
  const { id, folder, now, expiresAt } = newTransfer(context);
  // ImageKit accepts credentials for less than an hour; the reported expiry is the real one.
  const credentialExpire = Math.floor(Math.min(expiresAt, now + MAX_UPLOAD_CREDENTIAL_SECONDS * 1000) / 1000);
  const credentials = context.service.uploadCredentials(credentialExpire);
  await context.store.create({
    id,
    kind: 'upload',
    ownerId: context.ownerId,
    host: writable.value.host,
    ...optional('ctid', request.ctid),
    path: request.path,
    ...optional('permissions', request.permissions),
    overwrite: request.overwrite,
    folder,
    createdAt: now,
    expiresAt,
    state: 'open',
  });
  return success({
    transferId: id,
    host: writable.value.host,
    ...optional('ctid', request.ctid),
    path: request.path,
    folder,
    fileName: id,
    uploadUrl: credentials.uploadUrl,
    // Private (no public URL while it waits) and never replacing anything already in the account.
    fields: {
      publicKey: credentials.publicKey,
      signature: credentials.signature,
      expire: credentials.expire,
      token: credentials.token,
      fileName: id,
      folder,
      useUniqueFileName: 'false',
      isPrivateFile: 'true',
      overwriteFile: 'false',
    },
    credentialsExpireAt: new Date(credentials.expire * 1000).toISOString(),
    transferExpiresAt: new Date(expiresAt).toISOString(),
    maxBytes: context.maxFileSize,
  });
}

/** The file of this transfer: the id given (checked to be in its folder), or the only file there. */
async function transferFile(context: BridgeContext, transfer: ImageKitTransfer, fileId: string | undefined): Promise<Outcome<StoredFile>> {
  if (fileId !== undefined) {
    const file = await context.service.details(fileId);
    if (!file.ok) return file;
    const parent = file.value?.filePath.slice(0, file.value.filePath.lastIndexOf('/'));
    if (!file.value || parent !== transfer.folder) return failure('path_not_found', `ImageKit file ${fileId} is not part of transfer ${transfer.id}.`);
    return success(file.value);
  }
  const files = await context.service.filesIn(transfer.folder);
  if (!files.ok) return files;
  if (files.value.length === 0)
    return failure('path_not_found', `Nothing has been uploaded for transfer ${transfer.id} yet: run the curl command first, then confirm.`);
  if (files.value.length > 1) {
    return failure(
      'invalid_argument',
      `Transfer ${transfer.id} has ${files.value.length} files in ImageKit (${files.value.map((file) => file.fileId).join(', ')}); say which with file_id.`,
    );
  }
  return success(files.value[0] as StoredFile);
}

export async function confirmUpload(context: BridgeContext, request: { transferId: string; fileId?: string }): Promise<Outcome<ImageKitUploadDone>> {
  const claimed = await context.store.claim(request.transferId, context.ownerId, 'upload', context.now?.() ?? Date.now());
  if (!claimed.ok) return claimed;
  const transfer = claimed.value;
  let finished = false;
  try {
    const file = await transferFile(context, transfer, request.fileId);
    if (!file.ok) return file;
    if (file.value.size > context.maxFileSize) {
      await context.service.delete(file.value.fileId);
      finished = true;
      return failure(
        'file_too_large',
        `The uploaded file is ${formatCount(file.value.size)} bytes, more than MAX_FILE_SIZE (${formatCount(context.maxFileSize)}); it was deleted from ImageKit and ${transfer.path} was not changed. This transfer is closed.`,
      );
    }
    const body = await context.service.open(file.value);
    if (!body.ok) return body;
    const written = await context.host.write(
      {
        host: transfer.host,
        ...optional('ctid', transfer.ctid),
        path: transfer.path,
        ...optional('permissions', transfer.permissions),
        overwrite: transfer.overwrite,
      },
      body.value,
      file.value.size,
    );
    if (!written.ok) return written;
    const deleted = await context.service.delete(file.value.fileId);
    finished = true;
    return success({ transferId: transfer.id, host: written.value.host, fileId: file.value.fileId, written: written.value, deletedFromImageKit: deleted.ok });
  } finally {
    if (finished) await context.store.finish(transfer.id);
    else await context.store.release(transfer.id);
  }
}

export async function requestDownload(context: BridgeContext, request: { host: string; ctid?: string; path: string }): Promise<Outcome<ImageKitDownloadOffer>> {
  const read = await context.host.read(request, context.maxFileSize);
  if (!read.ok) return read;
  const { id, folder, now, expiresAt } = newTransfer(context);
  const name =
    request.path
      .split('/')
      .pop()
      ?.replace(/[^A-Za-z0-9._-]/g, '_') || 'download';
  const stored = await context.service.upload(folder, name, read.value.data);
  if (!stored.ok) return stored;
  await context.store.create({
    id,
    kind: 'download',
    ownerId: context.ownerId,
    host: read.value.host,
    ...optional('ctid', request.ctid),
    path: request.path,
    overwrite: false,
    folder,
    fileId: stored.value.fileId,
    size: read.value.data.length,
    createdAt: now,
    expiresAt,
    state: 'open',
  });
  return success({
    transferId: id,
    host: read.value.host,
    ...optional('ctid', request.ctid),
    path: request.path,
    size: read.value.data.length,
    url: context.service.signedUrl(stored.value.filePath, context.config.transferTimeoutSeconds),
    expiresAt: new Date(expiresAt).toISOString(),
  });
}

export async function confirmDownload(context: BridgeContext, request: { transferId: string }): Promise<Outcome<ImageKitDownloadDone>> {
  const claimed = await context.store.claim(request.transferId, context.ownerId, 'download', context.now?.() ?? Date.now());
  if (!claimed.ok) return claimed;
  const deleted = claimed.value.fileId ? await context.service.delete(claimed.value.fileId) : await context.service.deleteFolderFiles(claimed.value.folder);
  if (!deleted.ok) {
    await context.store.release(request.transferId);
    return deleted;
  }
  await context.store.finish(request.transferId);
  return success({ transferId: request.transferId, host: claimed.value.host, deletedFromImageKit: true });
}

/** What expiry does for any store: delete whatever the transfer left in ImageKit. */
export async function cleanUpExpired(service: ImageKitService, transfer: ImageKitTransfer): Promise<Outcome<number>> {
  return service.deleteFolderFiles(transfer.folder);
}
