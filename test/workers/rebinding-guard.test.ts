import { env, SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { auditQuerySchema, readAudit } from '../../worker/audit/audit-log.ts';
import { deploymentNames, rebindingRefusal } from '../../worker/rebinding-guard.ts';
import { readSettings, SettingsError } from '../../worker/settings.ts';
import { accessToken, INITIALIZE, mcpPost, openMcpSession, RESOURCE, TEST_ADMIN } from './oauth-flow.ts';
import { BASE_URL, TEST_RELAY_TOKEN } from './relay-socket.ts';

/** The pool's PUBLIC_URL is http://127.0.0.1:8787; a rebinding page reaches it under its own name. */
const FOREIGN = 'http://rebind.attacker.example:8787';

let token: string;
let sessionId: string;

beforeAll(async () => {
  token = await accessToken();
  sessionId = await openMcpSession(token);
});

function execCall(command: string): string {
  return JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'ssh_exec_command', arguments: { command } } });
}

function mcpHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    Authorization: `Bearer ${token}`,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'mcp-session-id': sessionId,
    'mcp-protocol-version': '2025-11-25',
    ...extra,
  };
}

async function auditRowsFor(command: string): Promise<number> {
  const rows = await readAudit(env, auditQuerySchema.parse({ tool: 'ssh_exec_command', limit: 10_000 }));
  return rows.filter((row) => row.target === command).length;
}

async function expectJsonRpc403(response: Response): Promise<void> {
  expect(response.status).toBe(403);
  expect(response.headers.get('WWW-Authenticate')).toBeNull();
  const body: unknown = await response.json();
  expect(body).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 }, id: null });
}

describe('Host on /mcp', () => {
  it('refuses a request under a foreign name with 403 before authentication (no 401)', async () => {
    const response = await SELF.fetch(`${FOREIGN}/mcp`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(INITIALIZE) });
    await expectJsonRpc403(response);
  });

  it('refuses a forged Host header on the right address with 403', async () => {
    const response = await SELF.fetch(RESOURCE, {
      method: 'POST',
      headers: { Host: 'rebind.attacker.example:8787', 'Content-Type': 'application/json' },
      body: JSON.stringify(INITIALIZE),
    });
    await expectJsonRpc403(response);
  });

  it('runs no tool for a valid token and session under a foreign Host, where the same call runs under ours', async () => {
    const refused = await SELF.fetch(`${FOREIGN}/mcp`, { method: 'POST', headers: mcpHeaders(), body: execCall('echo rebinding-host') });
    await expectJsonRpc403(refused);
    expect(await auditRowsFor('echo rebinding-host')).toBe(0);
    // The control: the same call under PUBLIC_URL's name reaches the gate and is audited (no relay in the pool).
    const allowed = await SELF.fetch(RESOURCE, { method: 'POST', headers: mcpHeaders(), body: execCall('echo rebinding-host-control') });
    expect(allowed.status).toBe(200);
    await allowed.text();
    expect(await auditRowsFor('echo rebinding-host-control')).toBe(1);
  });
});

