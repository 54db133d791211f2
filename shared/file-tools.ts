/**
 * The file tools: schemas, descriptions and formatting, written once. A tool is offered only when
 * the executor can do it (the stdio mode does all of them; the Worker gains them when the relay
 * protocol carries file bytes).
 */
import type { CallToolResult, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { schemaOnce } from './schema-once.ts';
import { cutAt } from './exec-output.ts';
import { guestIdSchema } from './proxmox.ts';
import { hostArgument, type ToolSettings } from './tool-catalog.ts';
import type { Outcome } from './errors.ts';
import type { LocalTransferResult } from './file-types.ts';
import type { DownloadFileRequest, LinkOffer, ProgressReporter, ToolExecutor, UploadFileRequest } from './tool-executor.ts';
import { errorResult } from './tool-results.ts';
import { registerTool } from './tool-registration.ts';
import { formatCount } from './format-count.ts';

export const MAX_PATH_LENGTH = 4096;

function pathArgument(name: string, what: string) {
  return z
    .string({ error: `${name} must be a string` })
    .min(1, `${name} must not be empty`)
    .max(MAX_PATH_LENGTH, `${name} must be at most ${MAX_PATH_LENGTH} characters`)
    .refine((value) => !value.includes('\0'), `${name} must not contain NUL bytes`)
    .describe(what);
}

const remotePath = (name: string) => pathArgument(name, "Path on the host: absolute, or relative to the SSH user's home directory.");
export const localPathArgument = (name: string) => pathArgument(name, 'Path on the machine running this server (stdio mode).');
const localPath = localPathArgument;

/** A path inside one of the host's Proxmox containers instead of on the host itself. */
const ctidArgument = guestIdSchema
  .optional()
  .describe(
    'Proxmox container id (e.g. 101): the path is inside that LXC container on the host, moved with pct push/pull. Only on hosts marked as Proxmox VE.',
  );

/** The optional fields of a request, present only when given (exactOptionalPropertyTypes). */
function given<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value !== undefined ? ({ [key]: value } as Record<K, V>) : {};
}

