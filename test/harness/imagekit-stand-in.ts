/**
 * A loopback stand-in for the parts of ImageKit's HTTP API that the ImageKit tools use, speaking
 * ImageKit's wire format (checked against the official SDK @imagekit/nodejs 7.11 and public
 * ImageKit docs, issues and SDK test fixtures; see the report in the commit history):
 *
 *   POST   /api/v1/files/upload        multipart/form-data (the SDK sends it to upload.imagekit.io;
 *                                      a `baseURL` override sends it here too). Two auth modes:
 *                                      server side `Authorization: Basic base64(privateKey:<anything>)`,
 *                                      client side fields publicKey + token + expire + signature where
 *                                      signature = hex HMAC-SHA1(privateKey, token + expire).
 *   GET    /v1/files                   list/search: path (exact folder), searchQuery (subset, below),
 *                                      type (file | file-version | folder | all), sort, skip, limit
 *   GET    /v1/files/{fileId}/details  file object, or 404
 *   DELETE /v1/files/{fileId}          204, or 404
 *   GET    <urlEndpointPath>/<filePath> the bytes; a private file only with a valid, unexpired
 *                                      ik-s / ik-t signature (as the SDK's helper.buildSrc makes it)
 *
 * Errors are ImageKit's JSON body `{"message": "...", "help": "For support kindly contact us at
 * support@imagekit.io ."}`. Messages known from ImageKit itself are used verbatim; messages marked
 * STAND-IN below are this file's own wording for cases whose real text was not found.
 *
 * searchQuery subset: one or more `<field> <op> <value>` conditions joined by AND (no OR, no
 * parentheses). Fields: name, filePath (may be written "filePath"), path, private, type, fileType.
 * Ops: `=` exact; `:` begins-with (for `path`: the folder and its subfolders). Values: "double
 * quoted" strings, or true / false for `private`. Anything else is answered 400, never ignored.
 *
 * Files live in memory. Nothing here logs or stores secrets: `requests()` holds method, path
 * (no query string) and status only.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredFile {
  fileId: string;
  versionId: string;
  versionNumber: number;
  name: string;
  /** Always starts with `/`, e.g. `/uploads/report_Ab3dE5fGh.pdf`. */
  filePath: string;
  /** Always starts and ends with `/`, e.g. `/uploads/`. */
  folder: string;
  size: number;
  isPrivateFile: boolean;
  tags: string[] | null;
  /** ISO 8601, as ImageKit sends it. */
  createdAt: string;
  updatedAt: string;
  mime: string;
  bytes: Buffer;
}

export interface RequestRecord {
  method: string;
  /** Path only; the query string is left out (it may carry signatures). */
  path: string;
  status: number;
}

export interface ImageKitStandInOptions {
  publicKey: string;
  privateKey: string;
  /** Path of the URL endpoint on the stand-in, like ImageKit's `/<imagekit_id>`. Default `/ik-test-account`. */
  urlEndpointPath?: string;
  /** Largest file accepted by the upload API, in bytes. Default 25 MB (ImageKit's free plan). */
  maxFileSize?: number;
}

export interface ImageKitStandIn {
  /** Give this to `new ImageKit({ privateKey, baseURL })`: serves both the upload and the API hosts. */
  baseURL: string;
  /** The URL endpoint files are served under, e.g. `http://127.0.0.1:PORT/ik-test-account`. */
  urlEndpoint: string;
  publicKey: string;
  maxFileSize: number;
  files(): StoredFile[];
  requests(): RequestRecord[];
  /** Fix the stand-in's clock (ms since the epoch) for expiry checks; no argument returns to real time. */
  setNow(ms?: number): void;
  /** Current stand-in time in ms. */
  now(): number;
  stop(): Promise<void>;
}

