import { isLegacyRequest, PROTOCOL_VERSION_META_KEY } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { quickEra } from '../../../worker/mcp/quick-era.ts';

const claim = { [PROTOCOL_VERSION_META_KEY]: '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'c', version: '1' } };

/** Requests of both eras and the awkward ones in between; each with the body the entry parsed. */
const cases: Array<{ name: string; method?: string; headers?: Record<string, string>; body: unknown }> = [
  { name: 'a 2025 initialize', body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {} } } },
  {
    name: 'a 2025 tools/call',
    headers: { 'mcp-protocol-version': '2025-11-25' },
    body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x' } },
  },
  {
    name: 'a 2025 tools/call with a progress token',
    body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x', _meta: { progressToken: 1 } } },
  },
  { name: 'a 2025 notification', body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } } },
  { name: 'a 2025 tools/list without params', body: { jsonrpc: '2.0', id: 3, method: 'tools/list' } },
  {
    name: 'a 2026 tools/call',
    headers: { 'mcp-protocol-version': '2026-07-28' },
    body: { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'x', _meta: claim } },
  },
  { name: 'a 2026 claim without the header', body: { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'x', _meta: claim } } },
  {
    name: 'a 2026 claim under a 2025 header',
    headers: { 'mcp-protocol-version': '2025-11-25' },
    body: { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { _meta: claim } },
  },
  { name: 'a modern header without a claim', headers: { 'mcp-protocol-version': '2026-07-28' }, body: { jsonrpc: '2.0', id: 5, method: 'tools/list' } },
  {
    name: 'an initialize under a modern header',
    headers: { 'mcp-protocol-version': ' 2026-07-28 ' },
    body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} },
  },
  { name: 'a modern header on a notification', headers: { 'mcp-protocol-version': '2026-07-28' }, body: { jsonrpc: '2.0', method: 'notifications/x' } },
  { name: 'a response under a modern header', headers: { 'mcp-protocol-version': '2026-07-28' }, body: { jsonrpc: '2.0', id: 9, result: {} } },
  { name: 'a response', body: { jsonrpc: '2.0', id: 9, result: {} } },
  { name: 'params that are not an object', body: { jsonrpc: '2.0', id: 6, method: 'tools/list', params: [1] } },
  { name: '_meta that is not an object', body: { jsonrpc: '2.0', id: 6, method: 'tools/list', params: { _meta: 'x' } } },
  { name: 'a claim that is not a string', body: { jsonrpc: '2.0', id: 6, method: 'tools/list', params: { _meta: { [PROTOCOL_VERSION_META_KEY]: 7 } } } },
  { name: 'no jsonrpc member', body: { id: 6, method: 'tools/list' } },
  { name: 'not JSON-RPC at all', body: { hello: 'world' } },
  { name: 'a batch', body: [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }] },
  { name: 'no body', body: undefined },
  { name: 'a GET', method: 'GET', body: undefined },
  { name: 'a DELETE', method: 'DELETE', body: undefined },
];

describe('quickEra', () => {
  for (const entry of cases) {
    it(`agrees with the SDK's isLegacyRequest whenever it answers: ${entry.name}`, async () => {
      const method = entry.method ?? 'POST';
      const init: RequestInit = { method, headers: { 'content-type': 'application/json', ...entry.headers } };
      if (method === 'POST' && entry.body !== undefined) init.body = JSON.stringify(entry.body);
      const request = new Request('https://mcp.example/mcp', init);
      const quick = quickEra(request, entry.body);
      const legacy = await isLegacyRequest(request, entry.body);
      if (quick !== undefined) expect(quick).toBe(legacy ? 'legacy' : 'modern');
    });
  }

  it('answers the requests real clients of both eras send, so they skip the second validation', () => {
    const answered = cases.filter((entry) => /^a 202[56] (initialize|tools\/call|notification|tools\/list)/.test(entry.name));
    expect(answered.length).toBeGreaterThan(4);
    for (const entry of answered) {
      const request = new Request('https://mcp.example/mcp', { method: 'POST', headers: entry.headers ?? {} });
      expect(quickEra(request, entry.body), entry.name).not.toBeUndefined();
    }
  });
});
