/**
 * ImageKit settings, read the same way in the Worker (vars and secrets) and in the stdio mode
 * (environment): ENABLE_IMAGEKIT=true with the three credentials, as in the seed. Enabled with a
 * credential missing is an error that names it: the plugin is never silently off.
 */
export interface ImageKitConfig {
  publicKey: string;
  privateKey: string;
  /** e.g. https://ik.imagekit.io/your_id (no trailing slash). */
  urlEndpoint: string;
  /** Where transfers live in the media library, e.g. /mcp-remote-exec (no trailing slash). */
  folder: string;
  /** IMAGEKIT_TRANSFER_TIMEOUT: how long a transfer may stay open, seconds. */
  transferTimeoutSeconds: number;
  /** The API's base URL: ImageKit's own unless IMAGEKIT_API_BASE_URL points elsewhere (a proxy, a test stand-in). */
  apiBaseUrl: string | null;
}

export const DEFAULT_IMAGEKIT_FOLDER = '/mcp-remote-exec';
export const DEFAULT_TRANSFER_TIMEOUT_SECONDS = 3600;
/** ImageKit accepts upload credentials that expire less than an hour ahead. */
export const MAX_UPLOAD_CREDENTIAL_SECONDS = 3600 - 60;

export class ImageKitConfigError extends Error {
  override name = 'ImageKitConfigError';
}

/** Where the variables come from: a Worker's env or a process environment. */
type Source = {
  [
    K in
      | 'ENABLE_IMAGEKIT'
      | 'IMAGEKIT_PUBLIC_KEY'
      | 'IMAGEKIT_PRIVATE_KEY'
      | 'IMAGEKIT_URL_ENDPOINT'
      | 'IMAGEKIT_FOLDER'
      | 'IMAGEKIT_TRANSFER_TIMEOUT'
      | 'IMAGEKIT_API_BASE_URL'
  ]?: string | undefined;
};

function enabled(value: string | undefined): boolean {
  const text = value?.trim().toLowerCase() ?? '';
  if (text === '' || ['false', '0', 'no', 'off'].includes(text)) return false;
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  throw new ImageKitConfigError(`ENABLE_IMAGEKIT must be true or false, not "${value}".`);
}

/** The ImageKit settings, or null when ENABLE_IMAGEKIT is off. Throws ImageKitConfigError naming what is wrong. */
export function readImageKitConfig(source: Source): ImageKitConfig | null {
  if (!enabled(source.ENABLE_IMAGEKIT)) return null;
  const required = (name: 'IMAGEKIT_PUBLIC_KEY' | 'IMAGEKIT_PRIVATE_KEY' | 'IMAGEKIT_URL_ENDPOINT'): string => {
    const value = source[name]?.trim();
    if (!value)
      throw new ImageKitConfigError(
        `ENABLE_IMAGEKIT=true but ${name} is not set. Set it (the Worker: wrangler secret put / [vars]; stdio: the environment or .env), or set ENABLE_IMAGEKIT=false.`,
      );
    return value;
  };
  const publicKey = required('IMAGEKIT_PUBLIC_KEY');
  const privateKey = required('IMAGEKIT_PRIVATE_KEY');
  const endpointText = required('IMAGEKIT_URL_ENDPOINT');
  let urlEndpoint: URL;
  try {
    urlEndpoint = new URL(endpointText);
  } catch {
    throw new ImageKitConfigError(`IMAGEKIT_URL_ENDPOINT must be a URL such as https://ik.imagekit.io/your_id, not "${endpointText}".`);
  }
  const folderText = source.IMAGEKIT_FOLDER?.trim() || DEFAULT_IMAGEKIT_FOLDER;
  if (!/^\/[A-Za-z0-9._/-]*$/.test(folderText) || folderText.includes('..')) {
    throw new ImageKitConfigError(`IMAGEKIT_FOLDER must be a folder path such as /mcp-remote-exec (letters, digits, ".", "_", "-", "/"), not "${folderText}".`);
  }
  const timeoutText = source.IMAGEKIT_TRANSFER_TIMEOUT?.trim();
  const timeout = timeoutText ? Number(timeoutText) : DEFAULT_TRANSFER_TIMEOUT_SECONDS;
  if (!Number.isInteger(timeout) || timeout < 10 || timeout > 7 * 24 * 3600) {
    throw new ImageKitConfigError(`IMAGEKIT_TRANSFER_TIMEOUT must be a whole number of seconds from 10 to 604800, not "${timeoutText}".`);
  }
  const apiBaseUrl = source.IMAGEKIT_API_BASE_URL?.trim() || null;
  return {
    publicKey,
    privateKey,
    urlEndpoint: urlEndpoint.toString().replace(/\/+$/, ''),
    folder: folderText.replace(/\/+$/, '') || '/',
    transferTimeoutSeconds: timeout,
    apiBaseUrl,
  };
}
