/**
 * What ties a 2026-07-28 client's answer to the question it was shown. The question goes back to
 * the client as an input_required result with an opaque `requestState`, and the client's retry
 * carries both; an answer counts only when the retry's state is the one this question would get
 * now. The state is the server-side record the question stands for when there is one (the Worker:
 * its approval record's id, bound to the user, client, host and exact arguments), else an HMAC of
 * the question under a key of this process (stdio: one process serves the whole conversation). A
 * stale answer carried into another call, or a yes sent with no question asked, is not an answer.
 */
import { toHex } from './encoding.ts';

let processKey: Promise<CryptoKey> | null = null;

/** Made on first use: Workers refuse random numbers at a module's top level. */
function key(): Promise<CryptoKey> {
  processKey ??= crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return processKey;
}

/** The state for a question: its record's id, or an HMAC of every part of it the person reads or that decides what runs. */
export async function questionState(parts: readonly unknown[], record?: string): Promise<string> {
  if (record !== undefined) return `record:${record}`;
  const signed = await crypto.subtle.sign('HMAC', await key(), new TextEncoder().encode(JSON.stringify(parts)));
  return `mac:${toHex(new Uint8Array(signed))}`;
}

/** Equal states, compared without an early exit (the state is client-held). */
export function sameState(carried: unknown, expected: string): boolean {
  if (typeof carried !== 'string' || carried.length !== expected.length) return false;
  let difference = 0;
  for (let index = 0; index < expected.length; index += 1) difference |= carried.charCodeAt(index) ^ expected.charCodeAt(index);
  return difference === 0;
}
