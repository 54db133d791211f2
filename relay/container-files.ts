/**
 * Files inside a Proxmox container, moved with `pct pull` / `pct push` through a host-side
 * temporary file. The relay makes that file in a private directory of its own (`mktemp -d`, mode
 * 0700: no path in it comes from a caller) and always removes the directory afterwards. The bytes
 * reach the host file over SFTP exactly as for any host file.
 *
 * A write lands atomically: `pct push` writes a staging file beside the target inside the
 * container, and a rename puts it in place (`mv`, which replaces) or a hard link does (`ln`, which
 * fails if the target exists, so without overwrite an existing file is never replaced).
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { failure, success, type Outcome } from '../shared/errors.ts';
import type { FileInfo } from '../shared/file-types.ts';
import {
  collectRead,
  octalMode,
  streamFile,
  writeFileAtomic,
  type CollectedRead,
  type ReadRequest,
  type StreamedRead,
  type WriteRequest,
  type WriteResult,
} from './file-ops.ts';
import { log } from './log.ts';
import { runArgv, type ArgvRun } from './proxmox-ops.ts';
import type { HostChannels } from './ssh-pool.ts';
import { formatCount } from '../shared/format-count.ts';

/** A file bigger than this is not pulled out of a container whole just to read part of it. */
export const MAX_CONTAINER_PULL_BYTES = 256 * 1024 * 1024;
const STEP_TIMEOUT_MS = 30_000;
const TRANSFER_TIMEOUT_MS = 10 * 60_000;
const TEMP_DIR = /^\/tmp\/mre-pct\.[A-Za-z0-9]{10}$/;

type Step = (argv: string[], timeoutMs?: number) => Promise<Outcome<ArgvRun>>;

/** Paths inside a container have no working directory to be relative to. */
function relativePath(path: string): Outcome<never> | null {
  return path.startsWith('/') ? null : failure('invalid_argument', `A path inside a container must be absolute (start with /), not "${path}".`);
}

function stepper(pool: HostChannels, signal: AbortSignal): Step {
  return (argv, timeoutMs = STEP_TIMEOUT_MS) => runArgv(pool, argv, timeoutMs, 16 * 1024, signal);
}

/** pct's own words, as an error: "No such file" becomes path_not_found, the rest guest_error. */
function pctFailed(what: string, run: ArgvRun): Outcome<never> {
  const said = (run.stderr.trim() || run.stdout.trim() || `exit code ${run.exitCode ?? 'none'}`).slice(0, 2000);
  if (run.timedOut) return failure('guest_error', `${what} did not finish in time.`);
  if (/no such file|does not exist/i.test(said) && !/configuration file/i.test(said)) return failure('path_not_found', `${what}: ${said}`);
  return failure('guest_error', `${what}: ${said}`);
}

/** Run `use` with a fresh private directory on the host, removed afterwards whatever happened. */
async function withHostTempDir<T>(pool: HostChannels, use: (dir: string) => Promise<Outcome<T>>): Promise<Outcome<T>> {
  // Its own time limit, not the caller's cancel: a directory made as the call is cancelled must still be removed.
  const made = await runArgv(pool, ['mktemp', '-d', '/tmp/mre-pct.XXXXXXXXXX'], STEP_TIMEOUT_MS, 4096, AbortSignal.timeout(STEP_TIMEOUT_MS));
  if (!made.ok) return made;
  const dir = made.value.stdout.trim();
  if (made.value.exitCode !== 0 || !TEMP_DIR.test(dir))
    return failure('guest_error', `Could not make a private temporary directory on the host: ${made.value.stderr.trim() || dir}`);
  try {
    return await use(dir);
  } finally {
    // Not the caller's signal: a cancelled transfer must still clean up.
    const removed = await runArgv(pool, ['rm', '-rf', '--', dir], STEP_TIMEOUT_MS, 4096, AbortSignal.timeout(STEP_TIMEOUT_MS));
    if (!removed.ok || removed.value.exitCode !== 0) log('warn', 'could not remove a host temporary directory', { host: pool.host.name, dir });
  }
}

interface ContainerFileInfo extends FileInfo {
  uid: string;
  gid: string;
}

/**
 * What is at a path inside the container (following symbolic links, as pct pull and mv do), or
 * null when nothing is there.
 */