describe('Origin on /mcp', () => {
  it.each([
    ['a foreign site', 'https://rebind.attacker.example'],
    ['the opaque origin', 'null'],
    ['a malformed value', 'not an origin'],
    ['another port on the same host', 'http://127.0.0.1:9999'],
    ['another scheme on the same host and port', 'https://127.0.0.1:8787'],
    ['our origin with a path', 'http://127.0.0.1:8787/mcp'],
    ['a name that only starts like ours', 'http://127.0.0.1.attacker.example:8787'],
  ])('refuses %s (%s) with 403 and runs nothing', async (_what, origin) => {
    const command = `echo rebinding-origin-${origin.length}-${_what.length}`;
    const response = await SELF.fetch(RESOURCE, { method: 'POST', headers: mcpHeaders({ Origin: origin }), body: execCall(command) });
    await expectJsonRpc403(response);
    expect(await auditRowsFor(command)).toBe(0);
  });

  it('refuses a foreign Origin with 403 even without a token (before the 401)', async () => {
    const response = await SELF.fetch(RESOURCE, {
      method: 'POST',
      headers: { Origin: 'https://rebind.attacker.example', 'Content-Type': 'application/json' },
      body: JSON.stringify(INITIALIZE),
    });
    await expectJsonRpc403(response);
  });

  it('lets our own origin through to the tool', async () => {
    const response = await SELF.fetch(RESOURCE, { method: 'POST', headers: mcpHeaders({ Origin: BASE_URL }), body: execCall('echo rebinding-same-origin') });
    expect(response.status).toBe(200);
    await response.text();
    expect(await auditRowsFor('echo rebinding-same-origin')).toBe(1);
  });

  it('answers a request without a token, from our origin, with 401 pointing at the resource metadata', async () => {
    const response = await SELF.fetch(RESOURCE, {
      method: 'POST',
      headers: { Origin: BASE_URL, 'Content-Type': 'application/json' },
      body: JSON.stringify(INITIALIZE),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('WWW-Authenticate')).toContain(`resource_metadata="${BASE_URL}/.well-known/oauth-protected-resource/mcp"`);
  });
});

describe('the other routes', () => {
  const adminAuth = `Basic ${btoa(`${TEST_ADMIN.username}:${TEST_ADMIN.password}`)}`;

  it.each([
    '/',
    '/healthz',
    '/authorize',
    '/admin',
    '/admin/api/users',
    '/relay',
    '/token',
    '/register',
    '/.well-known/oauth-authorization-server',
    `/transfer/${'0'.repeat(32)}/${'A'.repeat(43)}`,
  ])('refuses %s under a foreign Host with 403', async (path) => {
    const response = await SELF.fetch(`${FOREIGN}${path}`);
    expect(response.status).toBe(403);
    await response.body?.cancel();
  });

  it('refuses the relay WebSocket with a valid token when a foreign page opens it', async () => {
    const response = await SELF.fetch(`${BASE_URL}/relay`, {
      headers: {
        Upgrade: 'websocket',
        Authorization: `Bearer ${TEST_RELAY_TOKEN}`,
        'X-Relay-Id': 'rebinding-relay',
        Origin: 'https://rebind.attacker.example',
      },
    });
    expect(response.status).toBe(403);
    expect(response.webSocket).toBeNull();
  });

  it('refuses the admin API with valid credentials when a foreign page calls it', async () => {
    const response = await SELF.fetch(`${BASE_URL}/admin/api/users`, { headers: { Authorization: adminAuth, Origin: 'https://rebind.attacker.example' } });
    expect(response.status).toBe(403);
    await response.body?.cancel();
    const same = await SELF.fetch(`${BASE_URL}/admin/api/users`, { headers: { Authorization: adminAuth, Origin: BASE_URL } });
    expect(same.status).toBe(200);
    await same.body?.cancel();
  });

  it('leaves the OAuth endpoints and the sign-in page open to other origins (browser-based clients, form posts)', async () => {
    const metadata = await SELF.fetch(`${BASE_URL}/.well-known/oauth-authorization-server`, { headers: { Origin: 'https://inspector.example' } });
    expect(metadata.status).toBe(200);
    await metadata.body?.cancel();
    const tokenEndpoint = await SELF.fetch(`${BASE_URL}/token`, {
      method: 'POST',
      headers: { Origin: 'https://inspector.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=authorization_code&code=x',
    });
    expect(tokenEndpoint.status).not.toBe(403);
    await tokenEndpoint.body?.cancel();
  });
});

describe('names and origins an admin allows', () => {
  const names = deploymentNames({ publicUrl: 'https://mcp.example.com', allowedHostnames: ['mcp-remote-exec.team.workers.dev', '[::1]'] });
  const at = (url: string, headers: Record<string, string> = {}): Request => new Request(url, { headers });

  it("accepts PUBLIC_URL's name and each allowed name, as Host and as https origin", () => {
    expect(rebindingRefusal(at('https://mcp.example.com/mcp', { Origin: 'https://mcp.example.com' }), names)).toBeUndefined();
    expect(rebindingRefusal(at('https://mcp-remote-exec.team.workers.dev/mcp', { Origin: 'https://mcp-remote-exec.team.workers.dev' }), names)).toBeUndefined();
    expect(rebindingRefusal(at('https://[::1]/relay'), names)).toBeUndefined();
    expect(rebindingRefusal(at('https://MCP.Example.com/mcp'), names)).toBeUndefined();
  });

  it('refuses other names, plain-http origins of an https deployment and Host values with userinfo', () => {
    expect(rebindingRefusal(at('https://other.example.com/mcp'), names)?.status).toBe(403);
    expect(rebindingRefusal(at('https://mcp.example.com/mcp', { Origin: 'http://mcp.example.com' }), names)?.status).toBe(403);
    expect(rebindingRefusal(at('https://mcp.example.com/mcp', { Host: 'other.example@mcp.example.com' }), names)?.status).toBe(403);
    expect(rebindingRefusal(at('https://mcp.example.com/mcp', { Host: 'mcp.example.com/x' }), names)?.status).toBe(403);
    expect(rebindingRefusal(at('https://mcp.example.com/mcp', { Host: 'other.example.com' }), names)?.status).toBe(403);
    // A present but empty Origin is not "no Origin" (SELF.fetch drops empty headers, so it is checked here).
    expect(rebindingRefusal(at('https://mcp.example.com/mcp', { Origin: '' }), names)?.status).toBe(403);
  });

  it.each([
    'evil.example@127.0.0.1:8787',
    '127.0.0.1%2e:8787',
    '127.0.0.1.:8787',
    '2130706433:8787',
    '0x7f.0.0.1:8787',
    '127.0.0.1:8787/x',
    '127.0.0.1 :8787',
    '127.0.0.1:8787:1',
    '127.0.0.1:99999999',
    '[::1',
    '',
  ])('refuses the Host value %j, which only a parser would turn into an allowed name', (host) => {
    const local = deploymentNames({ publicUrl: 'http://127.0.0.1:8787', allowedHostnames: [] });
    expect(rebindingRefusal(at('http://127.0.0.1:8787/healthz', { Host: host }), local)?.status).toBe(403);
  });

  it.each(['127.0.0.1:8787', '127.0.0.1', 'LOCALHOST:8787', '[::1]:8787'])('accepts the local Host value %j', (host) => {
    const local = deploymentNames({ publicUrl: 'http://127.0.0.1:8787', allowedHostnames: [] });
    expect(rebindingRefusal(at('http://127.0.0.1:8787/healthz', { Host: host }), local)).toBeUndefined();
  });

  it("gives an allowed name PUBLIC_URL's scheme and port, and allows every loopback name in the local mode only", () => {
    const local = deploymentNames({ publicUrl: 'http://127.0.0.1:8787', allowedHostnames: ['localhost', 'lan-box.example'] });
    expect([...local.origins].sort()).toEqual(['http://127.0.0.1:8787', 'http://[::1]:8787', 'http://lan-box.example:8787', 'http://localhost:8787']);
    expect([...local.hostnames].sort()).toEqual(['127.0.0.1', '[::1]', 'lan-box.example', 'localhost']);
    expect(names.hostnames.has('localhost')).toBe(false);
    expect(rebindingRefusal(at('http://localhost/mcp', { Host: 'localhost:8787' }), names)?.status).toBe(403);
  });

  it("answers the local mode's pages under localhost as well as 127.0.0.1", async () => {
    const response = await SELF.fetch('http://localhost:8787/healthz');
    expect(response.status).toBe(200);
    await response.body?.cancel();
  });

  it("reads ALLOWED_HOSTNAMES as trimmed lowercase names and leaves out PUBLIC_URL's own", () => {
    expect(readSettings({ ...env, ALLOWED_HOSTNAMES: ' MCP.example.com , 127.0.0.1,, b.example ' }).allowedHostnames).toEqual(['mcp.example.com', 'b.example']);
    expect(readSettings({ ...env, ALLOWED_HOSTNAMES: undefined }).allowedHostnames).toEqual([]);
  });

  it.each(['https://mcp.example.com', 'mcp.example.com:443', 'mcp.example.com/mcp', '*.example.com', 'user@mcp.example.com', 'bücher.example', 'a b'])(
    'refuses ALLOWED_HOSTNAMES entry %s with a message naming the variable',
    (value) => {
      expect(() => readSettings({ ...env, ALLOWED_HOSTNAMES: value })).toThrow(SettingsError);
      expect(() => readSettings({ ...env, ALLOWED_HOSTNAMES: value })).toThrow(/ALLOWED_HOSTNAMES/);
    },
  );
});
