/**
 * File work on a host over SFTP only: no shell is involved, so no path is ever interpreted by
 * one. Writes are atomic: bytes go to a temporary file beside the target (created exclusively,
 * mode 0600), are checked (size) and hashed (SHA-256), given their permissions, and only then
 * renamed into place. Permissions never loosen (the one rule, in finalMode): `permissions` when
 * given; else a replaced file keeps its mode and owner; else a new file gets the SSH user's
 * default, 0666 less the umask of the SFTP server (the temporary file is created with 0666 for
 * that, so the server's umask decides). Without overwrite the rename is OpenSSH's plain SFTP rename, which is
 * link()-based and fails if the target exists, so of two concurrent writers exactly one wins;
 * with overwrite it is posix-rename@openssh.com, which replaces the target atomically. On any
 * failure the temporary file is removed and the target is left as it was.
 */
import { createHash, randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import { failure, success, type Outcome, type ToolError } from '../shared/errors.ts';
import { ABORTED, unlessAborted } from '../shared/unless-aborted.ts';
import type { FileInfo } from '../shared/file-types.ts';
import { sftpError } from './ssh-errors.ts';
import type { HostChannels } from './ssh-pool.ts';
import { formatCount } from '../shared/format-count.ts';

/** Bytes per SFTP read; OpenSSH's sftp-server answers reads of up to 256 KiB. */
const READ_CHUNK = 64 * 1024;
/** SFTP reads kept in flight. */
const READ_AHEAD = 8;
/**
 * Bytes per SFTP write, and writes kept in flight. The size matches the relay's chunks and a local
 * file stream's reads, so a chunk is written as it came, without gathering (copying) it first.
 */
const WRITE_BLOCK = 64 * 1024;
const WRITES_IN_FLIGHT = 16;
/** Bound on each clean-up step of an abandoned write. */
const ABANDON_STEP_MS = 2_000;

/** SFTP status code for end of file / end of directory. */
const SFTP_EOF = 1;

function field(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null && name in error ? (error as Record<string, unknown>)[name] : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Entries returned by a directory listing at most. */
export const MAX_DIRECTORY_ENTRIES = 1000;

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/**
 * Requests waiting for an answer, per SFTP session: ssh2 drops requests whose session closed
 * without calling back, so one close listener per session fails them all. (Racing each request
 * against a long-lived "closed" promise instead would attach a reaction per request that lives
 * as long as the session, keeping every result, and every chunk of a large transfer, reachable.)
 */
const waiting = new WeakMap<SFTPWrapper, Set<(error: Error) => void>>();
const closedSessions = new WeakSet<SFTPWrapper>();

function waitersOf(sftp: SFTPWrapper): Set<(error: Error) => void> {
  let set = waiting.get(sftp);
  if (!set) {
    const waiters = new Set<(error: Error) => void>();
    const failAll = (reason: string) => (): void => {
      closedSessions.add(sftp);
      for (const fail of [...waiters]) fail(new Error(reason));
      waiters.clear();
    };
    sftp.once('close', failAll('the SFTP session closed'));
    sftp.once('end', failAll('the SFTP session ended'));
    waiting.set(sftp, waiters);
    set = waiters;
  }
  return set;
}

/**
 * One SFTP request as a promise that always settles: with the server's answer, with an error
 * when the session closes first, or with the error ssh2 throws synchronously (e.g. an extension
 * the server lacks).
 */
function call<T>(
  sftp: SFTPWrapper,
  run: (done: (error: Error | null | undefined, value: T) => void) => void,
): Promise<{ error: Error | null; value: T | undefined }> {
  return new Promise((resolve) => {
    if (closedSessions.has(sftp)) {
      resolve({ error: new Error('the SFTP session closed'), value: undefined });
      return;
    }
    const waiters = waitersOf(sftp);
    const settle = (result: { error: Error | null; value: T | undefined }): void => {
      waiters.delete(onClosed);
      resolve(result);
    };
    const onClosed = (error: Error): void => settle({ error, value: undefined });
    waiters.add(onClosed);
    try {
      run((error, value) => settle({ error: error ?? null, value: error ? undefined : value }));
    } catch (error) {
      settle({ error: error instanceof Error ? error : new Error(String(error)), value: undefined });
    }
  });
}

function typeOf(mode: number): FileInfo['type'] {
  const kind = mode & S_IFMT;
  if (kind === S_IFDIR) return 'directory';
  if (kind === S_IFREG) return 'file';
  if (kind === S_IFLNK) return 'symlink';
  return 'other';
}

export function octalMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

function info(path: string, stats: Stats): FileInfo {
  return { path, type: typeOf(stats.mode), size: stats.size, mode: octalMode(stats.mode), mtime: new Date(stats.mtime * 1000).toISOString() };
}

async function stat(sftp: SFTPWrapper, path: string): Promise<Outcome<Stats>> {
  const result = await call<Stats>(sftp, (done) => sftp.stat(path, done));
  if (result.error || !result.value) return { ok: false, error: sftpError(result.error, path, 'stat') };
  return success(result.value);
}

async function withSftp<T>(pool: HostChannels, signal: AbortSignal, work: (sftp: SFTPWrapper) => Promise<Outcome<T>>): Promise<Outcome<T>> {
  const session = await pool.sftp(signal);
  if (!session.ok) return session;
  try {
    return await work(session.value.sftp);
  } finally {
    session.value.end();
  }
}

export async function listDirectory(
  pool: HostChannels,
  path: string,
  signal: AbortSignal,
): Promise<Outcome<{ path: string; entries: FileInfo[]; truncated: boolean }>> {
  return withSftp(pool, signal, async (sftp) => {
    const target = await stat(sftp, path);
    if (!target.ok) return target;
    if (typeOf(target.value.mode) !== 'directory') return failure('not_a_directory', `${path} is not a directory.`);
    // Read in batches and stop past the cap: a directory of a million entries must not be
    // loaded whole into the relay's memory.
    const opened = await call<Buffer>(sftp, (done) => sftp.opendir(path, done));
    if (opened.error || !opened.value) return { ok: false, error: sftpError(opened.error, path, 'open directory') };
    const handle = opened.value;
    const collected: Array<{ filename: string; attrs: Stats }> = [];
    try {
      while (collected.length <= MAX_DIRECTORY_ENTRIES) {
        const batch = await call<Array<{ filename: string; attrs: Stats }> | false>(sftp, (done) => sftp.readdir(handle, (error, list) => done(error, list)));
        if (batch.error) {
          if (field(batch.error, 'code') === SFTP_EOF) break;
          return { ok: false, error: sftpError(batch.error, path, 'list') };
        }
        if (!batch.value || batch.value.length === 0) break;
        collected.push(...batch.value.filter((entry) => entry.filename !== '.' && entry.filename !== '..'));
      }
    } finally {
      sftp.close(handle, () => undefined);
    }
    const entries = collected.sort((a, b) => a.filename.localeCompare(b.filename)).map((entry) => info(entry.filename, entry.attrs));
    return success({ path, entries: entries.slice(0, MAX_DIRECTORY_ENTRIES), truncated: entries.length > MAX_DIRECTORY_ENTRIES });
  });
}

export interface ReadRequest {
  path: string;
  offset: number;
  /** Bytes wanted; at most maxBytes are read. */
  length: number;
  maxBytes: number;
}

/**
 * Read a range of a file chunk by chunk, handing each chunk on before reading the next, so
 * memory stays at a few chunks however large the file. `onChunk` returns false to stop. The
 * chunk's buffer is reused once `onChunk` settles: keep a copy, not the chunk, if it must last.
 */
export async function streamFile(
  pool: HostChannels,
  request: ReadRequest,
  onChunk: (chunk: Buffer) => Promise<boolean>,
  signal: AbortSignal,
): Promise<StreamedRead> {
  return withSftp(pool, signal, async (sftp) => {
    const opened = await call<Buffer>(sftp, (done) => sftp.open(request.path, 'r', done));
    if (opened.error || !opened.value) return { ok: false, error: sftpError(opened.error, request.path, 'open') };
    const handle = opened.value;
    try {
      const stats = await call<Stats>(sftp, (done) => sftp.fstat(handle, done));
      if (stats.error || !stats.value) return { ok: false, error: sftpError(stats.error, request.path, 'stat') };
      const fileInfo = info(request.path, stats.value);
      if (fileInfo.type === 'directory') return failure('path_is_directory', `${request.path} is a directory.`);
      const wanted = Math.max(0, Math.min(request.length, request.maxBytes, fileInfo.size - request.offset));
      const end = request.offset + wanted;
      // Several reads in flight (as ssh2's fastGet does), delivered in order: one round trip per
      // chunk would cap throughput at chunk size / latency.
      const ahead: Array<Promise<{ error: Error | null; full: Buffer; buffer: Buffer; bytes: number }>> = [];
      // Buffers handed back after their chunk was passed on: a large file is read into the same
      // few buffers, instead of making garbage that costs the collector more than the read.
      const spare: Buffer[] = [];
      let next = request.offset;
      const readAhead = (): void => {
        while (ahead.length < READ_AHEAD && next < end) {
          const position = next;
          // Unzeroed: only the bytes the server returned are ever passed on.
          const full = spare.pop() ?? Buffer.allocUnsafe(READ_CHUNK);
          const buffer = full.subarray(0, Math.min(READ_CHUNK, end - position));
          next += buffer.length;
          ahead.push(
            call<number>(sftp, (finish) => sftp.read(handle, buffer, 0, buffer.length, position, (error, bytesRead) => finish(error, bytesRead))).then(
              (read) => ({
                error: read.error,
                full,
                buffer,
                bytes: read.value ?? 0,
              }),
            ),
          );
        }
      };
      let done = 0;
      readAhead();
      for (let read = ahead.shift(); read; read = ahead.shift()) {
        const result = await read;
        if (signal.aborted) return failure('cancelled', 'The read was cancelled.');
        if (result.error) return { ok: false, error: sftpError(result.error, request.path, 'read') };
        if (result.bytes > 0) {
          done += result.bytes;
          if (!(await onChunk(result.buffer.subarray(0, result.bytes)))) return failure('cancelled', 'The reader stopped before the end.');
        }
        spare.push(result.full);
        // A short read means the file ended early (it shrank): stop there.
        if (result.bytes < result.buffer.length) break;
        readAhead();
      }
      return success({ info: fileInfo, bytes: done, offset: request.offset, eof: request.offset + done >= fileInfo.size });
    } finally {
      sftp.close(handle, () => undefined);
    }
  });
}

export type StreamedRead = Outcome<{ info: FileInfo; bytes: number; offset: number; eof: boolean }>;
export type CollectedRead = Outcome<{ info: FileInfo; data: Buffer; offset: number; eof: boolean }>;

/** Keep what a streaming read hands on, in memory (copies: the reader reuses its buffers). */
export async function collectRead(read: (onChunk: (chunk: Buffer) => Promise<boolean>) => Promise<StreamedRead>): Promise<CollectedRead> {
  const chunks: Buffer[] = [];
  const streamed = await read(async (chunk) => {
    chunks.push(Buffer.from(chunk));
    return true;
  });
  if (!streamed.ok) return streamed;
  return success({ info: streamed.value.info, data: Buffer.concat(chunks), offset: streamed.value.offset, eof: streamed.value.eof });
}

/** Read a range of a file into memory (for results returned in a call, at most maxBytes). */
export async function readFile(pool: HostChannels, request: ReadRequest, signal: AbortSignal): Promise<CollectedRead> {
  return collectRead((onChunk) => streamFile(pool, request, onChunk, signal));
}

export interface WriteRequest {
  path: string;
  /** The bytes, in chunks: a Buffer for content given in a call, a stream for uploads. */
  source: AsyncIterable<Uint8Array> | Uint8Array;
  maxBytes: number;
  /** e.g. 0o644; when absent a new file gets 0666 less the host's umask and a replaced one keeps its mode and owner. */
  permissions?: number;
  overwrite: boolean;
  createDirs: boolean;
  /** Told the bytes written so far and the expected total, when it is known. */
  onProgress?: (done: number, total: number) => void;
  expectedSize?: number;
  /** Records the temporary file until it is renamed into place or deleted. */
  journal?: { add(path: string): void; remove(path: string): void; deleteLater(path: string): void };
}

export interface WriteResult {
  path: string;
  size: number;
  sha256: string;
  mode: string;
  replaced: boolean;
}

async function* chunksOf(source: AsyncIterable<Uint8Array> | Uint8Array): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) yield source;
  else yield* source;
}

