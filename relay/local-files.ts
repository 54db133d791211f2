/**
 * The stdio mode's transfers between the machine running the server ("local", as in the seed)
 * and a host. Uploads stream a local file into the host's atomic write. Downloads land in a
 * temporary file beside the local target and are linked into place (link() fails if the target
 * exists, so overwrite=false cannot clobber a file created meanwhile) or renamed over it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { failure, success, type Outcome } from '../shared/errors.ts';
import type { LocalTransferResult } from '../shared/file-types.ts';
import { statFile, streamFile, writeFileAtomic, type WriteRequest } from './file-ops.ts';
import { statInContainerFile, streamFromContainer, writeIntoContainer } from './container-files.ts';
import type { HostChannels } from './ssh-pool.ts';
import { formatCount } from '../shared/format-count.ts';

function nodeCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function localError(error: unknown, path: string, action: string): Outcome<never> {
  switch (nodeCode(error)) {
    case 'ENOENT':
      return failure('path_not_found', `Local path ${path} does not exist (${action}).`);
    case 'EACCES':
    case 'EPERM':
      return failure('permission_denied', `Permission denied for local path ${path} (${action}).`);
    case 'EISDIR':
      return failure('path_is_directory', `Local path ${path} is a directory.`);
    case 'ENOTDIR':
      return failure('not_a_directory', `A part of local path ${path} is not a directory.`);
    case 'EEXIST':
      return failure('already_exists', `Local file ${path} already exists. Pass overwrite=true to replace it.`);
    default:
      return failure('internal', `Local ${action} of ${path} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export interface UploadRequest {
  journal?: WriteRequest['journal'];
  /** remotePath is inside this Proxmox container on the host. */
  ctid?: string;
  onProgress?: (done: number, total: number) => void;
  localPath: string;
  remotePath: string;
  permissions?: number;
  overwrite: boolean;
  maxBytes: number;
}

export async function uploadFromLocal(pool: HostChannels, request: UploadRequest, signal: AbortSignal): Promise<Outcome<LocalTransferResult>> {
  const from = resolve(request.localPath);
  let size: number;
  try {
    const stats = await stat(from);
    if (stats.isDirectory()) return failure('path_is_directory', `Local path ${from} is a directory; give a file.`);
    size = stats.size;
  } catch (error) {
    return localError(error, from, 'read');
  }
  if (size > request.maxBytes) {
    return failure('file_too_large', `${from} is ${formatCount(size)} bytes, more than MAX_FILE_SIZE (${formatCount(request.maxBytes)}).`);
  }
  const write: WriteRequest = {
    path: request.remotePath,
    source: createReadStream(from, { highWaterMark: 64 * 1024 }),
    ...(request.journal ? { journal: request.journal } : {}),
    ...(request.onProgress ? { onProgress: request.onProgress, expectedSize: size } : {}),
    maxBytes: request.maxBytes,
    ...(request.permissions !== undefined ? { permissions: request.permissions } : {}),
    overwrite: request.overwrite,
    createDirs: false,
  };
  const written = request.ctid !== undefined ? await writeIntoContainer(pool, request.ctid, write, signal) : await writeFileAtomic(pool, write, signal);
  if (!written.ok) return written;
  return success({
    from,
    to: written.value.path,
    size: written.value.size,
    sha256: written.value.sha256,
    mode: written.value.mode,
    replaced: written.value.replaced,
  });
}

class GrewError extends Error {}

class RemoteError extends Error {
  readonly outcome: Outcome<never>;
  constructor(outcome: Outcome<never>) {
    super('remote read failed');
    this.outcome = outcome;
  }
}

export interface DownloadRequest {
  onProgress?: (done: number, total: number) => void;
  /** remotePath is inside this Proxmox container on the host. */
  ctid?: string;
  remotePath: string;
  localPath: string;
  overwrite: boolean;
  maxBytes: number;
}

export async function downloadToLocal(pool: HostChannels, request: DownloadRequest, signal: AbortSignal): Promise<Outcome<LocalTransferResult>> {
  const to = resolve(request.localPath);
  let replaced = false;
  // A new file gets the usual mode for new files; a replaced one keeps its own.
  let mode = 0o666 & ~process.umask();
  try {
    const existing = await stat(to);
    if (existing.isDirectory()) return failure('path_is_directory', `Local path ${to} is a directory; give a file name.`);
    if (!request.overwrite) return failure('already_exists', `Local file ${to} already exists. Pass overwrite=true to replace it.`);
    replaced = true;
    mode = existing.mode & 0o7777;
  } catch (error) {
    if (nodeCode(error) !== 'ENOENT') return localError(error, to, 'check');
  }
  const ctid = request.ctid;
  const stream: typeof streamFile = ctid !== undefined ? (on, read, onChunk, stop) => streamFromContainer(on, ctid, read, onChunk, stop) : streamFile;
  const remote = ctid !== undefined ? await statInContainerFile(pool, ctid, request.remotePath, signal) : await statFile(pool, request.remotePath, signal);
  if (!remote.ok) return remote;
  if (remote.value.type === 'directory') return failure('path_is_directory', `${request.remotePath} is a directory on the host.`);
  if (remote.value.size > request.maxBytes) {
    return failure(
      'file_too_large',
      `${request.remotePath} is ${formatCount(remote.value.size)} bytes, more than MAX_FILE_SIZE (${formatCount(request.maxBytes)}).`,
    );
  }
  // Streamed straight into a temporary file beside the target: memory stays at a few chunks.
  const temp = join(dirname(to), `.${basename(to)}.mre-${randomBytes(6).toString('hex')}.tmp`);
  const hash = createHash('sha256');
  let size = 0;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      // One byte more than the limit is asked for, so a file that grew meanwhile is noticed.
      const read = await stream(
        pool,
        { path: request.remotePath, offset: 0, length: request.maxBytes + 1, maxBytes: request.maxBytes + 1 },
        async (chunk) => {
          size += chunk.length;
          if (size > request.maxBytes) return false;
          hash.update(chunk);
          await handle.write(chunk);
          request.onProgress?.(size, remote.value.size);
          return true;
        },
        signal,
      );
      if (size > request.maxBytes) throw new GrewError();
      if (!read.ok) throw new RemoteError(read);
      if (!read.value.eof) throw new RemoteError(failure('ssh_error', `${request.remotePath} changed while it was read; nothing was written.`));
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (request.overwrite) await rename(temp, to);
    else {
      await link(temp, to);
      await unlink(temp);
    }
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    if (error instanceof GrewError) return failure('file_too_large', `${request.remotePath} grew past MAX_FILE_SIZE while it was read; nothing was written.`);
    if (error instanceof RemoteError) return error.outcome;
    return localError(error, nodeCode(error) === 'EEXIST' ? to : dirname(to), 'write');
  }
  return success({ from: request.remotePath, to, size, sha256: hash.digest('hex'), replaced });
}
