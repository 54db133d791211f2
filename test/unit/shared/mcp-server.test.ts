/**
 * buildMcpServer with onlyTool: a server that answers one tools/call registers that tool alone
 * (the Worker builds one per 2026-07-28 request, and registering the rest was most of the cost),
 * and every tool when the name is not one of its own. A real SDK client talks to it in memory.
 */
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { describe, expect, it } from 'vitest';
import { failure } from '../../../shared/errors.ts';
import { buildMcpServer, type McpServerSpec } from '../../../shared/mcp-server.ts';
import type { ToolExecutor } from '../../../shared/tool-executor.ts';

/** Every call is refused with a message of its own, so a test can tell the handler ran. */
const refusing: ToolExecutor = {
  listHosts: () => Promise.resolve(failure('access_denied', 'listHosts refused here')),
  exec: () => Promise.resolve(failure('access_denied', 'exec refused here')),
  ping: () => Promise.resolve(failure('access_denied', 'ping refused here')),
};

function spec(onlyTool?: string): McpServerSpec {
  return {
    instructions: 'test',
    executor: refusing,
    settings: { characterLimit: 25_000, defaultTimeoutSeconds: 30, maxFileSize: 1024, readBytesPerCall: 1024, writeBytesPerCall: 1024 },
    era: 'legacy',
    proxmox: false,
    imagekit: false,
    ...(onlyTool !== undefined ? { onlyTool } : {}),
  };
}

async function connected(onlyTool?: string): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await buildMcpServer(spec(onlyTool)).connect(serverSide);
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(clientSide);
  return client;
}

function textOf(result: unknown): string {
  const content = typeof result === 'object' && result !== null && 'content' in result && Array.isArray(result.content) ? result.content : [];
  return content.map((item: unknown) => (typeof item === 'object' && item !== null && 'text' in item ? String(item.text) : '')).join('\n');
}

describe('a server built for one tools/call', () => {
  it('registers only the tool named, and that tool answers', async () => {
    const client = await connected('ssh_exec_command');
    const listed = await client.listTools();
    expect(listed.tools.map((tool) => tool.name)).toEqual(['ssh_exec_command']);
    const result = await client.callTool({ name: 'ssh_exec_command', arguments: { command: 'true' } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('exec refused here');
    await client.close();
  });

  it('registers every tool when the name is not one of its own, so an unknown tool gets the SDK answer', async () => {
    const everything = await connected();
    const all = (await everything.listTools()).tools.map((tool) => tool.name);
    await everything.close();
    expect(all).toEqual(expect.arrayContaining(['ssh_list_hosts', 'ssh_exec_command', 'relay_ping']));

    const client = await connected('no_such_tool');
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(all);
    const unknown = await client.callTool({ name: 'no_such_tool', arguments: {} }).catch((error: unknown) => error);
    expect(textOf(unknown) + String(unknown)).toMatch(/no_such_tool/);
    await client.close();
  });
});
