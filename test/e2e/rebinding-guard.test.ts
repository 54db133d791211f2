/**
 * The DNS-rebinding guard through wrangler dev, the real relay and sshd: a request that carries a
 * valid token and session but a foreign Host or Origin (what a rebinding page's browser sends) is
 * refused with 403, the relay hears nothing and the audit log has no row; the same request under
 * PUBLIC_URL's name runs, and the SDK client keeps working. A JSON-RPC batch is refused the same way.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';

let stack: Stack;
let token: string;
let sessionId: string;

interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A POST to the Worker over node:http, which (unlike fetch) lets a test set Host as a browser on a
 * rebound name would. Bounded: the request is abandoned after 30 s.
 */
function rawPost(path: string, headers: Record<string, string>, body: string): Promise<RawReply> {
  const target = new URL(stack.worker.url);
  return new Promise((resolve, reject) => {
    const sent = request(
      {
        host: target.hostname,
        port: Number(target.port),
        path,
        method: 'POST',
        headers: { 'Content-Length': String(Buffer.byteLength(body)), ...headers },
        timeout: 30_000,
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
        response.on('error', reject);
      },
    );
    sent.on('timeout', () => sent.destroy(new Error(`POST ${path} got no answer within 30 s`)));
    sent.on('error', reject);
    sent.end(body);
  });
}

function mcpHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${token}`,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-11-25',
  };
  if (sessionId) headers['mcp-session-id'] = sessionId;
  return { Host: new URL(stack.worker.url).host, ...headers, ...extra };
}

const execCall = (command: string): string =>
  JSON.stringify({ jsonrpc: '2.0', id: 41, method: 'tools/call', params: { name: 'ssh_exec_command', arguments: { command } } });

async function auditedCommands(): Promise<string[]> {
  const audit = await adminApi(stack.worker).get('audit?tool=ssh_exec_command&limit=1000');
  expect(audit.status).toBe(200);
  const entries = audit.body.entries as Array<{ target?: string }>;
  return entries.map((entry) => entry.target ?? '');
}

beforeAll(async () => {
  stack = await startStack();
  token = stack.mcp.accessToken();
  // A session of our own, opened the ordinary way, so the forged requests below lack nothing but the right name.
  sessionId = '';
  const opened = await rawPost(
    '/mcp',
    mcpHeaders(),
    JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'rebinding-e2e', version: '1' } },
    }),
  );
  expect(opened.status).toBe(200);
  const header = opened.headers['mcp-session-id'];
  if (typeof header !== 'string') throw new Error('no session id');
  sessionId = header;
  const initialized = await rawPost('/mcp', mcpHeaders(), JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  expect(initialized.status).toBe(202);
});

afterAll(async () => {
  await stack?.stop();
});

/** What a browser on a rebound or foreign page adds to an otherwise valid request. */
const FORGERIES: Array<[string, () => Record<string, string>]> = [
  ['a forged Host', () => ({ Host: `rebind.attacker.example:${stack.worker.port}` })],
  ['a foreign Origin', () => ({ Origin: `http://rebind.attacker.example:${stack.worker.port}` })],
  ['another local site as Origin', () => ({ Origin: 'http://127.0.0.1:1' })],
  ['Origin: null', () => ({ Origin: 'null' })],
];

describe('DNS-rebinding defence through wrangler dev', () => {
  it('refuses a valid call with a foreign Host or Origin with 403; nothing reaches the relay or the audit log, while the same call under our name runs', async () => {
    const mark = stack.relay.process.mark();
    const refusedCommands: string[] = [];
    for (const [what, extra] of FORGERIES) {
      const command = `echo rebinding-${what.replaceAll(/\W+/g, '-')}`;
      refusedCommands.push(command);
      const refused = await rawPost('/mcp', mcpHeaders(extra()), execCall(command));
      expect(refused.status, what).toBe(403);
      expect(JSON.parse(refused.body), what).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
    }
    // The control, sent after them: the same raw request under PUBLIC_URL's name (and its own origin) runs.
    const allowed = await rawPost('/mcp', mcpHeaders({ Origin: stack.worker.url }), execCall('echo rebinding-control'));
    expect(allowed.status).toBe(200);
    expect(allowed.body).toContain('rebinding-control');
    // Once the control's row is there, a row of any refused call would be too.
    const audited = await auditedCommands();
    expect(audited).toContain('echo rebinding-control');
    for (const command of refusedCommands) expect(audited).not.toContain(command);
    // The relay logs one line per request it ran: the control's only.
    expect(stack.relay.process.outputSince(mark).match(/"msg":"request done"/g)).toHaveLength(1);
  });

  it('refuses a JSON-RPC batch of valid calls with -32600; the relay runs none of them', async () => {
    const mark = stack.relay.process.mark();
    const batch = `[${execCall('echo rebinding-batch-a')},${execCall('echo rebinding-batch-b')}]`;
    const refused = await rawPost('/mcp', mcpHeaders(), batch);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 }, id: null });
    const allowed = await rawPost('/mcp', mcpHeaders(), execCall('echo rebinding-batch-control'));
    expect(allowed.status).toBe(200);
    const audited = await auditedCommands();
    expect(audited).toContain('echo rebinding-batch-control');
    expect(audited).not.toContain('echo rebinding-batch-a');
    expect(audited).not.toContain('echo rebinding-batch-b');
    expect(stack.relay.process.outputSince(mark).match(/"msg":"request done"/g)).toHaveLength(1);
  });

  it('keeps the SDK client working', async () => {
    const result = await stack.call('ssh_exec_command', { command: 'echo client-still-works' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(textOf(result)).toContain('client-still-works');
  });
});
