/**
 * One JSON-RPC request to /mcp as a 2026-07-28 client sends it (the per-request `_meta` envelope,
 * the standard headers), without an SDK: for what the SDK client does not do, or does for you
 * (MCP tasks, an input_required retry with answers of the test's choosing). The answer is read
 * from JSON or from the SSE stream.
 */
import type { ConnectedClient } from './mcp-client.ts';

export interface Rpc {
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

let rpcId = 0;

export async function modernRpc(
  mcpUrl: string | URL,
  session: ConnectedClient,
  method: string,
  params: Record<string, unknown>,
  name: string,
  capabilities: Record<string, unknown>,
): Promise<Rpc> {
  rpcId += 1;
  const id = rpcId;
  const response = await fetch(mcpUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${session.accessToken()}`,
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      'mcp-name': name,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'raw-2026', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': capabilities,
        },
      },
    }),
  });
  const text = await response.text();
  const bodies = (response.headers.get('content-type') ?? '').includes('text/event-stream')
    ? text
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
    : [text];
  for (const body of bodies) {
    const message = JSON.parse(body) as Rpc & { id?: number };
    if (message.id === id) return message;
  }
  throw new Error(`no answer to ${method} in ${text.slice(0, 500)}`);
}
