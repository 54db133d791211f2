import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMcpClient } from '../harness/mcp-client.ts';
import { freePort } from '../harness/ports.ts';
import { startManaged, type Managed } from '../harness/processes.ts';
import { seedHostEnv } from '../harness/relay.ts';
import { startSshd, type TestSshd } from '../harness/sshd.ts';
import { textOf } from '../harness/stack.ts';
import { offlineWranglerEnv, PROJECT_ROOT } from '../harness/worker.ts';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';

let sshd: TestSshd;
let stateDir: string;
let port: number;

beforeAll(async () => {
  sshd = await startSshd();
  stateDir = mkdtempSync(join(tmpdir(), 'mre-local-'));
  port = await freePort();
});

afterAll(async () => {
  await sshd?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

/** What `npm start` runs, with the test's port, state directory and host. */
function startLocal(extraEnv: Record<string, string>): Managed {
  return startManaged(process.execPath, [join(PROJECT_ROOT, 'scripts', 'start-local.ts')], {
    cwd: PROJECT_ROOT,
    env: { ...offlineWranglerEnv(), PORT: String(port), LOCAL_STATE_DIR: stateDir, ...seedHostEnv(sshd), ...extraEnv },
  });
}

describe('npm start (local mode)', () => {
  let password = '';

  it('starts the Worker and a connected relay, and prints the MCP URL and a one-time admin password', async () => {
    const local = startLocal({ I_ACCEPT_RISKS: 'true' });
    try {
      const banner = await local.waitFor(/Sign in as "admin" with the password (\S+)/, 120_000);
      password = /password (\S+)/.exec(banner)?.[1] ?? '';
      expect(local.output()).toContain(`MCP URL:      http://127.0.0.1:${port}/mcp`);
      expect(local.output()).toContain(`claude mcp add --transport http mcp-remote-exec http://127.0.0.1:${port}/mcp`);
      await local.waitFor(/\[relay\] .*"msg":"connected to hub"/, 30_000);
      expect(statSync(join(stateDir, 'secrets.env')).mode & 0o777).toBe(0o600);

      const mcp = await connectMcpClient(`http://127.0.0.1:${port}/mcp`, { username: 'admin', password });
      const result = CallToolResultSchema.parse(await mcp.client.callTool({ name: 'ssh_exec_command', arguments: { command: 'echo local-ok' } }));
      expect(textOf(result)).toContain('local-ok');
      await mcp.close();
      // The password itself is never written down, only its hash.
      expect(local.output().split(password).length).toBe(2);
    } finally {
      await local.stop();
    }
  });

  it('keeps its state across restarts and does not print the password again', async () => {
    const local = startLocal({ I_ACCEPT_RISKS: 'true' });
    try {
      await local.waitFor(/password printed on the first start/, 120_000);
      await local.waitFor(/\[relay\] .*"msg":"connected to hub"/, 30_000);
      const mcp = await connectMcpClient(`http://127.0.0.1:${port}/mcp`, { username: 'admin', password });
      const result = CallToolResultSchema.parse(await mcp.client.callTool({ name: 'ssh_list_hosts', arguments: {} }));
      expect(result.structuredContent).toMatchObject({ hosts: [{ name: 'testhost', reachable: true }] });
      await mcp.close();
    } finally {
      await local.stop();
    }
  });

  it("serves no storage explorer on the Worker's port, even when the environment asks wrangler for one", async () => {
    // wrangler dev's local explorer runs SQL in any Durable Object for whoever reaches the port:
    // the team directory, with its users and policy, would be open to every process on the machine.
    const local = startLocal({ I_ACCEPT_RISKS: '', X_LOCAL_EXPLORER: 'true' });
    try {
      await local.waitFor(/The relay was NOT started\./, 120_000);
      const explorer = `http://127.0.0.1:${port}/cdn-cgi/local/explorer`;
      const namespaces = await fetch(`${explorer}/api/workers/durable_objects/namespaces`);
      const listed = await namespaces.text();
      expect(namespaces.status).toBe(404);
      expect(listed).not.toContain('TeamDirectory');
      const query = await fetch(`${explorer}/api/workers/durable_objects/namespaces/mcp-remote-exec-TeamDirectory/query`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ durable_object_name: 'team', queries: [{ sql: "SELECT name FROM sqlite_master WHERE type = 'table'" }] }),
      });
      const answered = await query.text();
      expect(query.status).toBe(404);
      expect(answered).not.toContain('rows');
      const page = await fetch(explorer);
      expect(await page.text()).not.toContain('Local Explorer');
    } finally {
      await local.stop();
    }
  });

  it('runs the Worker but not the relay until the risks are accepted', async () => {
    const local = startLocal({ I_ACCEPT_RISKS: '' });
    try {
      await local.waitFor(/The relay was NOT started\. .*I_ACCEPT_RISKS=true/, 120_000);
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      await local.stop();
    }
  });
});
