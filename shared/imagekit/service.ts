/**
 * The ImageKit side of a transfer, through the official SDK (fetch-based: the same code runs in
 * the Worker and in Node). The private key stays here: the relay never sees it, and a client gets
 * only single-use upload credentials or a signed, expiring download URL.
 */
import ImageKit, { NotFoundError, toFile } from '@imagekit/nodejs';
import { failure, success, type Outcome } from '../errors.ts';
import type { ImageKitConfig } from './config.ts';

const UPLOAD_ENDPOINT = 'https://upload.imagekit.io/api/v1/files/upload';

export interface StoredFile {
  fileId: string;
  name: string;
  filePath: string;
  size: number;
}

export interface UploadCredentials {
  publicKey: string;
  token: string;
  /** Unix seconds: exactly what ImageKit will enforce. */
  expire: number;
  signature: string;
  uploadUrl: string;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message.slice(0, 500);
  return String(error).slice(0, 500);
}

export class ImageKitService {
  private readonly client: ImageKit;
  private readonly config: ImageKitConfig;

  constructor(config: ImageKitConfig) {
    this.config = config;
    this.client = new ImageKit({ privateKey: config.privateKey, maxRetries: 1, ...(config.apiBaseUrl ? { baseURL: config.apiBaseUrl } : {}) });
  }

  /** Single-use credentials for one client-side upload (the token is new each time). */
  uploadCredentials(expire: number): UploadCredentials {
    const params = this.client.helper.getAuthenticationParameters(crypto.randomUUID(), expire);
    const uploadUrl = this.config.apiBaseUrl ? `${this.config.apiBaseUrl.replace(/\/+$/, '')}/api/v1/files/upload` : UPLOAD_ENDPOINT;
    return { publicKey: this.config.publicKey, token: params.token, expire: params.expire, signature: params.signature, uploadUrl };
  }

  /** The files in exactly this folder. */
  async filesIn(folder: string): Promise<Outcome<StoredFile[]>> {
    try {
      const listed = await this.client.assets.list({ path: folder, type: 'file', limit: 100 });
      const files: StoredFile[] = [];
      for (const asset of listed) {
        if (asset.type !== 'file' || !asset.fileId || !asset.filePath) continue;
        const parent = asset.filePath.slice(0, asset.filePath.lastIndexOf('/')) || '/';
        if (parent !== folder) continue;
        files.push({ fileId: asset.fileId, name: asset.name ?? '', filePath: asset.filePath, size: asset.size ?? 0 });
      }
      return success(files);
    } catch (error) {
      return failure('imagekit_error', `ImageKit could not list ${folder}: ${describe(error)}`);
    }
  }

  async details(fileId: string): Promise<Outcome<StoredFile | null>> {
    try {
      const file = await this.client.files.get(fileId);
      if (!file.fileId || !file.filePath) return success(null);
      return success({ fileId: file.fileId, name: file.name ?? '', filePath: file.filePath, size: file.size ?? 0 });
    } catch (error) {
      if (error instanceof NotFoundError) return success(null);
      return failure('imagekit_error', `ImageKit could not describe file ${fileId}: ${describe(error)}`);
    }
  }

  /** A signed URL for a (private) file that stops working after `expiresInSeconds`. */
  signedUrl(filePath: string, expiresInSeconds: number): string {
    // tr=orig-true: the bytes as stored, never an "optimised" rendition the CDN would otherwise choose.
    return this.client.helper.buildSrc({
      urlEndpoint: this.config.urlEndpoint,
      src: filePath,
      signed: true,
      expiresIn: expiresInSeconds,
      transformation: [{ original: true }],
      transformationPosition: 'query',
    });
  }

  /** The file's bytes, fetched through a short-lived signed URL. */
  async open(file: StoredFile): Promise<Outcome<ReadableStream<Uint8Array>>> {
    const response = await fetch(this.signedUrl(file.filePath, 300));
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      return failure('imagekit_error', `ImageKit answered ${response.status} when the file ${file.filePath} was fetched.`);
    }
    return success(response.body);
  }

  /** Store bytes as a private file (a signed URL is then the only way to fetch them). */
  async upload(folder: string, name: string, bytes: Uint8Array): Promise<Outcome<StoredFile>> {
    try {
      const uploaded = await this.client.files.upload({
        file: await toFile(bytes, name),
        fileName: name,
        folder,
        useUniqueFileName: false,
        isPrivateFile: true,
        overwriteFile: false,
      });
      if (!uploaded.fileId || !uploaded.filePath) return failure('imagekit_error', 'ImageKit accepted the upload but did not say where the file is.');
      return success({ fileId: uploaded.fileId, name: uploaded.name ?? name, filePath: uploaded.filePath, size: uploaded.size ?? bytes.length });
    } catch (error) {
      return failure('imagekit_error', `ImageKit refused the upload: ${describe(error)}`);
    }
  }

  /** Delete a file; one that is already gone counts as deleted. */
  async delete(fileId: string): Promise<Outcome<void>> {
    try {
      await this.client.files.delete(fileId);
      return success(undefined);
    } catch (error) {
      if (error instanceof NotFoundError) return success(undefined);
      return failure('imagekit_error', `ImageKit could not delete file ${fileId}: ${describe(error)}`);
    }
  }

  /** Delete every file in a transfer's folder (expiry clean-up). */
  async deleteFolderFiles(folder: string): Promise<Outcome<number>> {
    const listed = await this.filesIn(folder);
    if (!listed.ok) return listed;
    for (const file of listed.value) {
      const deleted = await this.delete(file.fileId);
      if (!deleted.ok) return deleted;
    }
    return success(listed.value.length);
  }
}
