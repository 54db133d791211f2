import { env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { auditQuerySchema, readAudit } from '../../worker/audit/audit-log.ts';
import {
  ADMIN_API_BODY_LIMIT_BYTES,
  MCP_BODY_LIMIT_BYTES,
  REGISTER_BODY_LIMIT_BYTES,
  TOKEN_BODY_LIMIT_BYTES,
  withBodyLimit,
} from '../../worker/body-limits.ts';
import { accessToken, INITIALIZE, mcpPost, RESOURCE, TEST_ADMIN } from './oauth-flow.ts';
import { BASE_URL } from './relay-socket.ts';

/** A body sent in chunks with no Content-Length (what a chunked upload looks like to the Worker). */
function chunked(total: number, chunkSize = 64 * 1024, fill = 0x20): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller): void {
      if (sent >= total) {
        controller.close();
        return;
      }
      const size = Math.min(chunkSize, total - sent);
      sent += size;
      controller.enqueue(new Uint8Array(size).fill(fill));
    },
  });
}

/** A JSON-RPC tools/call padded with trailing spaces to exactly `size` bytes. */
function paddedCall(id: number, size: number): Uint8Array {
  const json = JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'ssh_exec_command', arguments: { command: `echo body-limit-${id}` } },
  });
  const bytes = new Uint8Array(size).fill(0x20);
  bytes.set(new TextEncoder().encode(json));
  return bytes;
}

function streamOf(bytes: Uint8Array, chunkSize = 64 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller): void {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(at, at + chunkSize));
      at += chunkSize;
    },
  });
}

const adminAuth = `Basic ${btoa(`${TEST_ADMIN.username}:${TEST_ADMIN.password}`)}`;

async function openSession(token: string): Promise<string> {
  const response = await mcpPost(token, INITIALIZE);
  expect(response.status).toBe(200);
  const sessionId = response.headers.get('mcp-session-id');
  await response.body?.cancel();
  if (!sessionId) throw new Error('no session id');
  return sessionId;
}

function mcpHeaders(token: string, sessionId: string): Record<string, string> {
  return {
    Authorization: `Bearer ${token}`,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'mcp-session-id': sessionId,
    'mcp-protocol-version': '2025-11-25',
  };
}

async function auditRowsFor(command: string): Promise<number> {
  const rows = await readAudit(env, auditQuerySchema.parse({ tool: 'ssh_exec_command', limit: 10_000 }));
  return rows.filter((row) => row.target === command).length;
}

