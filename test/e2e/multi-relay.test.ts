/**
 * Several relays on one deployment, end to end: two real relay processes against wrangler dev and
 * the real sshd. One comes in with the deployment token, one with a credential an admin issued
 * through the CLI. Hosts are addressed as relay/host when names collide, calls reach the right
 * relay, a copy of a live relay's credential does not take over, and revoking a credential closes
 * its connection and removes its hosts.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../harness/admin-api.ts';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { connectMcpClient } from '../harness/mcp-client.ts';
import { startRelay, type TestRelay } from '../harness/relay.ts';
import type { TestSshd } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { CLI } from '../harness/stdio.ts';

let stack: Stack;
let siteB: TestRelay | undefined;
let siteBToken = '';
const extra: TestRelay[] = [];

function hostsFor(sshd: TestSshd, relayId: string | undefined, names: string[]): unknown {
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath };
  return {
    ...(relayId ? { relay_id: relayId } : {}),
    known_hosts: [sshd.knownHostsPath],
    hosts: names.map((name) => ({ name, ...base, labels: { site: relayId ?? 'b' } })),
  };
}

function admin(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, 'admin', ...args], {
    env: {
      PATH: process.env.PATH,
      MCP_REMOTE_EXEC_URL: stack.worker.url,
      MCP_REMOTE_EXEC_ADMIN_USER: stack.worker.adminUser,
      MCP_REMOTE_EXEC_ADMIN_PASSWORD: stack.worker.adminPassword,
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function call(name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean; structured: Record<string, unknown> | undefined }> {
  const result = await stack.call(name, args);
  return { text: textOf(result), isError: Boolean(result.isError), structured: result.structuredContent };
}

/** Relay requests a relay completed while `action` ran, read from its own log. */
async function requestsOn(relay: TestRelay, action: () => Promise<unknown>): Promise<number> {
  const mark = relay.process.mark();
  await action();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return (relay.process.outputSince(mark).match(/"msg":"request done"/g) ?? []).length;
}

beforeAll(async () => {
  stack = await startStack({ relay: (sshd) => ({ configFile: hostsFor(sshd, 'site-a', ['web', 'lab']) }) });
  const issued = admin(['relays', 'add', 'site-b']);
  expect(issued.code, issued.stderr).toBe(0);
  siteBToken = /RELAY_TOKEN=(\S+)/.exec(issued.stdout)?.[1] ?? '';
  expect(siteBToken.startsWith('site-b:')).toBe(true);
  // No RELAY_ID: the relay takes its name from the token.
  siteB = await startRelay(stack.worker, stack.sshd, {
    configFile: hostsFor(stack.sshd, undefined, ['web', 'nas']),
    env: { RELAY_TOKEN: siteBToken, RELAY_ID: '' },
  });
}, 240_000);

afterAll(async () => {
  for (const relay of extra) await relay.stop();
  await siteB?.stop();
  await stack?.stop();
});