async function statInContainer(step: Step, ctid: string, path: string): Promise<Outcome<ContainerFileInfo | null>> {
  const ran = await step(['pct', 'exec', ctid, '--', 'stat', '-L', '-c', '%s %a %Y %u %g %F', '--', path]);
  if (!ran.ok) return ran;
  if (ran.value.exitCode !== 0) {
    if (/no such file/i.test(ran.value.stderr)) return success(null);
    return pctFailed(`stat ${path} in container ${ctid}`, ran.value);
  }
  const match = /^(\d+) ([0-7]+) (\d+) (\d+) (\d+) (.+)$/.exec(ran.value.stdout.trim());
  if (!match?.[1] || !match[2] || !match[3] || !match[4] || !match[5] || !match[6])
    return failure('guest_error', `Unexpected answer from stat in container ${ctid}: ${ran.value.stdout.trim().slice(0, 200)}`);
  const kind = match[6];
  const type: FileInfo['type'] = kind.startsWith('regular') ? 'file' : kind === 'directory' ? 'directory' : kind === 'symbolic link' ? 'symlink' : 'other';
  return success({
    path,
    type,
    size: Number(match[1]),
    mode: octalMode(Number.parseInt(match[2], 8)),
    mtime: new Date(Number(match[3]) * 1000).toISOString(),
    uid: match[4],
    gid: match[5],
  });
}

export async function streamFromContainer(
  pool: HostChannels,
  ctid: string,
  request: ReadRequest,
  onChunk: (chunk: Buffer) => Promise<boolean>,
  signal: AbortSignal,
): Promise<StreamedRead> {
  const relative = relativePath(request.path);
  if (relative) return relative;
  const step = stepper(pool, signal);
  const found = await statInContainer(step, ctid, request.path);
  if (!found.ok) return found;
  if (!found.value) return failure('path_not_found', `${request.path} does not exist in container ${ctid}.`);
  if (found.value.type === 'directory') return failure('path_is_directory', `${request.path} is a directory in container ${ctid}.`);
  if (found.value.size > MAX_CONTAINER_PULL_BYTES) {
    return failure(
      'file_too_large',
      `${request.path} in container ${ctid} is ${formatCount(found.value.size)} bytes; files over ${formatCount(MAX_CONTAINER_PULL_BYTES)} bytes are not copied out of a container. Read parts of it with proxmox_container_exec_command (head, tail, grep).`,
    );
  }
  const info = found.value;
  const wanted = Math.max(0, Math.min(request.length, request.maxBytes, info.size - request.offset));
  // A check that the file is there (a link's probe reads nothing) needs no copy.
  if (wanted === 0) return success({ info, bytes: 0, offset: request.offset, eof: request.offset >= info.size });
  return withHostTempDir(pool, async (dir) => {
    const copy = `${dir}/file`;
    const pulled = await step(['pct', 'pull', ctid, request.path, copy], TRANSFER_TIMEOUT_MS);
    if (!pulled.ok) return pulled;
    // pct pull reports a failure inside its task on stderr and still exits 0 (leaving an empty file).
    if (pulled.value.exitCode !== 0 || pulled.value.stderr.trim() !== '') return pctFailed(`pct pull ${request.path} from container ${ctid}`, pulled.value);
    const streamed = await streamFile(pool, { ...request, path: copy }, onChunk, signal);
    return streamed.ok ? success({ ...streamed.value, info: { ...info, size: streamed.value.info.size } }) : streamed;
  });
}

/** What is at a path inside a container (path_not_found when nothing is). */
export async function statInContainerFile(pool: HostChannels, ctid: string, path: string, signal: AbortSignal): Promise<Outcome<FileInfo>> {
  const relative = relativePath(path);
  if (relative) return relative;
  const found = await statInContainer(stepper(pool, signal), ctid, path);
  if (!found.ok) return found;
  return found.value ? success(found.value) : failure('path_not_found', `${path} does not exist in container ${ctid}.`);
}

/** Read a range of a container file into memory (for results returned in a call). */
export async function readFromContainer(pool: HostChannels, ctid: string, request: ReadRequest, signal: AbortSignal): Promise<CollectedRead> {
  return collectRead((onChunk) => streamFromContainer(pool, ctid, request, onChunk, signal));
}

