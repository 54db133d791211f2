/**
 * A 2025-era MCP session id that carries the session itself, so the Worker serves every request of
 * the session on its own, with no lookup: the user it belongs to, what the client said at
 * initialize (protocol revision, capabilities, name) and a random nonce that names the session's
 * mailbox (worker/mcp/session-mailbox.ts). Nothing is stored per session.
 *
 * It is not signed, and needs no signature: it grants nothing. Identity comes from the access token
 * on every request; an id whose user is not the token's user is answered as a session that does not
 * exist, so a user can only ever name their own sessions. What else it carries is the client's own
 * claim about itself, which the client could as well make in a new initialize.
 */
import { z } from 'zod';

const MAX_VERSION_CHARS = 64;
const MAX_INFO_CHARS = 256;

/** The initialize params a session is rebuilt from (replayed into each request's server). */
export const sessionInitialize = z.object({
  protocolVersion: z.string().max(MAX_VERSION_CHARS),
  capabilities: z.record(z.string(), z.unknown()),
  clientInfo: z.object({ name: z.string().max(MAX_INFO_CHARS), version: z.string().max(MAX_INFO_CHARS) }).loose(),
});

/** What an initialize must carry for a session to be minted from it (what the server itself requires). */
const mintable = z.object({
  protocolVersion: z.string(),
  capabilities: z.record(z.string(), z.unknown()),
  clientInfo: z.object({ name: z.string(), version: z.string() }).loose(),
});
export type SessionInitialize = z.infer<typeof sessionInitialize>;

/** The longest id read: a header this size is already far beyond any id minted here. */
export const MAX_SESSION_ID_CHARS = 4096;
/** Capabilities larger than this as JSON are cut to the ones a tool here can use (the id must stay a modest header). */
const MAX_CAPABILITIES_CHARS = 1024;
const USED_CAPABILITIES = ['elicitation', 'sampling', 'roots', 'tasks'] as const;

const claims = z.object({
  v: z.literal(1),
  /** The user the session belongs to (the token's userId). */
  u: z.string().min(1).max(256),
  /** 128 random bits, base64url: names the session's mailbox. */
  n: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  i: sessionInitialize,
});

export interface Session {
  id: string;
  userId: string;
  nonce: string;
  initialize: SessionInitialize;
}

/** JSON written in printable ASCII only (anything else escaped as \uXXXX), so the id is plain base64 of it. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function toBase64url(binary: string): string {
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** The ASCII text an id encodes; null for anything but base64url of printable ASCII (no id minted here is anything else). */
function fromBase64url(text: string): string | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  let decoded: string;
  try {
    decoded = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  } catch {
    return null;
  }
  return /^[\x20-\x7e]*$/.test(decoded) ? decoded : null;
}

/** What of the client's capabilities to keep: all of them when small, else those the tools here use. */
function keptCapabilities(capabilities: Record<string, unknown>): Record<string, unknown> {
  if (JSON.stringify(capabilities).length <= MAX_CAPABILITIES_CHARS) return capabilities;
  const kept: Record<string, unknown> = {};
  for (const key of USED_CAPABILITIES) {
    const value = capabilities[key];
    if (value !== undefined && JSON.stringify(value).length <= MAX_CAPABILITIES_CHARS / USED_CAPABILITIES.length) kept[key] = value;
  }
  return kept;
}

/** A new session for `userId` from its initialize params; null when they are not initialize params (the server refuses those). */
export function mintSession(userId: string, params: unknown): Session | null {
  const parsed = mintable.safeParse(params);
  if (!parsed.success) return null;
  const { protocolVersion, capabilities, clientInfo } = parsed.data;
  // Cut to what an id holds, never refused for length: the server accepts any such initialize, so the session must exist.
  const initialize = {
    protocolVersion: protocolVersion.slice(0, MAX_VERSION_CHARS),
    capabilities: keptCapabilities(capabilities),
    clientInfo: { name: clientInfo.name.slice(0, MAX_INFO_CHARS), version: clientInfo.version.slice(0, MAX_INFO_CHARS) },
  };
  const nonce = toBase64url(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const id = toBase64url(asciiJson({ v: 1, u: userId, n: nonce, i: initialize }));
  return { id, userId, nonce, initialize };
}

/** The session `id` names, when it is a well-formed id of `userId`'s; null for anything else. */
export function readSession(id: string, userId: string): Session | null {
  if (id.length > MAX_SESSION_ID_CHARS) return null;
  const json = fromBase64url(id);
  if (json === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  const parsed = claims.safeParse(value);
  if (!parsed.success || parsed.data.u !== userId) return null;
  return { id, userId, nonce: parsed.data.n, initialize: parsed.data.i };
}