describe('request body limits at the Worker entry', () => {
  it('refuses a chunked /mcp body over the limit with 413 and runs no tool', async () => {
    const token = await accessToken();
    const sessionId = await openSession(token);
    const body = paddedCall(7001, MCP_BODY_LIMIT_BYTES + 1);
    const response = await SELF.fetch(RESOURCE, { method: 'POST', headers: mcpHeaders(token, sessionId), body: streamOf(body), duplex: 'half' } as RequestInit);
    expect(response.status).toBe(413);
    expect(await response.text()).toContain('ssh_request_upload');
    expect(await auditRowsFor('echo body-limit-7001')).toBe(0);
  });

  it('passes a chunked /mcp body of exactly the limit on to the tool', async () => {
    const token = await accessToken();
    const sessionId = await openSession(token);
    const body = paddedCall(7002, MCP_BODY_LIMIT_BYTES);
    const response = await SELF.fetch(RESOURCE, { method: 'POST', headers: mcpHeaders(token, sessionId), body: streamOf(body), duplex: 'half' } as RequestInit);
    expect(response.status).toBe(200);
    await response.text();
    // No relay in the pool: the call is refused there, but it ran as far as the gate and was audited.
    expect(await auditRowsFor('echo body-limit-7002')).toBe(1);
  });

  it('refuses a Content-Length over the limit at once, before authentication', async () => {
    const response = await SELF.fetch(RESOURCE, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': String(MCP_BODY_LIMIT_BYTES + 1) },
      body: streamOf(new Uint8Array(MCP_BODY_LIMIT_BYTES + 1).fill(0x20)),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
  });

  it.each([
    ['/register', REGISTER_BODY_LIMIT_BYTES, { 'Content-Type': 'application/json' }],
    ['/token', TOKEN_BODY_LIMIT_BYTES, { 'Content-Type': 'application/x-www-form-urlencoded' }],
    ['/authorize', 64 * 1024, { 'Content-Type': 'application/x-www-form-urlencoded' }],
    ['/admin/api/users', ADMIN_API_BODY_LIMIT_BYTES, { 'Content-Type': 'application/json', Authorization: adminAuth }],
  ])('refuses a chunked body over the limit of %s with 413', async (path, limit, headers) => {
    const response = await SELF.fetch(`${BASE_URL}${path}`, { method: 'POST', headers, body: chunked(limit + 1), duplex: 'half' } as RequestInit);
    expect(response.status).toBe(413);
  });

  it('adds no user when an admin API body runs over the limit mid-JSON', async () => {
    const username = `limit-${crypto.randomUUID().slice(0, 8)}`;
    const json = new TextEncoder().encode(JSON.stringify({ username, groups: ['x'.repeat(ADMIN_API_BODY_LIMIT_BYTES)] }));
    const response = await SELF.fetch(`${BASE_URL}/admin/api/users`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: adminAuth },
      body: streamOf(json),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    const listed = await SELF.fetch(`${BASE_URL}/admin/api/users`, { headers: { Authorization: adminAuth } });
    expect(await listed.text()).not.toContain(username);
  });

  it('refuses a transfer upload whose Content-Length is over MAX_FILE_SIZE before looking at the link', async () => {
    const response = await SELF.fetch(`${BASE_URL}/transfer/${'0'.repeat(32)}/${'A'.repeat(43)}`, {
      method: 'PUT',
      headers: { 'Content-Length': String(10 * 1024 * 1024 + 1) },
      body: chunked(10 * 1024 * 1024 + 1, 1024 * 1024),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
  });

  describe('a streamed transfer upload', () => {
    const LIMIT = 1024 * 1024;
    const upload = (body: ReadableStream<Uint8Array>, contentLength?: number): Request =>
      new Request(`${BASE_URL}/transfer/${'0'.repeat(32)}/${'A'.repeat(43)}`, {
        method: 'PUT',
        headers: contentLength !== undefined ? { 'Content-Length': String(contentLength) } : {},
        body,
        duplex: 'half',
      } as RequestInit);
    /** A handler that reads the whole body, as the relay hub does, and reports what it saw. */
    const reader =
      (seen: { bytes: number; failed: boolean }) =>
      async (request: Request): Promise<Response> => {
        try {
          seen.bytes = (await request.arrayBuffer()).byteLength;
          return new Response('written', { status: 201 });
        } catch {
          seen.failed = true;
          return new Response('the upload broke', { status: 400 });
        }
      };

    it("breaks the handler's read past the limit and answers 413 whatever the handler said", async () => {
      const seen = { bytes: 0, failed: false };
      const response = await withBodyLimit(upload(chunked(LIMIT + 1, 64 * 1024, 0x61)), LIMIT, reader(seen));
      expect(response.status).toBe(413);
      expect(seen.failed).toBe(true);
    });

    it('passes a body of exactly the limit through whole', async () => {
      const seen = { bytes: 0, failed: false };
      const response = await withBodyLimit(upload(chunked(LIMIT, 64 * 1024, 0x61)), LIMIT, reader(seen));
      expect(response.status).toBe(201);
      expect(seen.bytes).toBe(LIMIT);
    });

    it('leaves a body the handler never reads unread and unlocked', async () => {
      const body = chunked(LIMIT * 4, 64 * 1024, 0x61);
      const response = await withBodyLimit(upload(body), LIMIT, () => Promise.resolve(new Response('length required', { status: 411 })));
      expect(response.status).toBe(411);
      expect(body.locked).toBe(false);
    });
  });
});