/** Octal digits as in the seed (644, 0600, 755), given as a number or a string. */
export const permissionsArgument = z
  .union([z.number(), z.string()], { error: 'permissions must be octal digits such as 644, 0600 or 755' })
  .transform((value, context) => {
    const digits = typeof value === 'number' ? (Number.isInteger(value) && value >= 0 ? String(value) : '') : value.trim();
    if (!/^[0-7]{3,4}$/.test(digits)) {
      context.addIssue({ code: 'custom', message: `permissions must be octal digits such as 644, 0600 or 755, not ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return Number.parseInt(digits, 8);
  })
  .optional()
  .describe(
    'Octal permissions such as 644 (rw-r--r--), 600 or 755. Without it a new file gets the SSH user default (0666 less the umask, usually 644) and a replaced file keeps its mode and owner.',
  );

export const overwriteArgument = z
  .boolean({ error: 'overwrite must be true or false' })
  .default(false)
  .describe('Replace an existing file. Default false: an existing file is an error and nothing changes.');

export function readFileInput() {
  return schemaOnce('ssh_read_file', buildReadFileInput);
}

function buildReadFileInput() {
  return z
    .object({
      path: remotePath('path'),
      host: hostArgument,
      ctid: ctidArgument,
      encoding: z
        .enum(['auto', 'utf8', 'base64'], { error: 'encoding must be "auto", "utf8" or "base64"' })
        .default('auto')
        .describe('"auto": text when the bytes are valid UTF-8, else base64. "utf8": always text. "base64": always base64.'),
      offset: z.number({ error: 'offset must be a number of bytes' }).int('offset must be a whole number').min(0, 'offset must not be negative').default(0),
      length: z.number({ error: 'length must be a number of bytes' }).int('length must be a whole number').min(1, 'length must be at least 1').optional(),
    })
    .strict();
}

export const readFileOutput = z.object({
  host: z.string(),
  path: z.string(),
  size: z.number(),
  mode: z.string(),
  mtime: z.string(),
  offset: z.number(),
  bytes: z.number(),
  encoding: z.enum(['utf8', 'base64']),
  content: z.string(),
  truncated: z.boolean(),
  next_offset: z.number().nullable(),
});

/** The most ssh_write_file writes in one call: the transport's limit, never more than MAX_FILE_SIZE. */
export function writeLimit(settings: FileToolSettings): number {
  return Math.min(settings.writeBytesPerCall, settings.maxFileSize);
}

/** What to say when content is over the in-call limit, naming the tool that takes larger files here. */
function writeTooLarge(settings: FileToolSettings, size: number, largerFiles: string | null): string {
  const limit = writeLimit(settings);
  const limitName = limit < settings.maxFileSize ? 'the in-call write limit' : 'MAX_FILE_SIZE';
  return (
    `The content is ${formatCount(size)} bytes, more than ${limitName} (${formatCount(limit)} bytes); nothing was written.` +
    (largerFiles ? ` ${largerFiles}` : '')
  );
}

export function writeFileInput(settings: FileToolSettings) {
  return schemaOnce(`ssh_write_file limit=${writeLimit(settings)}`, () => buildWriteFileInput(settings));
}

function buildWriteFileInput(settings: FileToolSettings) {
  return z
    .object({
      path: remotePath('path'),
      // Twice the base64 of the in-call limit: anything near the limit reaches the tool, which
      // answers file_too_large with what to do instead; this only stops absurd strings early.
      content: z
        .string({ error: 'content must be a string' })
        .max(
          2 * (Math.ceil(writeLimit(settings) / 3) * 4) + 8,
          `content is far larger than the ${formatCount(writeLimit(settings))} bytes ssh_write_file accepts in one call`,
        ),
      host: hostArgument,
      ctid: ctidArgument,
      encoding: z.enum(['utf8', 'base64'], { error: 'encoding must be "utf8" or "base64"' }).default('utf8'),
      permissions: permissionsArgument,
      overwrite: overwriteArgument,
      create_dirs: z.boolean({ error: 'create_dirs must be true or false' }).default(false).describe('Create missing parent directories.'),
    })
    .strict();
}

export const writeFileOutput = z.object({ host: z.string(), path: z.string(), size: z.number(), sha256: z.string(), mode: z.string(), replaced: z.boolean() });

export const listDirectoryInput = z
  .object({
    path: remotePath('path').default('.'),
    host: hostArgument,
    response_format: z.enum(['text', 'json'], { error: 'response_format must be "text" or "json"' }).default('text'),
  })
  .strict();

export const listDirectoryOutput = z.object({
  host: z.string(),
  path: z.string(),
  entries: z.array(z.object({ name: z.string(), type: z.string(), size: z.number(), mode: z.string(), mtime: z.string() })),
  truncated: z.boolean(),
});

export const uploadFileInput = z
  .object({
    local_path: localPath('local_path'),
    remote_path: remotePath('remote_path'),
    host: hostArgument,
    permissions: permissionsArgument,
    overwrite: overwriteArgument,
  })
  .strict();

export const downloadFileInput = z
  .object({ remote_path: remotePath('remote_path'), local_path: localPath('local_path'), host: hostArgument, overwrite: overwriteArgument })
  .strict();

export const requestUploadInput = z
  .object({ path: remotePath('path'), host: hostArgument, ctid: ctidArgument, permissions: permissionsArgument, overwrite: overwriteArgument })
  .strict();

export const requestDownloadInput = z.object({ path: remotePath('path'), host: hostArgument, ctid: ctidArgument }).strict();

export const linkOutput = z.object({
  host: z.string(),
  path: z.string(),
  transfer_id: z.string(),
  method: z.enum(['PUT', 'GET']),
  url: z.string(),
  curl: z.string(),
  expires_at: z.string(),
  expires_in_seconds: z.number(),
  max_bytes: z.number(),
});

export const transferOutput = z.object({
  host: z.string(),
  from: z.string(),
  to: z.string(),
  size: z.number(),
  sha256: z.string(),
  replaced: z.boolean(),
  mode: z.string().optional(),
});

export interface FileToolSettings extends ToolSettings {
  /** MAX_FILE_SIZE: the largest file any file tool moves, in bytes. */
  maxFileSize: number;
  /**
   * Bytes one ssh_read_file call returns at most. Where results travel through a transport with
   * a message limit (the Worker: a result is one message, held whole), this is lower than MAX_FILE_SIZE and
   * larger files are read in parts with offset.
   */
  readBytesPerCall: number;
  /**
   * Bytes one ssh_write_file call accepts. Where the call travels in a request with a body limit
   * (the Worker's /mcp), this is what fits in that body as base64; over stdio it is MAX_FILE_SIZE.
   */
  writeBytesPerCall: number;
  /** ImageKit is on: as in the seed, its tools replace the local-path transfer tools. */
  transfersViaImageKit?: boolean;
}

/** Base64 without relying on Node's Buffer (this folder runs in workerd too). */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let index = 0; index < bytes.length; index += 0x8000) binary += String.fromCharCode(...bytes.subarray(index, index + 0x8000));
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array | null {
  const clean = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) return null;
  try {
    return Uint8Array.from(atob(clean), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

/**
 * Decode bytes as UTF-8 text if they are valid, allowing an incomplete character at the very end
 * (a ranged read may stop inside one). Returns the text and how many bytes it covers, or null.
 */
export function decodeUtf8Prefix(bytes: Uint8Array): { text: string; bytes: number } | null {
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes, { stream: true });
    return { text, bytes: new TextEncoder().encode(text).length };
  } catch {
    return null;
  }
}

/**
 * Text for bytes that are not valid UTF-8 (invalid sequences become U+FFFD), cut to at most
 * `limit` characters at a byte boundary found by bisection, so the next read starts exactly
 * where this one stopped.
 */
export function lossyTextPrefix(data: Uint8Array, limit: number): { text: string; bytes: number } {
  const decode = (length: number): string => new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(data.subarray(0, length));
  const whole = decode(data.length);
  if (whole.length <= limit) return { text: whole, bytes: data.length };
  let low = 0;
  let high = data.length;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (decode(middle).length <= limit) low = middle;
    else high = middle - 1;
  }
  return { text: decode(low), bytes: low };
}

/** A URL inside single quotes for a shell command line (a quote in it is escaped, not trusted). */
function quotedUrl(url: string): string {
  return `'${url.replaceAll("'", "'\\''")}'`;
}

function linkResult(offer: LinkOffer): CallToolResult {
  const upload = offer.method === 'PUT';
  const curl = upload
    ? `curl --fail-with-body -T ./LOCAL_FILE ${quotedUrl(offer.url)}`
    : `curl --fail -o ./${offer.path.split('/').pop() || 'download'} ${quotedUrl(offer.url)}`;
  const minutes = Math.round(offer.expiresInSeconds / 60);
  const text = [
    `${upload ? 'Upload' : 'Download'} link for ${offer.path} on ${offer.host}. It works once and expires at ${offer.expiresAt} (in ${minutes >= 1 ? `${minutes} minute${minutes === 1 ? '' : 's'}` : `${offer.expiresInSeconds} seconds`}); at most ${formatCount(offer.maxBytes)} bytes.`,
    upload ? `Send the file with an HTTP PUT (replace ./LOCAL_FILE):` : 'Fetch the file with an HTTP GET:',
    `  ${curl}`,
    upload ? 'The file is written atomically; the response reports its size and SHA-256.' : '',
  ]
    .filter(Boolean)
    .join('\n');
  return {
    content: [{ type: 'text', text }],
    structuredContent: {
      host: offer.host,
      path: offer.path,
      transfer_id: offer.transferId,
      method: offer.method,
      url: offer.url,
      curl,
      expires_at: offer.expiresAt,
      expires_in_seconds: offer.expiresInSeconds,
      max_bytes: offer.maxBytes,
    },
  };
}

/** The subset of the SDK's request context (ServerContext.mcpReq) a transfer needs: its progress token, a way to notify, its signal. */
export interface ProgressContext {
  mcpReq: {
    _meta?: { progressToken?: string | number };
    notify(notification: {
      method: 'notifications/progress';
      params: { progressToken: string | number; progress: number; total?: number; message?: string };
    }): Promise<void>;
    signal: AbortSignal;
  };
}

/**
 * MCP progress notifications for a transfer, when the client asked for them (it sent a
 * progressToken): at most every 250 ms, and always at the end. `settled` resolves once the last
 * notification is written, so the result never overtakes it (a client ignores progress that
 * arrives after the result).
 */
export function progressReporter(ctx: ProgressContext): { report: ProgressReporter; settled(): Promise<void> } | undefined {
  const token = ctx.mcpReq._meta?.progressToken;
  if (token === undefined) return undefined;
  let last = 0;
  let sending: Promise<void> = Promise.resolve();
  return {
    report: (done, total) => {
      const now = Date.now();
      if (done < total && now - last < 250) return;
      last = now;
      const notification = {
        method: 'notifications/progress' as const,
        params: { progressToken: token, progress: done, total, message: `${formatCount(done)} of ${formatCount(total)} bytes` },
      };
      sending = sending.then(() => ctx.mcpReq.notify(notification)).catch(() => undefined);
    },
    settled: () => sending,
  };
}

export function registerFileTools(server: McpServer, executor: ToolExecutor, settings: FileToolSettings): void {
  const { readFile, writeFile, listDirectory, requestUpload, requestDownload } = executor;
  // As in the seed: with ImageKit on, its tools replace the local-path transfers (the links stay).
  const { uploadFile, downloadFile } = settings.transfersViaImageKit ? {} : executor;

  if (requestUpload) {
    registerTool(
      server,
      'ssh_request_upload',
      {
        title: 'Make a one-time upload link',
        description:
          'Make a one-time HTTPS link that writes the bytes PUT to it to a file on a host (atomically; no third party involved). Returns the link and a ready curl command. ' +
          `The link works once, expires (the result says when), and accepts at most MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes). Fails now if the file exists and overwrite is false.`,
        inputSchema: requestUploadInput,
        outputSchema: linkOutput,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> => {
        const outcome = await requestUpload.call(
          executor,
          { ...given('host', args.host), ...given('ctid', args.ctid), path: args.path, ...given('permissions', args.permissions), overwrite: args.overwrite },
          ctx.mcpReq.signal,
        );
        return outcome.ok ? linkResult(outcome.value) : errorResult(outcome.error);
      },
    );
  }

  if (requestDownload) {
    registerTool(
      server,
      'ssh_request_download',
      {
        title: 'Make a one-time download link',
        description:
          'Make a one-time HTTPS link that serves a file from a host (streamed, no third party involved). Returns the link and a ready curl command. ' +
          `The link works once and expires (the result says when); files up to MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes).`,
        inputSchema: requestDownloadInput,
        outputSchema: linkOutput,
        annotations: { readOnlyHint: true, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> => {
        const outcome = await requestDownload.call(executor, { ...given('host', args.host), ...given('ctid', args.ctid), path: args.path }, ctx.mcpReq.signal);
        return outcome.ok ? linkResult(outcome.value) : errorResult(outcome.error);
      },
    );
  }

  if (readFile) {
    registerTool(
      server,
      'ssh_read_file',
      {
        title: 'Read a file',
        description:
          `Read a file on a host and return its content in the result: text when it is UTF-8, base64 when asked or when it is binary. ` +
          `At most ${formatCount(Math.min(settings.readBytesPerCall, settings.maxFileSize))} bytes per call; text is cut at ${formatCount(settings.characterLimit)} characters; the result says which offset to read next. Reports size, mode and modification time.`,
        inputSchema: readFileInput(),
        outputSchema: readFileOutput,
        annotations: { readOnlyHint: true, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> => {
        const perCall = Math.min(settings.readBytesPerCall, settings.maxFileSize);
        const length = Math.min(args.length ?? perCall, perCall);
        const outcome = await readFile.call(
          executor,
          { ...given('host', args.host), ...given('ctid', args.ctid), path: args.path, offset: args.offset, length, maxBytes: perCall },
          ctx.mcpReq.signal,
        );
        if (!outcome.ok) return errorResult(outcome.error);
        const { info, offset, eof, host } = outcome.value;
        const data = fromBase64(outcome.value.dataBase64) ?? new Uint8Array();
        let encoding: 'utf8' | 'base64' = 'base64';
        let content = '';
        let covered = data.length;
        if (args.encoding !== 'base64') {
          const valid = decodeUtf8Prefix(data);
          if (valid) {
            encoding = 'utf8';
            content = cutAt(valid.text, settings.characterLimit);
            // Valid UTF-8 re-encodes to exactly the bytes it came from.
            covered = content.length === valid.text.length ? valid.bytes : new TextEncoder().encode(content).length;
          } else if (args.encoding === 'utf8') {
            encoding = 'utf8';
            ({ text: content, bytes: covered } = lossyTextPrefix(data, settings.characterLimit));
          }
        }
        if (encoding === 'base64') content = toBase64(data);
        const end = offset + covered;
        const truncated = end < info.size;
        const structured = {
          host,
          path: info.path,
          size: info.size,
          mode: info.mode,
          mtime: info.mtime,
          offset,
          bytes: covered,
          encoding,
          content,
          truncated,
          next_offset: truncated ? end : null,
        };
        const header = `FILE ${info.path} on ${host}: ${formatCount(info.size)} bytes, mode ${info.mode}, modified ${info.mtime}\nBytes ${formatCount(offset)}–${formatCount(Math.max(offset, end - 1))} as ${encoding === 'utf8' ? 'UTF-8 text' : 'base64'}${eof && !truncated ? ' (to the end of the file)' : ''}:`;
        const note = truncated ? `\n[cut: ${formatCount(info.size - end)} more bytes. Read the rest with offset=${end}.]` : '';
        return { content: [{ type: 'text', text: `${header}\n${content}${note}` }], structuredContent: structured };
      },
    );
  }

  if (writeFile) {
    // Where a smaller in-call limit applies, say so and name the way to move larger files.
    const largerFiles =
      writeLimit(settings) >= settings.maxFileSize
        ? null
        : requestUpload
          ? `For larger files (up to MAX_FILE_SIZE, ${formatCount(settings.maxFileSize)} bytes) use ssh_request_upload.`
          : null;
    const writeLimitDescription =
      writeLimit(settings) < settings.maxFileSize
        ? `At most ${formatCount(writeLimit(settings))} bytes in one call (what the request carrying it may hold).${largerFiles ? ` ${largerFiles}` : ''}`
        : `At most MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes).`;
    registerTool(
      server,
      'ssh_write_file',
      {
        title: 'Write a file',
        description:
          'Write content given in the call to a file on a host, atomically: the bytes go to a temporary file beside it and are renamed into place only when complete. ' +
          `Fails if the file exists unless overwrite=true. ${writeLimitDescription} Returns size and SHA-256.`,
        inputSchema: writeFileInput(settings),
        outputSchema: writeFileOutput,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> => {
        const bytes = args.encoding === 'base64' ? fromBase64(args.content) : new TextEncoder().encode(args.content);
        if (!bytes) return errorResult({ code: 'invalid_argument', message: 'content is not valid base64 (encoding="base64").' });
        if (bytes.length > writeLimit(settings)) {
          return errorResult({ code: 'file_too_large', message: writeTooLarge(settings, bytes.length, largerFiles) });
        }
        const outcome = await writeFile.call(
          executor,
          {
            ...given('host', args.host),
            ...given('ctid', args.ctid),
            path: args.path,
            content: bytes,
            ...(args.permissions !== undefined ? { permissions: args.permissions } : {}),
            overwrite: args.overwrite,
            createDirs: args.create_dirs,
            maxBytes: settings.maxFileSize,
          },
          ctx.mcpReq.signal,
        );
        if (!outcome.ok) return errorResult(outcome.error);
        const { host, path, size, sha256, mode, replaced } = outcome.value;
        return {
          content: [
            { type: 'text', text: `${replaced ? 'Replaced' : 'Created'} ${path} on ${host}: ${formatCount(size)} bytes, mode ${mode}, SHA-256 ${sha256}.` },
          ],
          structuredContent: { host, path, size, sha256, mode, replaced },
        };
      },
    );
  }

  if (listDirectory) {
    registerTool(
      server,
      'ssh_list_directory',
      {
        title: 'List a directory',
        description: 'List a directory on a host: names, types, sizes, modes and modification times (at most 1,000 entries).',
        inputSchema: listDirectoryInput,
        outputSchema: listDirectoryOutput,
        annotations: { readOnlyHint: true, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> => {
        const outcome = await listDirectory.call(executor, { ...(args.host !== undefined ? { host: args.host } : {}), path: args.path }, ctx.mcpReq.signal);
        if (!outcome.ok) return errorResult(outcome.error);
        const { host, path, entries, truncated } = outcome.value;
        const structured = {
          host,
          path,
          entries: entries.map((entry) => ({ name: entry.path, type: entry.type, size: entry.size, mode: entry.mode, mtime: entry.mtime })),
          truncated,
        };
        if (args.response_format === 'json') return { content: [{ type: 'text', text: JSON.stringify(structured, null, 2) }], structuredContent: structured };
        const mark: Record<string, string> = { directory: 'd', file: '-', symlink: 'l', other: '?' };
        const lines = entries.map(
          (entry) =>
            `${mark[entry.type] ?? '?'} ${entry.mode} ${String(entry.size).padStart(12)} ${entry.mtime} ${entry.path}${entry.type === 'directory' ? '/' : ''}`,
        );
        const text = `${path} on ${host}: ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}${truncated ? ' (only the first 1,000 are shown)' : ''}\n${lines.join('\n')}`;
        return { content: [{ type: 'text', text }], structuredContent: structured };
      },
    );
  }

  if (uploadFile) {
    registerTool(
      server,
      'ssh_upload_file',
      {
        title: 'Upload a local file',
        description: `Copy a file from the machine running this server to a host over SFTP, atomically. Fails if the remote file exists unless overwrite=true. At most MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes).`,
        inputSchema: uploadFileInput,
        outputSchema: transferOutput,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> =>
        runUpload(
          (request, signal) => uploadFile.call(executor, request, signal),
          {
            ...given('host', args.host),
            localPath: args.local_path,
            remotePath: args.remote_path,
            ...given('permissions', args.permissions),
            overwrite: args.overwrite,
            maxBytes: settings.maxFileSize,
          },
          ctx,
        ),
    );
  }

  if (downloadFile) {
    registerTool(
      server,
      'ssh_download_file',
      {
        title: 'Download a file to the local machine',
        description: `Copy a file from a host to the machine running this server, atomically. Fails if the local file exists unless overwrite=true. At most MAX_FILE_SIZE (${formatCount(settings.maxFileSize)} bytes).`,
        inputSchema: downloadFileInput,
        outputSchema: transferOutput,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      },
      async (args, ctx): Promise<CallToolResult> =>
        runDownload(
          (request, signal) => downloadFile.call(executor, request, signal),
          { ...given('host', args.host), remotePath: args.remote_path, localPath: args.local_path, overwrite: args.overwrite, maxBytes: settings.maxFileSize },
          ctx,
        ),
    );
  }
}

type Transfer<R> = (request: R, signal: AbortSignal) => Promise<Outcome<LocalTransferResult & { host: string }>>;

/**
 * Run a local-file transfer with progress when the client asked for it, and say what moved where:
 * the one shape behind runUpload and runDownload.
 */
async function runLocalTransfer<R extends { ctid?: string; onProgress?: ProgressReporter }>(
  transfer: Transfer<R>,
  request: Omit<R, 'onProgress'>,
  ctx: ProgressContext,
  describe: (result: LocalTransferResult, where: string) => string,
): Promise<CallToolResult> {
  const progress = progressReporter(ctx);
  // The request with the reporter added back: exactly an R (TypeScript cannot see that through Omit).
  const outcome = await transfer({ ...request, ...(progress ? { onProgress: progress.report } : {}) } as R, ctx.mcpReq.signal);
  await progress?.settled();
  if (!outcome.ok) return errorResult(outcome.error);
  const result = outcome.value;
  const where = request.ctid !== undefined ? `container ${request.ctid} on ${result.host}` : result.host;
  return { content: [{ type: 'text', text: describe(result, where) }], structuredContent: { ...result } };
}

/** An upload from the local machine; used by ssh_upload_file and the container upload tool. */
export function runUpload(upload: Transfer<UploadFileRequest>, request: Omit<UploadFileRequest, 'onProgress'>, ctx: ProgressContext): Promise<CallToolResult> {
  return runLocalTransfer(
    upload,
    request,
    ctx,
    (result, where) =>
      `Uploaded ${result.from} to ${result.to} on ${where}: ${formatCount(result.size)} bytes, mode ${result.mode ?? '?'}, SHA-256 ${result.sha256}.`,
  );
}

/** A download to the local machine; used by ssh_download_file and the container download tool. */
export function runDownload(
  download: Transfer<DownloadFileRequest>,
  request: Omit<DownloadFileRequest, 'onProgress'>,
  ctx: ProgressContext,
): Promise<CallToolResult> {
  return runLocalTransfer(
    download,
    request,
    ctx,
    (result, where) => `Downloaded ${result.from} from ${where} to ${result.to}: ${formatCount(result.size)} bytes, SHA-256 ${result.sha256}.`,
  );
}
