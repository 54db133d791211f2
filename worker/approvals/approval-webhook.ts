/**
 * The approval webhook: a POST to APPROVAL_WEBHOOK_URL for each new request, so a team can route
 * it to chat. It carries who, which client, which host, the tool, the class and the rule's note,
 * and a link to the admin page; never the command (commands carry passwords), never a token, a
 * cookie or anything that approves: approving always takes a signed-in approver.
 *
 * Signed when APPROVAL_WEBHOOK_SECRET is set: `X-MRE-Signature: t=<unix seconds>,v1=<hex
 * HMAC-SHA256(secret, "<t>.<body>")>`, so the receiver can check it came from this deployment and
 * refuse replays by age. Sent from the ApprovalDesk's alarm with redirects not followed (a redirect
 * could point the POST anywhere) and a 10 s limit; retried a few times, then logged and dropped.
 */
import { toHex } from '../../shared/encoding.ts';
import type { ApprovalRecord } from './approval-record.ts';

export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Delays before the 2nd, 3rd and 4th attempt; then the notification is given up (and logged). */
export const DEFAULT_WEBHOOK_RETRY_DELAYS_MS = [10_000, 60_000, 300_000] as const;
export const SIGNATURE_HEADER = 'X-MRE-Signature';

export interface WebhookConfig {
  url: URL;
  secret: string | null;
  retryDelaysMs: number[];
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The webhook as configured, or null when none is; an unusable URL is reported (logged by the
 * caller) and treated as none rather than stopping approvals. https only; http only to loopback
 * (local mode); no user name or password in the URL.
 */
export function webhookConfig(env: Env): { config: WebhookConfig | null; problem: string | null } {
  const raw = env.APPROVAL_WEBHOOK_URL?.trim();
  if (!raw) return { config: null, problem: null };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { config: null, problem: 'APPROVAL_WEBHOOK_URL is not a URL' };
  }
  if (url.username || url.password) return { config: null, problem: 'APPROVAL_WEBHOOK_URL must not carry a user name or password' };
  const loopback = LOOPBACK.has(url.hostname.toLowerCase());
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    return { config: null, problem: 'APPROVAL_WEBHOOK_URL must be https (http only to 127.0.0.1 or localhost, for local mode)' };
  return { config: { url, secret: env.APPROVAL_WEBHOOK_SECRET?.trim() || null, retryDelaysMs: retryDelays(env) }, problem: null };
}

/** APPROVAL_WEBHOOK_RETRY_MS (comma-separated, for tests): the delays between attempts. */
function retryDelays(env: Env): number[] {
  const raw = env.APPROVAL_WEBHOOK_RETRY_MS?.trim();
  if (!raw) return [...DEFAULT_WEBHOOK_RETRY_DELAYS_MS];
  const delays = raw.split(',').map((part) => Number(part.trim()));
  return delays.length <= 10 && delays.every((delay) => Number.isInteger(delay) && delay >= 0 && delay <= 3_600_000)
    ? delays
    : [...DEFAULT_WEBHOOK_RETRY_DELAYS_MS];
}

/** The JSON body: no command, no secrets, no approve link (only where an approver signs in to see it). */
export function webhookBody(record: ApprovalRecord, publicUrl: string): string {
  return JSON.stringify({
    type: 'approval.requested',
    id: record.id,
    requester: record.requester.username,
    client: record.client,
    host: record.host,
    tool: record.tool,
    class: record.class,
    rule_note: record.rule.note,
    created_at: new Date(record.createdAt).toISOString(),
    expires_at: new Date(record.expiresAt).toISOString(),
    url: `${publicUrl.replace(/\/+$/, '')}/admin/approvals#approval-${record.id}`,
  });
}

export async function signature(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${timestamp}.${body}`));
  return `t=${timestamp},v1=${toHex(new Uint8Array(mac))}`;
}

/** One attempt: true when the receiver answered 2xx. The answer's body is discarded unread. */
export async function sendWebhook(config: WebhookConfig, body: string): Promise<{ delivered: boolean; detail: string }> {
  const headers = new Headers({ 'Content-Type': 'application/json', 'User-Agent': 'mcp-remote-exec approvals' });
  if (config.secret) headers.set(SIGNATURE_HEADER, await signature(config.secret, Math.floor(Date.now() / 1000), body));
  try {
    const response = await fetch(config.url.toString(), { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });
    await response.body?.cancel();
    return { delivered: response.status >= 200 && response.status < 300, detail: `HTTP ${response.status}` };
  } catch (error) {
    return { delivered: false, detail: error instanceof Error ? error.name : 'failed' };
  }
}