describe('several relays', () => {
  it('lists every relay and names colliding hosts relay/host', async () => {
    const listed = await call('ssh_list_hosts', { response_format: 'json' });
    expect(listed.isError, listed.text).toBe(false);
    const hosts = (listed.structured?.hosts as Array<{ name: string; relay: string }>).map((host) => `${host.name}@${host.relay}`).sort();
    expect(hosts).toEqual(['lab@site-a', 'nas@site-b', 'site-a/web@site-a', 'site-b/web@site-b']);
    const relays = (listed.structured?.relays as Array<{ id: string; connected: boolean }>).map((relay) => `${relay.id}:${relay.connected}`).sort();
    expect(relays).toEqual(['site-a:true', 'site-b:true']);
  });

  it('refuses a colliding bare name, naming the choices, and sends nothing to either relay', async () => {
    if (!siteB) throw new Error('site-b relay missing');
    const onB = await requestsOn(siteB, async () => {
      const onA = await requestsOn(stack.relay, async () => {
        const result = await call('ssh_exec_command', { host: 'web', command: 'true' });
        expect(result.isError).toBe(true);
        expect(result.text).toContain('site-a/web or site-b/web');
      });
      expect(onA).toBe(0);
    });
    expect(onB).toBe(0);
  });

  it('routes relay/host and unique names to the relay that serves them', async () => {
    if (!siteB) throw new Error('site-b relay missing');
    const onB = await requestsOn(siteB, async () => {
      const onA = await requestsOn(stack.relay, async () => {
        const result = await call('ssh_exec_command', { host: 'site-b/web', command: 'echo via-b', response_format: 'json' });
        expect(result.isError, result.text).toBe(false);
        expect(result.structured).toMatchObject({ host: 'site-b/web', stdout: 'via-b\n', exit_code: 0 });
        const nas = await call('ssh_exec_command', { host: 'nas', command: 'echo nas', response_format: 'json' });
        expect(nas.structured).toMatchObject({ host: 'nas', stdout: 'nas\n' });
      });
      expect(onA).toBe(0);
    });
    expect(onB).toBe(2);
    const onA = await requestsOn(stack.relay, () => call('ssh_exec_command', { host: 'lab', command: 'true' }));
    expect(onA).toBe(1);
  });

  it('audits the relay each call went to', async () => {
    const audit = admin(['audit', '--tool', 'ssh_exec_command', '--jsonl']);
    expect(audit.code, audit.stderr).toBe(0);
    const rows = audit.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { relay: string | null; host: string | null; target: string });
    expect(rows.find((row) => row.target === 'echo via-b')).toMatchObject({ relay: 'site-b', host: 'web' });
    expect(rows.find((row) => row.target === 'echo nas')).toMatchObject({ relay: 'site-b', host: 'nas' });
  });

  it('grants by relay: "relay=site-b" covers that relay\'s hosts only, named as the caller sees them', async () => {
    const admin = adminApi(stack.worker);
    const added = await admin.post('users', { username: 'bonly' });
    expect(added.status, added.text).toBe(201);
    expect((await admin.put('policy', { version: 1, grants: [{ subjects: ['user:bonly'], role: 'operator', hosts: ['relay=site-b'] }] })).status).toBe(200);
    const session = await connectMcpClient(stack.worker.mcpUrl, { username: 'bonly', password: String(added.body.password) });
    try {
      const listed = await session.client.callTool({ name: 'ssh_list_hosts', arguments: { response_format: 'json' } });
      const names = (listed.structuredContent as { hosts: Array<{ name: string; relay: string }> }).hosts.map((host) => `${host.name}@${host.relay}`).sort();
      // Only site-b's hosts, so "web" is unique for this caller and needs no relay prefix.
      expect(names).toEqual(['nas@site-b', 'web@site-b']);
      const ran = await session.client.callTool({ name: 'ssh_exec_command', arguments: { host: 'web', command: 'echo b-only', response_format: 'json' } });
      expect(ran.structuredContent).toMatchObject({ stdout: 'b-only\n' });
      const refused = await session.client.callTool({ name: 'ssh_exec_command', arguments: { host: 'site-a/lab', command: 'true' } });
      expect(refused.isError).toBe(true);
    } finally {
      await session.close();
      await admin.put('policy', { version: 1, grants: [] });
    }
  });

  it('pings the relay asked for, and asks which one when several serve', async () => {
    const ambiguous = await call('relay_ping', {});
    expect(ambiguous.isError).toBe(true);
    expect(ambiguous.text).toContain('site-a, site-b');
    const ping = await call('relay_ping', { relay: 'site-b' });
    expect(ping.isError, ping.text).toBe(false);
    expect(ping.structured).toMatchObject({ relay_id: 'site-b' });
  });

  it('does not let a second relay with the same credential take over', async () => {
    const copy = await startRelay(stack.worker, stack.sshd, {
      configFile: hostsFor(stack.sshd, undefined, ['evil']),
      env: { RELAY_TOKEN: siteBToken, RELAY_ID: '' },
      noWait: true,
    });
    extra.push(copy);
    await copy.process.waitFor(/already connected/, 20_000);
    const listed = await call('ssh_list_hosts', { response_format: 'json' });
    const names = (listed.structured?.hosts as Array<{ name: string }>).map((host) => host.name);
    expect(names).toContain('nas');
    expect(names).not.toContain('evil');
    await copy.stop();
    extra.splice(extra.indexOf(copy), 1);
  });

  it('shows each relay state to admins', () => {
    const relays = admin(['relays']);
    expect(relays.code, relays.stderr).toBe(0);
    expect(relays.stdout).toMatch(/^site-a \[online\] deployment credential, version \S+, last connected \S+ {2}hosts: web, lab$/m);
    expect(relays.stdout).toMatch(/^site-b \[online\] issued credential/m);
  });

  it('revoking a credential closes the live connection and removes its hosts at once', async () => {
    if (!siteB) throw new Error('site-b relay missing');
    const mark = siteB.process.mark();
    const revoked = admin(['relays', 'revoke', 'site-b']);
    expect(revoked.code, revoked.stderr).toBe(0);
    await siteB.process.waitFor(/hub connection closed[\s\S]*4010|4010[\s\S]*hub connection closed/, 20_000);
    const listed = await call('ssh_list_hosts', { response_format: 'json' });
    const hosts = (listed.structured?.hosts as Array<{ name: string }>).map((host) => host.name).sort();
    expect(hosts).toEqual(['lab', 'web']);
    const gone = await call('ssh_exec_command', { host: 'nas', command: 'true' });
    expect(gone.isError).toBe(true);
    expect(gone.text).toContain('host_not_configured');
    // Its reconnect attempts are refused with the reason.
    const refused = await siteB.process.waitFor(/hub refused the WebSocket upgrade.*/, 30_000);
    expect(refused).toContain('"status":401');
    expect(refused).toContain('was revoked');
    expect(siteB.process.outputSince(mark)).not.toContain('"msg":"connected to hub"');
    expect(admin(['relays']).stdout).toMatch(/^site-b \[revoked /m);
  });
});