/** Make each missing directory of `dir`, like mkdir -p. */
async function makeDirectories(sftp: SFTPWrapper, dir: string): Promise<Outcome<void>> {
  const parts = dir.split('/');
  let current = dir.startsWith('/') ? '/' : '';
  for (const part of parts) {
    if (part === '') continue;
    current = current === '' ? part : posix.join(current, part);
    const existing = await call<Stats>(sftp, (done) => sftp.stat(current, done));
    if (existing.value) {
      if (typeOf(existing.value.mode) !== 'directory') return failure('not_a_directory', `${current} exists and is not a directory.`);
      continue;
    }
    const made = await call<undefined>(sftp, (done) => sftp.mkdir(current, { mode: 0o777 }, (error) => done(error, undefined)));
    if (made.error) {
      // Another writer may have created it in the meantime.
      const again = await call<Stats>(sftp, (done) => sftp.stat(current, done));
      if (!again.value || typeOf(again.value.mode) !== 'directory') return { ok: false, error: sftpError(made.error, current, 'mkdir') };
    }
  }
  return success(undefined);
}

/** Check the target and its directory before any byte is written. */
interface Existing {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * The mode a written file ends with: the caller's, else the replaced file's, else what the host
 * gave the new file (its umask). Host files and container files both decide here.
 */
export function finalMode(permissions: number | undefined, existingMode: number | null, createdMode: number): number {
  return permissions ?? existingMode ?? createdMode & 0o7777;
}

async function prepareTarget(sftp: SFTPWrapper, request: WriteRequest): Promise<Outcome<{ existing: Existing | null }>> {
  const target = await call<Stats>(sftp, (done) => sftp.stat(request.path, done));
  if (target.value) {
    if (typeOf(target.value.mode) === 'directory') return failure('path_is_directory', `${request.path} is a directory.`);
    if (!request.overwrite) return failure('already_exists', `${request.path} already exists.`);
    return success({ existing: { mode: target.value.mode & 0o7777, uid: target.value.uid, gid: target.value.gid } });
  }
  const missing = sftpError(target.error, request.path, 'stat');
  if (missing.code !== 'path_not_found') return { ok: false, error: missing };
  const dir = posix.dirname(request.path);
  const parent = await call<Stats>(sftp, (done) => sftp.stat(dir, done));
  if (parent.value) {
    return typeOf(parent.value.mode) === 'directory' ? success({ existing: null }) : failure('not_a_directory', `${dir} is not a directory.`);
  }
  const parentError = sftpError(parent.error, dir, 'stat');
  if (parentError.code !== 'path_not_found') return { ok: false, error: parentError };
  if (!request.createDirs) return failure('path_not_found', `The directory ${dir} does not exist. Pass create_dirs=true to create it.`);
  const made = await makeDirectories(sftp, dir);
  return made.ok ? success({ existing: null }) : made;
}

export async function writeFileAtomic(pool: HostChannels, request: WriteRequest, signal: AbortSignal): Promise<Outcome<WriteResult>> {
  return withSftp(pool, signal, async (sftp) => {
    const prepared = await prepareTarget(sftp, request);
    if (!prepared.ok) return prepared;
    const dir = posix.dirname(request.path);
    const temp = posix.join(dir, `.${posix.basename(request.path)}.mre-${randomBytes(6).toString('hex')}.tmp`);
    request.journal?.add(temp);
    const existing = prepared.value.existing;
    // A new file with no mode given is created 0666 so the server's umask decides (and the bytes
    // are then no more readable than the finished file will be); otherwise 0600 until the end.
    const createMode = request.permissions === undefined && existing === null ? 0o666 : 0o600;
    const opened = await call<Buffer>(sftp, (done) => sftp.open(temp, 'wx', { mode: createMode }, done));
    if (opened.error || !opened.value) {
      request.journal?.remove(temp);
      return { ok: false, error: sftpError(opened.error, temp, 'create a temporary file for') };
    }
    const handle = opened.value;
    let closed = false;
    const close = async (): Promise<Error | null> => {
      if (closed) return null;
      closed = true;
      return (await call<undefined>(sftp, (done) => sftp.close(handle, (error) => done(error, undefined)))).error;
    };
    const abandon = async (error: ToolError): Promise<Outcome<WriteResult>> => {
      // On a dead connection these may never answer; do not hang on them.
      await Promise.race([close(), sleep(ABANDON_STEP_MS)]);
      const removed = await Promise.race([
        call<undefined>(sftp, (done) => sftp.unlink(temp, (unlinkError) => done(unlinkError, undefined))),
        sleep(ABANDON_STEP_MS).then(() => ({ error: new Error('no answer'), value: undefined })),
      ]);
      if (!removed.error || sftpError(removed.error, temp, 'delete').code === 'path_not_found') request.journal?.remove(temp);
      // The connection may be gone: delete it over a new one shortly.
      else request.journal?.deleteLater(temp);
      return { ok: false, error };
    };
    const hash = createHash('sha256');
    let written = 0;
    // Incoming chunks are gathered into blocks and several block writes are kept in flight, so
    // throughput is not one round trip per chunk.
    const inFlight = new Set<Promise<void>>();
    let writeError: ToolError | null = null;
    let gathered: Buffer[] = [];
    let gatheredBytes = 0;
    let position = 0;
    const writeBlock = async (): Promise<void> => {
      if (gatheredBytes === 0) return;
      while (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
      const block = gathered.length === 1 && gathered[0] ? gathered[0] : Buffer.concat(gathered, gatheredBytes);
      const at = position;
      position += block.length;
      gathered = [];
      gatheredBytes = 0;
      const pending: Promise<void> = call<undefined>(sftp, (done) => sftp.write(handle, block, 0, block.length, at, (error) => done(error, undefined))).then(
        (result) => {
          if (result.error) {
            writeError ??= sftpError(result.error, temp, 'write');
            writeFailed.abort();
          }
        },
      );
      inFlight.add(pending);
      void pending.finally(() => inFlight.delete(pending));
    };
    // A failed write stops the wait for more input at once (the sender may never send more).
    const writeFailed = new AbortController();
    const iterator = chunksOf(request.source)[Symbol.asyncIterator]();
    let drained = false;
    try {
      for (;;) {
        const next = await unlessAborted(iterator.next(), writeFailed.signal);
        if (next === ABORTED) {
          void iterator.return?.();
          return await abandon(writeError ?? { code: 'ssh_error', message: 'A write failed.' });
        }
        if (next.done) {
          drained = true;
          break;
        }
        const chunk = next.value;
        if (signal.aborted) return await abandon({ code: 'cancelled', message: 'The write was cancelled; the target was not changed.' });
        if (writeError) return await abandon(writeError);
        if (written + chunk.length > request.maxBytes) {
          return await abandon({
            code: 'file_too_large',
            message: `The content is larger than ${formatCount(request.maxBytes)} bytes (MAX_FILE_SIZE); ${request.path} was not changed.`,
          });
        }
        const buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        hash.update(buffer);
        written += buffer.length;
        gathered.push(buffer);
        gatheredBytes += buffer.length;
        if (gatheredBytes >= WRITE_BLOCK) await writeBlock();
        if (request.expectedSize !== undefined) request.onProgress?.(written, request.expectedSize);
      }
      await writeBlock();
      await Promise.all(inFlight);
      if (writeError) return await abandon(writeError);
    } catch (error) {
      await Promise.allSettled(inFlight);
      // The source itself failed (e.g. a local file became unreadable, or an upload broke off).
      return abandon({
        code: 'ssh_error',
        message: `Reading the content failed: ${error instanceof Error ? error.message : String(error)}; ${request.path} was not changed.`,
      });
    } finally {
      // Release the source (e.g. close a local file) when the write stopped early.
      if (!drained) void iterator.return?.()?.catch(() => undefined);
    }
    const stats = await call<Stats>(sftp, (done) => sftp.fstat(handle, done));
    if (stats.error || !stats.value) return abandon(sftpError(stats.error, temp, 'verify'));
    if (stats.value.size !== written) {
      return abandon({ code: 'ssh_error', message: `The host stored ${stats.value.size} bytes instead of ${written}; ${request.path} was not changed.` });
    }
    const mode = finalMode(request.permissions, existing?.mode ?? null, stats.value.mode);
    if (existing && (existing.uid !== stats.value.uid || existing.gid !== stats.value.gid)) {
      // Before chmod: chown clears set-id bits. Only root (or a group member, for the group) can do this.
      const chown = await call<undefined>(sftp, (done) => sftp.fchown(handle, existing.uid, existing.gid, (error) => done(error, undefined)));
      if (chown.error) {
        return abandon({
          code: 'permission_denied',
          message: `${request.path} belongs to uid ${existing.uid} / gid ${existing.gid}; the SSH user cannot give the new content that owner, so ${request.path} was not changed.`,
        });
      }
    }
    const chmod = await call<undefined>(sftp, (done) => sftp.fchmod(handle, mode, (error) => done(error, undefined)));
    if (chmod.error)
      return abandon({
        ...sftpError(chmod.error, request.path, `chmod ${octalMode(mode)}`),
        message: `Setting permissions ${octalMode(mode)} failed; ${request.path} was not changed.`,
      });
    const closeError = await close();
    if (closeError) return abandon(sftpError(closeError, temp, 'close'));
    const renamed = await call<undefined>(sftp, (done) =>
      request.overwrite
        ? sftp.ext_openssh_rename(temp, request.path, (error) => done(error, undefined))
        : sftp.rename(temp, request.path, (error) => done(error, undefined)),
    );
    if (renamed.error) {
      const exists = await call<Stats>(sftp, (done) => sftp.stat(request.path, done));
      if (!request.overwrite && exists.value)
        return abandon({ code: 'already_exists', message: `${request.path} already exists (another writer created it first).` });
      return abandon(sftpError(renamed.error, request.path, 'rename into place'));
    }
    request.journal?.remove(temp);
    return success({ path: request.path, size: written, sha256: hash.digest('hex'), mode: octalMode(mode), replaced: existing !== null });
  });
}

/** Delete a leftover temporary file; true when it is gone (or was never there). */
export async function deleteLeftover(pool: HostChannels, path: string, signal: AbortSignal): Promise<boolean> {
  const outcome = await withSftp(pool, signal, async (sftp) => {
    const removed = await call<undefined>(sftp, (done) => sftp.unlink(path, (error) => done(error, undefined)));
    if (!removed.error) return success(true);
    const error = sftpError(removed.error, path, 'delete');
    return error.code === 'path_not_found' ? success(true) : { ok: false as const, error };
  });
  return outcome.ok;
}

/** Type, size, mode and mtime of a path (following symlinks). */
export async function statFile(pool: HostChannels, path: string, signal: AbortSignal): Promise<Outcome<FileInfo>> {
  return withSftp(pool, signal, async (sftp) => {
    const stats = await stat(sftp, path);
    return stats.ok ? success(info(path, stats.value)) : stats;
  });
}