const HELP = 'For support kindly contact us at support@imagekit.io .';
// Verbatim ImageKit messages (sources: ImageKit SDK test fixtures and issue threads).
const MSG_AUTH = 'Your account cannot be authenticated.';
const MSG_EXPIRE = 'Your request contains invalid expire parameter. Expire parameter should be a Unix time in less than 1 hour into the future.';
const MSG_SIGNATURE = 'Your request contains invalid signature parameter.';
const MSG_NOT_FOUND = 'The requested file does not exist.';
const msgTokenUsed = (token: string): string =>
  `The token with value '${token}' has been used before. We suggest using V4 UUIDs, or another random string with enough entropy to avoid collisions.`;
// STAND-IN wording: the real texts for these were not found.
const MSG_TOO_LARGE = (limit: number): string => `File size exceeds the maximum upload size of ${limit} bytes allowed on your plan.`;
const MSG_EXISTS =
  'A file with the same name already exists at the exact location. We could not overwrite it because both overwriteFile and useUniqueFileName are set to false.';

const MULTIPART_OVERHEAD = 1024 * 1024;
const UNIQUE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const DEFAULT_URL_SIGNATURE_TIMESTAMP = '9999999999';

const MIME_BY_EXTENSION: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  svg: 'image/svg+xml',
  txt: 'text/plain',
  log: 'text/plain',
  csv: 'text/csv',
  json: 'application/json',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  tar: 'application/x-tar',
  html: 'text/html',
  css: 'text/css',
  js: 'application/javascript',
  mp4: 'video/mp4',
};

function mimeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
  return MIME_BY_EXTENSION[ext] ?? 'application/octet-stream';
}

function hmacSha1Hex(key: string, data: string): string {
  return createHmac('sha1', key).update(data).digest('hex');
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** 24 hex digits, the shape of ImageKit's (MongoDB ObjectId) file and version ids. */
function objectId(): string {
  const time = Math.floor(Date.now() / 1000)
    .toString(16)
    .padStart(8, '0');
  return time + randomBytes(8).toString('hex');
}

function uniqueSuffix(): string {
  const bytes = randomBytes(9);
  let out = '';
  for (const byte of bytes) out += UNIQUE_ALPHABET[byte % UNIQUE_ALPHABET.length];
  return out;
}

/** ImageKit keeps letters, marks, digits, `.` and `-` in file names and replaces anything else with `_`. */
function sanitizeFileName(name: string): string {
  return name.replace(/[^\p{L}\p{M}\p{N}._-]/gu, '_');
}

/** `a/b` → `/a/b/`, `` → `/`; ImageKit folder names allow letters, digits, `/`, `_` and `-`. */
function normalizeFolder(folder: string): string {
  const parts = folder
    .split('/')
    .filter((part) => part !== '')
    .map((part) => part.replace(/[^\p{L}\p{M}\p{N}_-]/gu, '_'));
  return parts.length ? `/${parts.join('/')}/` : '/';
}

function isImage(mime: string): boolean {
  return mime.startsWith('image/');
}

type Condition = { field: 'name' | 'filePath' | 'path' | 'private' | 'type' | 'fileType'; op: '=' | ':'; value: string };

/** Parses the supported subset of ImageKit's searchQuery; null when outside it. */
function parseSearchQuery(query: string): Condition[] | null {
  const pieces = query.split(/\s+AND\s+/i);
  const conditions: Condition[] = [];
  for (const piece of pieces) {
    const match = /^\s*"?(name|filePath|path|private|type|fileType)"?\s*(=|:)\s*(?:"((?:[^"\\]|\\.)*)"|(true|false))\s*$/.exec(piece);
    if (!match) return null;
    const field = match[1] as Condition['field'];
    const value = match[3] !== undefined ? match[3].replace(/\\(.)/g, '$1') : (match[4] ?? '');
    if ((field === 'private') !== (match[4] !== undefined)) return null;
    conditions.push({ field, op: match[2] as Condition['op'], value });
  }
  return conditions;
}