describe('the relays section of the admin page (chromium)', () => {
  it('shows each relay state, issues a token once, and revokes with a confirmation', async () => {
    const browser = await launchBrowser();
    try {
      const page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
      await page.goto(`${stack.worker.url}/admin/relays`);
      await page.fill('#username', stack.worker.adminUser);
      await page.fill('#password', stack.worker.adminPassword);
      await Promise.all([page.waitForNavigation(), page.click('main button[type=submit]')]);
      await page.goto(`${stack.worker.url}/admin/relays`);
      const rowOf = (name: string) => page.locator('tbody tr', { hasText: name }).first();
      expect(await rowOf('site-a').textContent()).toMatch(/online[\s\S]*web, lab[\s\S]*deployment token/);
      expect(await rowOf('site-b').textContent()).toMatch(/revoked[\s\S]*its own token/);
      await screenshot(page, 'relays-01-states');

      await page.fill('#relay-name', 'site-c');
      await Promise.all([page.waitForNavigation(), page.click('form[action="/admin/relays"] button[type=submit]')]);
      const token = ((await page.locator('#relay-token').textContent()) ?? '').trim();
      expect(token).toMatch(/^site-c:[A-Za-z0-9_-]{43}$/);
      await screenshot(page, 'relays-02-token-issued');
      await page.goto(`${stack.worker.url}/admin/relays`);
      expect(await page.content()).not.toContain(token);
      expect(await rowOf('site-c').textContent()).toMatch(/offline[\s\S]*never connected/);

      await page.click('a[href="/admin/relays/revoke?relay=site-c"]');
      await page.waitForURL(/revoke\?relay=site-c/);
      await screenshot(page, 'relays-03-confirm-revoke');
      await Promise.all([page.waitForNavigation(), page.click('button.danger')]);
      expect(await rowOf('site-c').textContent()).toContain('revoked');
      expect(
        spawnSync(process.execPath, [CLI, 'admin', 'relays'], {
          env: {
            PATH: process.env.PATH,
            MCP_REMOTE_EXEC_URL: stack.worker.url,
            MCP_REMOTE_EXEC_ADMIN_USER: stack.worker.adminUser,
            MCP_REMOTE_EXEC_ADMIN_PASSWORD: stack.worker.adminPassword,
          },
          encoding: 'utf8',
        }).stdout,
      ).toMatch(/^site-c \[revoked /m);
    } finally {
      await browser.close();
    }
  });
});
