import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { auditQuerySchema, readAudit } from '../../worker/audit/audit-log.ts';
import { INVALID_REQUEST, startsWithArray } from '../../worker/mcp-batches.ts';
import { accessToken, INITIALIZE, mcpPost, openMcpSession, RESOURCE } from './oauth-flow.ts';

let token: string;
let sessionId: string;

beforeAll(async () => {
  token = await accessToken();
  sessionId = await openMcpSession(token);
});

const call = (id: number, command: string): Record<string, unknown> => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'ssh_exec_command', arguments: { command } },
});

function post(body: string | Uint8Array, withToken = true): Promise<Response> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'mcp-session-id': sessionId,
    'mcp-protocol-version': '2025-11-25',
  };
  if (withToken) headers.Authorization = `Bearer ${token}`;
  return SELF.fetch(RESOURCE, { method: 'POST', headers, body });
}

async function auditRowsFor(command: string): Promise<number> {
  const rows = await readAudit(env, auditQuerySchema.parse({ tool: 'ssh_exec_command', limit: 10_000 }));
  return rows.filter((row) => row.target === command).length;
}

async function expectBatchRefused(response: Response): Promise<void> {
  expect(response.status).toBe(400);
  const body: unknown = await response.json();
  expect(body).toMatchObject({ jsonrpc: '2.0', error: { code: INVALID_REQUEST }, id: null });
}

describe('JSON-RPC batches on /mcp', () => {
  it('refuses a batch of tool calls with a JSON-RPC error and runs none of them', async () => {
    await expectBatchRefused(await post(JSON.stringify([call(1, 'echo batch-a'), call(2, 'echo batch-b')])));
    expect(await auditRowsFor('echo batch-a')).toBe(0);
    expect(await auditRowsFor('echo batch-b')).toBe(0);
  });

  it('refuses a batch of one', async () => {
    await expectBatchRefused(await post(JSON.stringify([call(3, 'echo batch-one')])));
    expect(await auditRowsFor('echo batch-one')).toBe(0);
  });

  it('refuses a batch behind a byte order mark and whitespace (what Request.json() skips)', async () => {
    const json = new TextEncoder().encode(` \r\n\t${JSON.stringify([call(4, 'echo batch-bom')])}`);
    const body = new Uint8Array([0xef, 0xbb, 0xbf, ...json]);
    await expectBatchRefused(await post(body));
    expect(await auditRowsFor('echo batch-bom')).toBe(0);
  });

  it('refuses a batch before authentication', async () => {
    await expectBatchRefused(await post(JSON.stringify([INITIALIZE]), false));
  });

  it('passes a single message on, with an array inside it', async () => {
    const single = call(5, 'echo [not, a, batch]');
    const response = await post(JSON.stringify(single));
    expect(response.status).toBe(200);
    await response.text();
    expect(await auditRowsFor('echo [not, a, batch]')).toBe(1);
  });
});

describe('startsWithArray', () => {
  it.each([
    ['[]', true],
    ['  \n\t\r[{"a":1}]', true],
    ['\uFEFF[1]', true],
    ['{"a":[1]}', false],
    ['', false],
    ['   ', false],
    ['\uFEFF\uFEFF[1]', false],
    ['"["', false],
  ])('%j → %s', (text, expected) => {
    expect(startsWithArray(new TextEncoder().encode(text))).toBe(expected);
  });
});
