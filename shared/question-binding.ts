/**
 * What ties a 2026-07-28 client's answer to the question it was shown. The question goes back to
 * the client as an input_required result with an opaque `requestState`, and the client's retry
 * carries both; an answer counts only when the retry's state is one this server gave for that very
 * question. With a server-side record behind the question (the Worker: its approval record, bound
 * to the user, client, host and exact arguments, and used once), the state is the record's id.
 * Without one (stdio: one process serves the conversation), it is a nonce and its time, signed
 * with the question under a key of this process, good for one answer within ANSWER_WINDOW_MS. A yes
 * sent with no question asked, carried into another call, or replayed, is not an answer.
 */
import { toHex } from './encoding.ts';

/** How long a question's state stays good for its answer: a person reads the question first. */
export const ANSWER_WINDOW_MS = 15 * 60_000;
/** States answered and not yet past their window, kept to refuse a replay. */
const MAX_REMEMBERED = 10_000;

let processKey: Promise<CryptoKey> | null = null;
const answered = new Map<string, number>();

/** Made on first use: Workers refuse random numbers at a module's top level. */
function key(): Promise<CryptoKey> {
  processKey ??= crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return processKey;
}

async function mac(nonce: string, issuedAt: number, parts: readonly unknown[]): Promise<string> {
  const signed = await crypto.subtle.sign('HMAC', await key(), new TextEncoder().encode(JSON.stringify([nonce, issuedAt, parts])));
  return toHex(new Uint8Array(signed));
}

/** A new state for the question made of `parts` (everything the person reads or that decides what runs), or its record's. */
export async function questionState(parts: readonly unknown[], record?: string): Promise<string> {
  if (record !== undefined) return `record:${record}`;
  const nonce = toHex(crypto.getRandomValues(new Uint8Array(16)));
  const issuedAt = Date.now();
  return `mac:${nonce}.${issuedAt}.${await mac(nonce, issuedAt, parts)}`;
}

/**
 * Whether `carried` (from the client) is a state this server gave for this question: the record's
 * own; or, without a record, one signed for exactly these parts, within its window, and not
 * answered before (it is spent by this check).
 */
export async function answersQuestion(carried: unknown, parts: readonly unknown[], record?: string): Promise<boolean> {
  if (record !== undefined) return sameState(carried, `record:${record}`);
  if (typeof carried !== 'string') return false;
  const match = /^mac:([0-9a-f]{32})\.(\d{1,16})\.([0-9a-f]{64})$/.exec(carried);
  if (!match) return false;
  const [, nonce = '', issued = '', signature = ''] = match;
  const issuedAt = Number(issued);
  const now = Date.now();
  if (!(issuedAt <= now && now - issuedAt <= ANSWER_WINDOW_MS)) return false;
  if (!sameState(signature, await mac(nonce, issuedAt, parts))) return false;
  forgetPast(now);
  // Full: no answer is taken (the question is asked again) rather than forget one that could be replayed.
  if (answered.has(nonce) || answered.size >= MAX_REMEMBERED) return false;
  answered.set(nonce, issuedAt + ANSWER_WINDOW_MS);
  return true;
}

/** Drops the answered states past their window (they cannot be answered again anyway). */
function forgetPast(now: number): void {
  for (const [nonce, until] of answered) {
    if (until >= now) break;
    answered.delete(nonce);
  }
}

/** Equal strings, compared without an early exit (the state is client-held). */
export function sameState(carried: unknown, expected: string): boolean {
  if (typeof carried !== 'string' || carried.length !== expected.length) return false;
  let difference = 0;
  for (let index = 0; index < expected.length; index += 1) difference |= carried.charCodeAt(index) ^ expected.charCodeAt(index);
  return difference === 0;
}