function matches(file: StoredFile, condition: Condition): boolean {
  const { field, op, value } = condition;
  switch (field) {
    case 'name':
      return op === '=' ? file.name === value : file.name.startsWith(value);
    case 'filePath':
      return op === '=' ? file.filePath === value : file.filePath.startsWith(value);
    case 'path': {
      const folder = normalizeFolder(value);
      return op === '=' ? file.folder === folder : file.folder.startsWith(folder);
    }
    case 'private':
      return file.isPrivateFile === (value === 'true');
    case 'type':
      return value === 'file';
    case 'fileType':
      return value === 'all' || (value === 'image') === isImage(file.mime);
  }
}

export async function startImageKitStandIn(options: ImageKitStandInOptions): Promise<ImageKitStandIn> {
  const { publicKey, privateKey } = options;
  const endpointPath = `/${(options.urlEndpointPath ?? '/ik-test-account').replace(/^\/+|\/+$/g, '')}`;
  const maxFileSize = options.maxFileSize ?? 25 * 1024 * 1024;
  const stored = new Map<string, StoredFile>();
  const folders = new Map<string, { folderId: string; createdAt: string }>();
  const usedTokens = new Set<string>();
  const log: RequestRecord[] = [];
  let fixedNow: number | undefined;
  const now = (): number => fixedNow ?? Date.now();

  let baseURL = '';
  let urlEndpoint = '';

  const fileUrl = (file: StoredFile): string => `${urlEndpoint}${file.filePath}`;
  const thumbnailUrl = (file: StoredFile): string => (isImage(file.mime) ? `${urlEndpoint}/tr:n-ik_ml_thumbnail${file.filePath}` : '');

  /** The `File` object of the list and details APIs (SDK type `File`). */
  const fileObject = (file: StoredFile): Record<string, unknown> => ({
    type: 'file',
    name: file.name,
    createdAt: file.createdAt,
    updatedAt: file.updatedAt,
    fileId: file.fileId,
    tags: file.tags,
    AITags: null,
    versionInfo: { id: file.versionId, name: `Version ${file.versionNumber}` },
    embeddedMetadata: {},
    isPublished: true,
    customCoordinates: null,
    customMetadata: {},
    isPrivateFile: file.isPrivateFile,
    url: fileUrl(file),
    thumbnail: thumbnailUrl(file),
    fileType: isImage(file.mime) ? 'image' : 'non-image',
    filePath: file.filePath,
    height: null,
    width: null,
    size: file.size,
    hasAlpha: false,
    mime: file.mime,
  });

  const folderObject = (folderPath: string): Record<string, unknown> => {
    const info = folders.get(folderPath);
    const trimmed = folderPath.replace(/\/$/, '');
    return {
      type: 'folder',
      name: trimmed.slice(trimmed.lastIndexOf('/') + 1),
      folderPath: trimmed,
      folderId: info?.folderId,
      createdAt: info?.createdAt,
      updatedAt: info?.createdAt,
      customMetadata: {},
    };
  };

  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void => {
    if (body === undefined) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  };
  const error = (res: ServerResponse, status: number, message: string): void => send(res, status, { message, help: HELP });

  /** `Basic base64(privateKey:<password>)`: ImageKit reads the user name only (the SDK sends a placeholder password). */
  const apiAuth = (req: IncomingMessage): 'ok' | 'missing' | 'wrong' => {
    const header = req.headers.authorization;
    if (!header) return 'missing';
    const match = /^Basic\s+(\S+)$/i.exec(header);
    if (!match?.[1]) return 'wrong';
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon >= 0 ? decoded.slice(0, colon) : decoded;
    return sameText(user, privateKey) ? 'ok' : 'wrong';
  };
  const refuseApiAuth = (res: ServerResponse, state: 'missing' | 'wrong'): void =>
    // ImageKit answers a wrong private key with 403 (SDK fixtures, reports from production); no
    // credentials at all is answered 401 here: the real status for that case was not confirmed.
    error(res, state === 'wrong' ? 403 : 401, MSG_AUTH);

  /** Reads the body up to `limit` bytes; past it, keeps draining (so the client sees the answer) and returns null. */
  const readBody = async (req: IncomingMessage, limit: number): Promise<Buffer | null> => {
    const chunks: Buffer[] = [];
    let total = 0;
    let over = false;
    for await (const chunk of req) {
      const buffer = chunk as Buffer;
      total += buffer.length;
      if (total > limit) over = true;
      if (!over) chunks.push(buffer);
    }
    return over ? null : Buffer.concat(chunks);
  };

  const handleUpload = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const contentType = req.headers['content-type'] ?? '';
    const body = await readBody(req, maxFileSize + MULTIPART_OVERHEAD);
    if (body === null) return error(res, 400, MSG_TOO_LARGE(maxFileSize));
    if (!/^multipart\/form-data/i.test(contentType)) return error(res, 400, 'Missing file parameter for upload'); // STAND-IN wording
    let form: FormData;
    try {
      form = await new Request('http://stand-in/', { method: 'POST', headers: { 'content-type': contentType }, body: new Uint8Array(body) }).formData();
    } catch {
      return error(res, 400, 'Your request could not be parsed as multipart/form-data.'); // STAND-IN wording
    }
    const text = (key: string): string | undefined => {
      const value = form.get(key);
      return typeof value === 'string' ? value : undefined;
    };

    // Authentication: server side (private key) or client side (signature, one-time token).
    if (req.headers.authorization) {
      const state = apiAuth(req);
      if (state !== 'ok') return refuseApiAuth(res, state);
    } else {
      const fieldPublicKey = text('publicKey');
      const signature = text('signature');
      const expire = text('expire');
      const token = text('token');
      if (fieldPublicKey === undefined && signature === undefined && token === undefined) return refuseApiAuth(res, 'missing');
      if (!fieldPublicKey || !sameText(fieldPublicKey, publicKey)) return error(res, 403, MSG_AUTH);
      if (!signature) return error(res, 400, 'Missing signature for upload. The signature parameter is required for client-side upload.'); // STAND-IN wording
      if (!token) return error(res, 400, 'Missing token for upload. The token parameter is required for client-side upload.'); // STAND-IN wording
      const nowSeconds = Math.floor(now() / 1000);
      const expireSeconds = expire !== undefined && /^\d+$/.test(expire) ? Number(expire) : Number.NaN;
      // "a Unix time in less than 1 hour into the future": in the past, now, or an hour or more ahead is refused.
      if (!Number.isFinite(expireSeconds) || expireSeconds <= nowSeconds || expireSeconds - nowSeconds >= 3600) return error(res, 400, MSG_EXPIRE);
      if (!sameText(signature.toLowerCase(), hmacSha1Hex(privateKey, token + expire))) return error(res, 400, MSG_SIGNATURE);
      // A token is spent once presented with a valid signature, even if the upload then fails.
      if (usedTokens.has(token)) return error(res, 400, msgTokenUsed(token));
      usedTokens.add(token);
    }

    const file = form.get('file');
    const fileName = text('fileName');
    if (file === null) return error(res, 400, 'Missing file parameter for upload'); // STAND-IN wording
    if (!fileName) return error(res, 400, 'Missing fileName parameter for upload'); // STAND-IN wording
    let bytes: Buffer;
    if (typeof file === 'string') {
      if (/^https?:\/\//i.test(file)) return error(res, 400, 'The stand-in does not fetch remote URLs; send the file as binary or base64.'); // STAND-IN limitation
      bytes = Buffer.from(file.replace(/^data:[^,]*;base64,/, ''), 'base64');
    } else {
      bytes = Buffer.from(await file.arrayBuffer());
    }
    if (bytes.length > maxFileSize) return error(res, 400, MSG_TOO_LARGE(maxFileSize));

    const flag = (key: string, fallback: boolean): boolean => {
      const value = text(key);
      return value === undefined ? fallback : value === 'true';
    };
    const useUniqueFileName = flag('useUniqueFileName', true);
    const overwriteFile = flag('overwriteFile', true);
    const isPrivateFile = flag('isPrivateFile', false);
    const folder = normalizeFolder(text('folder') ?? '/');
    const tagsText = text('tags');
    const tags = tagsText
      ? tagsText
          .split(',')
          .map((tag) => tag.trim())
          .filter(Boolean)
      : null;

    let name = sanitizeFileName(fileName);
    if (useUniqueFileName) {
      const dot = name.lastIndexOf('.');
      name = dot > 0 ? `${name.slice(0, dot)}_${uniqueSuffix()}${name.slice(dot)}` : `${name}_${uniqueSuffix()}`;
    }
    const filePath = `${folder}${name}`;
    const existing = [...stored.values()].find((candidate) => candidate.filePath === filePath);
    if (existing && !overwriteFile) return error(res, 400, MSG_EXISTS);

    const timestamp = new Date(now()).toISOString();
    for (let path = folder; path !== '/'; path = path.replace(/[^/]+\/$/, '')) {
      if (!folders.has(path)) folders.set(path, { folderId: objectId(), createdAt: timestamp });
    }
    const record: StoredFile = existing
      ? {
          // Overwriting keeps the file id and adds a version, as ImageKit does.
          ...existing,
          versionId: objectId(),
          versionNumber: existing.versionNumber + 1,
          size: bytes.length,
          isPrivateFile,
          tags,
          updatedAt: timestamp,
          mime: mimeOf(name),
          bytes,
        }
      : (() => {
          const fileId = objectId();
          return {
            fileId,
            versionId: fileId,
            versionNumber: 1,
            name,
            filePath,
            folder,
            size: bytes.length,
            isPrivateFile,
            tags,
            createdAt: timestamp,
            updatedAt: timestamp,
            mime: mimeOf(name),
            bytes,
          };
        })();
    stored.set(record.fileId, record);

    // The upload response (SDK type FileUploadResponse); some fields only when asked through responseFields.
    const responseFields = new Set(
      (text('responseFields') ?? '')
        .split(',')
        .map((field) => field.trim())
        .filter(Boolean),
    );
    const response: Record<string, unknown> = {
      fileId: record.fileId,
      name: record.name,
      size: record.size,
      versionInfo: { id: record.versionId, name: `Version ${record.versionNumber}` },
      filePath: record.filePath,
      url: fileUrl(record),
      fileType: isImage(record.mime) ? 'image' : 'non-image',
      height: null,
      width: null,
      thumbnailUrl: thumbnailUrl(record),
      AITags: null,
    };
    if (responseFields.has('tags')) response.tags = record.tags;
    if (responseFields.has('customCoordinates')) response.customCoordinates = null;
    if (responseFields.has('isPrivateFile')) response.isPrivateFile = record.isPrivateFile;
    if (responseFields.has('isPublished')) response.isPublished = true;
    if (responseFields.has('customMetadata')) response.customMetadata = {};
    if (responseFields.has('embeddedMetadata')) response.embeddedMetadata = {};
    if (responseFields.has('metadata')) response.metadata = { size: record.size, hasColorProfile: false, quality: 0, density: 0, hasTransparency: false };
    send(res, 200, response);
  };

  const handleList = (url: URL, res: ServerResponse): void => {
    const params = url.searchParams;
    const type = params.get('type') ?? 'file';
    if (!['file', 'file-version', 'folder', 'all'].includes(type))
      return error(res, 400, 'Invalid type parameter. Allowed values: file, file-version, folder, all.'); // STAND-IN wording
    const limitText = params.get('limit') ?? '1000';
    const skipText = params.get('skip') ?? '0';
    const limit = /^\d+$/.test(limitText) ? Number(limitText) : Number.NaN;
    const skip = /^\d+$/.test(skipText) ? Number(skipText) : Number.NaN;
    if (!(limit >= 1 && limit <= 1000)) return error(res, 400, 'Invalid limit parameter. It should be an integer between 1 and 1000.'); // STAND-IN wording
    if (!(skip >= 0)) return error(res, 400, 'Invalid skip parameter. It should be an integer greater than or equal to 0.'); // STAND-IN wording
    const searchQuery = params.get('searchQuery');
    const conditions = searchQuery ? parseSearchQuery(searchQuery) : [];
    if (conditions === null) return error(res, 400, 'Your request contains invalid syntax for the searchQuery parameter.'); // STAND-IN wording (and subset)
    const pathParam = params.get('path');
    const folder = pathParam === null ? null : normalizeFolder(pathParam);
    const fileType = params.get('fileType') ?? 'all';

    let files = [...stored.values()].filter((file) => folder === null || file.folder === folder);
    files = files.filter((file) => fileType === 'all' || (fileType === 'image') === isImage(file.mime));
    files = files.filter((file) => conditions.every((condition) => matches(file, condition)));
    // With a searchQuery ImageKit ignores `type`; without one, `file-version` lists versions (one per file here).
    const wantFiles = searchQuery ? true : type !== 'folder';
    const wantFolders = !searchQuery && (type === 'folder' || type === 'all');

    const sort = params.get('sort') ?? 'ASC_CREATED';
    const keyOf: Record<string, (file: StoredFile) => string | number> = {
      NAME: (file) => file.name,
      CREATED: (file) => file.createdAt,
      UPDATED: (file) => file.updatedAt,
      SIZE: (file) => file.size,
    };
    const sortMatch = /^(ASC|DESC)_(NAME|CREATED|UPDATED|SIZE|HEIGHT|WIDTH|RELEVANCE)$/.exec(sort);
    if (!sortMatch) return error(res, 400, 'Invalid sort parameter.'); // STAND-IN wording
    const key = keyOf[sortMatch[2] ?? ''];
    if (key) {
      const direction = sortMatch[1] === 'DESC' ? -1 : 1;
      files.sort((a, b) => {
        const left = key(a);
        const right = key(b);
        return (left < right ? -1 : left > right ? 1 : 0) * direction;
      });
    }

    const results: Record<string, unknown>[] = [];
    if (wantFolders) {
      const parent = folder ?? '/';
      for (const path of [...folders.keys()].sort()) {
        if (path.startsWith(parent) && path !== parent && !path.slice(parent.length).replace(/\/$/, '').includes('/')) results.push(folderObject(path));
      }
    }
    if (wantFiles) {
      for (const file of files) {
        const object = fileObject(file);
        if (type === 'file-version') object.type = 'file-version';
        results.push(object);
      }
    }
    send(res, 200, results.slice(skip, skip + limit));
  };

  /** Serves `<endpointPath>/<filePath>`; private files only with a valid signature, as ImageKit's delivery does. */
  const handleDelivery = (req: IncomingMessage, rawUrl: string, res: ServerResponse): number => {
    const questionMark = rawUrl.indexOf('?');
    const rawPath = questionMark >= 0 ? rawUrl.slice(0, questionMark) : rawUrl;
    const rawQuery = questionMark >= 0 ? rawUrl.slice(questionMark + 1) : '';
    const queryParts = rawQuery === '' ? [] : rawQuery.split('&');
    const value = (name: string): string | undefined => {
      const part = queryParts.find((piece) => piece.startsWith(`${name}=`));
      return part === undefined ? undefined : decodeURIComponent(part.slice(name.length + 1));
    };
    const kept = queryParts.filter((piece) => !piece.startsWith('ik-s=') && !piece.startsWith('ik-t='));
    let relative = rawPath.slice(endpointPath.length + 1);
    let decodedRelative: string;
    try {
      decodedRelative = decodeURIComponent(relative);
    } catch {
      return plain(res, 400, 'Bad Request');
    }
    // A leading path transformation (e.g. the thumbnail's tr:n-ik_ml_thumbnail) serves the original bytes here.
    let filePath = `/${decodedRelative}`;
    const transformation = /^\/tr:[^/]*(\/.*)$/.exec(filePath);
    if (transformation?.[1]) filePath = transformation[1];
    const file = [...stored.values()].find((candidate) => candidate.filePath === filePath);
    if (!file) return plain(res, 404, 'Not Found');

    const signature = value('ik-s');
    if (file.isPrivateFile || signature !== undefined) {
      if (signature === undefined) return plain(res, 401, 'Unauthorized');
      const timestamp = value('ik-t');
      // helper.buildSrc signs (URL relative to the endpoint, with any other query) + (ik-t or 9999999999).
      relative = kept.length ? `${relative}?${kept.join('&')}` : relative;
      const expected = hmacSha1Hex(privateKey, relative + (timestamp ?? DEFAULT_URL_SIGNATURE_TIMESTAMP));
      if (!sameText(signature, expected)) return plain(res, 401, 'Unauthorized');
      if (timestamp !== undefined && !(/^\d+$/.test(timestamp) && Number(timestamp) * 1000 > now())) return plain(res, 401, 'Unauthorized');
    }
    res.writeHead(200, {
      'Content-Type': file.mime,
      'Content-Length': String(file.bytes.length),
      'Cache-Control': file.isPrivateFile ? 'private, max-age=0' : 'public, max-age=31536000',
    });
    res.end(req.method === 'HEAD' ? undefined : file.bytes);
    return 200;
  };

  const plain = (res: ServerResponse, status: number, text: string): number => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) });
    res.end(text);
    return status;
  };

  const server: Server = createServer((req, res) => {
    const rawUrl = req.url ?? '/';
    const url = new URL(rawUrl, 'http://stand-in');
    const method = req.method ?? 'GET';
    res.on('finish', () => log.push({ method, path: url.pathname, status: res.statusCode }));
    void (async () => {
      const path = url.pathname;
      if (path === '/api/v1/files/upload') {
        if (method !== 'POST') return error(res, 404, 'Not Found');
        return await handleUpload(req, res);
      }
      if (path === endpointPath || path.startsWith(`${endpointPath}/`)) {
        if (method !== 'GET' && method !== 'HEAD') return plain(res, 405, 'Method Not Allowed');
        handleDelivery(req, rawUrl, res);
        return;
      }
      if (path === '/v1/files' || path.startsWith('/v1/files/')) {
        const state = apiAuth(req);
        if (state !== 'ok') return refuseApiAuth(res, state);
        if (path === '/v1/files' && method === 'GET') return handleList(url, res);
        const details = /^\/v1\/files\/([^/]+)\/details$/.exec(path);
        if (details?.[1] && method === 'GET') {
          const file = stored.get(decodeURIComponent(details[1]));
          return file ? send(res, 200, fileObject(file)) : error(res, 404, MSG_NOT_FOUND);
        }
        const single = /^\/v1\/files\/([^/]+)$/.exec(path);
        if (single?.[1] && method === 'DELETE') {
          const id = decodeURIComponent(single[1]);
          if (!stored.delete(id)) return error(res, 404, MSG_NOT_FOUND);
          return send(res, 204);
        }
      }
      return error(res, 404, 'Not Found');
    })().catch((cause: unknown) => {
      console.error('imagekit stand-in: unexpected error', cause);
      if (!res.headersSent) error(res, 500, 'Internal stand-in error');
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  baseURL = `http://127.0.0.1:${port}`;
  urlEndpoint = `${baseURL}${endpointPath}`;

  return {
    baseURL,
    urlEndpoint,
    publicKey,
    maxFileSize,
    files: () => [...stored.values()].map((file) => ({ ...file, tags: file.tags ? [...file.tags] : null })),
    requests: () => log.map((entry) => ({ ...entry })),
    setNow(ms?: number) {
      fixedNow = ms;
    },
    now,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