export async function writeIntoContainer(pool: HostChannels, ctid: string, request: WriteRequest, signal: AbortSignal): Promise<Outcome<WriteResult>> {
  const relative = relativePath(request.path);
  if (relative) return relative;
  const step = stepper(pool, signal);
  const existing = await statInContainer(step, ctid, request.path);
  if (!existing.ok) return existing;
  if (existing.value?.type === 'directory') return failure('path_is_directory', `${request.path} is a directory in container ${ctid}.`);
  if (existing.value && !request.overwrite) return failure('already_exists', `${request.path} already exists in container ${ctid}.`);
  const dir = posix.dirname(request.path);
  const parent = await statInContainer(step, ctid, dir);
  if (!parent.ok) return parent;
  if (!parent.value) {
    if (!request.createDirs) return failure('path_not_found', `The directory ${dir} does not exist in container ${ctid}. Pass create_dirs=true to create it.`);
    const made = await step(['pct', 'exec', ctid, '--', 'mkdir', '-p', '--', dir]);
    if (!made.ok) return made;
    if (made.value.exitCode !== 0) return pctFailed(`mkdir ${dir} in container ${ctid}`, made.value);
  } else if (parent.value.type !== 'directory') {
    return failure('not_a_directory', `${dir} is not a directory in container ${ctid}.`);
  }
  // As for host files (finalMode): the given mode, else the replaced file's mode and owner, else
  // pct push's own default for a new file, 0666 less the umask (no --perms).
  const mode = request.permissions ?? (existing.value ? Number.parseInt(existing.value.mode, 8) & 0o7777 : null);
  const owner = existing.value ? ['--user', existing.value.uid, '--group', existing.value.gid] : [];
  return withHostTempDir(pool, async (hostDir) => {
    // The bytes land on the host first, checked and hashed as for any write.
    const staged = await writeFileAtomic(pool, { ...request, path: `${hostDir}/upload`, overwrite: true, createDirs: false, permissions: 0o600 }, signal);
    if (!staged.ok) return staged;
    const staging = posix.join(dir, `.${posix.basename(request.path)}.mre-${randomBytes(6).toString('hex')}`);
    const perms = mode === null ? [] : ['--perms', mode.toString(8).padStart(4, '0')];
    const pushed = await step(['pct', 'push', ctid, `${hostDir}/upload`, staging, ...perms, ...owner], TRANSFER_TIMEOUT_MS);
    if (!pushed.ok) return pushed;
    // pct push, too, can fail with exit 0 (its task's error is only on stderr): check what landed.
    const landed = pushed.value.exitCode === 0 && pushed.value.stderr.trim() === '' ? await statInContainer(step, ctid, staging) : null;
    if (!landed?.ok || landed.value?.size !== staged.value.size) {
      await runArgv(pool, ['pct', 'exec', ctid, '--', 'rm', '-f', '--', staging], STEP_TIMEOUT_MS, 4096, AbortSignal.timeout(STEP_TIMEOUT_MS));
      return landed && !landed.ok ? landed : pctFailed(`pct push to ${request.path} in container ${ctid}`, pushed.value);
    }
    const commit = request.overwrite
      ? ['pct', 'exec', ctid, '--', 'mv', '-f', '--', staging, request.path]
      : ['pct', 'exec', ctid, '--', 'ln', '--', staging, request.path];
    const placed = await step(commit);
    // The staging file goes whatever happened (after ln it is the second name of the new file).
    const cleaned = await runArgv(pool, ['pct', 'exec', ctid, '--', 'rm', '-f', '--', staging], STEP_TIMEOUT_MS, 4096, AbortSignal.timeout(STEP_TIMEOUT_MS));
    if (!cleaned.ok || cleaned.value.exitCode !== 0) log('warn', 'could not remove a staging file in a container', { host: pool.host.name, ctid });
    if (!placed.ok) return placed;
    if (placed.value.exitCode !== 0) {
      if (!request.overwrite && /exists/i.test(placed.value.stderr)) return failure('already_exists', `${request.path} already exists in container ${ctid}.`);
      return pctFailed(`placing ${request.path} in container ${ctid}`, placed.value);
    }
    // mv and ln put the file *inside* a directory that appeared at the path meanwhile: check it is there as a file.
    const final = await statInContainer(step, ctid, request.path);
    if (!final.ok) return final;
    if (final.value?.type !== 'file' || final.value.size !== staged.value.size) {
      return failure('guest_error', `${request.path} in container ${ctid} is not the file just written (it changed while it was written); check it.`);
    }
    return success({ path: request.path, size: staged.value.size, sha256: staged.value.sha256, mode: final.value.mode, replaced: existing.value !== null });
  });
}
