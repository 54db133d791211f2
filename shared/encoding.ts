/** Byte encodings used for tokens, ids and hashes, written once (WebCrypto-era APIs only, so workerd and Node alike). */

/** base64url without padding (RFC 4648 §5), as tokens and cookies carry it. */
export function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** The bytes of base64url text, or null when it is not valid base64url. */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  // A length of 1 mod 4 is never valid base64 (atob would throw).
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const padded = text.replaceAll('-', '+').replaceAll('_', '/') + '='.repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
}

export function toHex(bytes: Uint8Array): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** `bytes` random bytes, for secrets and ids. */
export function randomBytes(bytes: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(bytes));
}
