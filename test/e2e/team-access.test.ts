/**
 * Team access end to end: users created through the admin API, signed in through the real OAuth
 * flow, each calling tools on the real sshd. Each can do exactly what the policy allows; a denied
 * call never reaches the relay; every call, allowed or denied, lands in the audit log; disabling
 * a user ends their access at once.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTeam, adminApi } from '../harness/admin-api.ts';
import { relayRequestsDuring as requestsDuring } from '../harness/relay.ts';
import { connectMcpClient, type ConnectedClient } from '../harness/mcp-client.ts';
import type { TestSshd } from '../harness/sshd.ts';
import { startStack, textOf, type Stack } from '../harness/stack.ts';
import { CLI } from '../harness/stdio.ts';

let stack: Stack;
const sessions: ConnectedClient[] = [];
const passwords = new Map<string, string>();

function relayConfig(sshd: TestSshd): unknown {
  const base = { address: '127.0.0.1', port: sshd.port, user: sshd.user, key_path: sshd.privateKeyPath };
  return {
    relay_id: 'team-relay',
    known_hosts: [sshd.knownHostsPath],
    hosts: [
      { name: 'web', ...base, labels: { env: 'prod' } },
      { name: 'lab', ...base, labels: { env: 'lab' } },
      { name: 'vault', ...base, labels: { env: 'lab' }, read_only: true },
    ],
  };
}

const POLICY = {
  version: 1,
  grants: [
    { subjects: ['group:ops'], role: 'operator', hosts: ['*'], note: 'ops run things everywhere' },
    { effect: 'deny', subjects: ['group:contractors'], role: 'operator', hosts: ['env=prod'], note: 'contractors only look at prod' },
    { subjects: ['user:bob'], role: 'viewer', hosts: ['env=lab'] },
  ],
};

async function signIn(username: string): Promise<ConnectedClient> {
  const password = passwords.get(username);
  if (!password) throw new Error(`no password for ${username}`);
  const session = await connectMcpClient(stack.worker.mcpUrl, { username, password });
  sessions.push(session);
  return session;
}

async function call(session: ConnectedClient, name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean; structured: unknown }> {
  const result = await session.client.callTool({ name, arguments: args });
  return { text: textOf(result as never), isError: Boolean(result.isError), structured: result.structuredContent };
}

/** Relay requests completed while `action` ran. */
function relayRequestsDuring(action: () => Promise<unknown>): Promise<number> {
  return requestsDuring(stack.relay, action);
}

beforeAll(async () => {
  stack = await startStack({ relay: (sshd) => ({ configFile: relayConfig(sshd) }) });
  for (const [username, password] of await addTeam(
    stack.worker,
    [
      ['alice', ['ops']],
      ['bob', []],
      ['carol', ['ops', 'contractors']],
    ],
    POLICY,
  ))
    passwords.set(username, password);
});

afterAll(async () => {
  for (const session of sessions) await session.close().catch(() => undefined);
  await stack?.stop();
});

describe('the admin API', () => {
  it('is for admins only: a wrong password gets 401, a non-admin 403', async () => {
    expect((await adminApi(stack.worker, { username: stack.worker.adminUser, password: 'wrong' }).get('users')).status).toBe(401);
    const asBob = await adminApi(stack.worker, { username: 'bob', password: passwords.get('bob') ?? '' }).get('users');
    expect(asBob.status).toBe(403);
    expect(asBob.body.error).toBe('access_denied');
  });

  it('lists users without any password hash, and refuses a bad policy while keeping the old one', async () => {
    const admin = adminApi(stack.worker);
    const listed = await admin.get('users');
    expect(JSON.stringify(listed.body)).not.toMatch(/pbkdf2|passwordHash/);
    expect((listed.body.users as Array<{ username: string }>).map((user) => user.username)).toEqual(expect.arrayContaining(['alice', 'bob', 'carol', 'admin']));
    const refused = await admin.put('policy', { version: 1, grants: [{ subjects: ['alice'], role: 'root', hosts: [] }] });
    expect(refused.status).toBe(400);
    expect(String(refused.body.message)).toMatch(/subject|role/);
    expect((await admin.get('policy')).body).toEqual(
      expect.objectContaining({ grants: expect.arrayContaining([expect.objectContaining({ subjects: ['user:bob'] })]) }),
    );
  });
});

describe('policy in tool calls', () => {
  it('shows a viewer only the hosts they may use, with their role', async () => {
    const bob = await signIn('bob');
    const listed = await call(bob, 'ssh_list_hosts', { check: false });
    expect(listed.isError).toBe(false);
    const hosts = (listed.structured as { hosts: Array<{ name: string; role?: string }> }).hosts;
    expect(hosts.map((host) => [host.name, host.role])).toEqual([
      ['lab', 'viewer'],
      ['vault', 'viewer'],
    ]);
    expect(listed.text).toContain('your role: viewer');
    expect(listed.text).not.toContain('web');
    // Only admins get the audit tool.
    const { tools } = await bob.client.listTools();
    expect(tools.map((tool) => tool.name)).not.toContain('audit_log');
  });

  it('refuses a viewer a command in the Worker: nothing reaches the relay, nothing runs', async () => {
    const bob = await signIn('bob');
    const marker = join(stack.sshd.home, `bob-was-here-${Date.now()}`);
    let denied: Awaited<ReturnType<typeof call>> | undefined;
    const requests = await relayRequestsDuring(async () => {
      denied = await call(bob, 'ssh_exec_command', { host: 'lab', command: `touch ${marker}` });
    });
    expect(denied?.isError).toBe(true);
    expect(denied?.text).toContain('access_denied');
    expect(denied?.text).toContain('viewer');
    expect(requests).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  it('reports a host the caller may not see exactly like one that does not exist', async () => {
    const bob = await signIn('bob');
    const hidden = await call(bob, 'ssh_read_file', { host: 'web', path: '.profile' });
    const missing = await call(bob, 'ssh_read_file', { host: 'no-such-host', path: '.profile' });
    expect(hidden.isError).toBe(true);
    expect(hidden.text).toContain('host_not_configured');
    expect(hidden.text.replace('"web"', '"X"')).toBe(missing.text.replace('"no-such-host"', '"X"'));
  });

  it('lets a viewer read where they are granted', async () => {
    const bob = await signIn('bob');
    const listing = await call(bob, 'ssh_list_directory', { host: 'lab', path: '.' });
    expect(listing.isError).toBe(false);
  });

  it('lets an operator run commands and write files', async () => {
    const alice = await signIn('alice');
    const ran = await call(alice, 'ssh_exec_command', { host: 'web', command: 'echo alice-ran-this' });
    expect(ran.isError).toBe(false);
    expect(ran.text).toContain('alice-ran-this');
    const name = `alice-${Date.now()}.txt`;
    const written = await call(alice, 'ssh_write_file', { host: 'lab', path: name, content: 'hello' });
    expect(written.isError).toBe(false);
    rmSync(join(stack.sshd.home, name), { force: true });
  });

  it('lets deny beat allow: a contractor in ops may look at prod but not run commands there', async () => {
    const carol = await signIn('carol');
    const onProd = await call(carol, 'ssh_exec_command', { host: 'web', command: 'true' });
    expect(onProd.isError).toBe(true);
    expect(onProd.text).toContain('access_denied');
    expect((await call(carol, 'ssh_read_file', { host: 'web', path: '.profile' })).text).not.toContain('access_denied');
    expect((await call(carol, 'ssh_exec_command', { host: 'lab', command: 'true' })).isError).toBe(false);
  });

  it('keeps a host the relay marks read-only at viewer, even for an admin', async () => {
    const refused = await stack.call('ssh_exec_command', { host: 'vault', command: 'true' });
    expect(refused.isError).toBe(true);
    // The real reason, not a grant an admin could give: the relay's configuration.
    expect(textOf(refused)).toContain('Error [host_read_only]');
    expect(textOf(refused)).toContain(`The relay's configuration makes vault read-only`);
    expect(textOf(refused)).not.toMatch(/ask an admin/i);
    const write = await stack.call('ssh_write_file', { host: 'vault', path: 'x', content: 'x' });
    expect(textOf(write)).toContain('Error [host_read_only]');
    const listed = await stack.call('ssh_list_hosts', { check: false });
    const vault = (listed.structuredContent as { hosts: Array<{ name: string; role?: string }> }).hosts.find((host) => host.name === 'vault');
    expect(vault?.role).toBe('viewer');
  });
});

describe('the audit log', () => {
  it('records allowed and denied calls with who, where, what and how they ended, and exports JSONL', async () => {
    const admin = adminApi(stack.worker);
    const denied = await admin.get('audit?user=bob&outcome=denied');
    expect(denied.status).toBe(200);
    const deniedEntries = denied.body.entries as Array<Record<string, unknown>>;
    expect(deniedEntries).toEqual(
      expect.arrayContaining([expect.objectContaining({ user: 'bob', tool: 'ssh_exec_command', host: 'lab', outcome: 'denied', code: 'access_denied' })]),
    );
    expect(String(deniedEntries.find((entry) => entry.tool === 'ssh_exec_command')?.target)).toMatch(/^touch /);
    const allowed = await admin.get('audit?user=alice&tool=ssh_exec_command');
    expect(allowed.body.entries).toEqual(
      expect.arrayContaining([expect.objectContaining({ host: 'web', relay: 'team-relay', target: 'echo alice-ran-this', outcome: 'ok', exitCode: 0 })]),
    );
    const entry = (allowed.body.entries as Array<Record<string, unknown>>)[0];
    expect(typeof entry?.client).toBe('string');
    expect(entry?.durationMs).toEqual(expect.any(Number));
    const write = await admin.get('audit?user=alice&tool=ssh_write_file');
    expect(write.body.entries).toEqual([expect.objectContaining({ bytes: 5, outcome: 'ok' })]);
    // Never file contents.
    expect(JSON.stringify(write.body)).not.toContain('hello');

    const exported = await admin.get('audit?format=jsonl&limit=1000');
    const lines = exported.text.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect((await admin.get('audit?outcome=maybe')).status).toBe(400);
  });

  it('answers an admin through the audit_log tool', async () => {
    const result = await stack.call('audit_log', { user: 'bob', outcome: 'denied' });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toMatch(/bob ssh_exec_command on lab: touch .* → denied \(access_denied\)/);
  });
});

describe('revoking a user', () => {
  it('ends their access at once: the next call fails and a new sign-in is refused', async () => {
    const alice = await signIn('alice');
    expect((await call(alice, 'ssh_exec_command', { host: 'lab', command: 'true' })).isError).toBe(false);
    const link = await call(alice, 'ssh_request_download', { host: 'lab', path: '.profile' });
    expect(link.isError, link.text).toBe(false);
    const disabled = await adminApi(stack.worker).patch('users/alice', { disabled: true });
    expect(disabled.status).toBe(200);
    expect(disabled.body.grantsRevoked).toBeGreaterThanOrEqual(1);
    // The token is revoked, so the client must sign in again, and that is refused.
    await expect(alice.client.callTool({ name: 'ssh_exec_command', arguments: { host: 'lab', command: 'true' } })).rejects.toThrow();
    await expect(signIn('alice')).rejects.toThrow(/Wrong user name or password|401/);
    // A link she asked for before dies with her access.
    const download = await fetch((link.structured as { url: string }).url);
    expect(download.status).toBe(403);
    expect(await download.json()).toMatchObject({ error: 'access_denied' });
    const audited = await adminApi(stack.worker).get('audit?user=alice&tool=transfer_link_download');
    expect(audited.body.entries).toEqual([expect.objectContaining({ outcome: 'denied', code: 'access_denied', host: 'lab' })]);
  });
});

describe('the admin command', () => {
  function admin(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
    const result = spawnSync(process.execPath, [CLI, 'admin', ...args], {
      env: {
        PATH: process.env.PATH,
        MCP_REMOTE_EXEC_URL: stack.worker.url,
        MCP_REMOTE_EXEC_ADMIN_USER: stack.worker.adminUser,
        MCP_REMOTE_EXEC_ADMIN_PASSWORD: stack.worker.adminPassword,
      },
      encoding: 'utf8',
      timeout: 30_000,
      ...(input !== undefined ? { input } : {}),
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  it('adds a user who can then sign in, and round-trips the policy through a file', async () => {
    const added = admin(['users', 'add', 'dave', '--group', 'ops']);
    expect(added.code, added.stderr).toBe(0);
    const password = added.stdout.trim().split('\n').pop() ?? '';
    expect(password).toMatch(/^[A-Za-z0-9]{24}$/);
    passwords.set('dave', password);
    const dave = await signIn('dave');
    expect((await call(dave, 'ssh_exec_command', { host: 'lab', command: 'echo dave' })).text).toContain('dave');

    const exported = admin(['policy', 'get']);
    expect(exported.code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'mre-policy-'));
    const file = join(dir, 'policy.json');
    writeFileSync(file, exported.stdout);
    const reimported = admin(['policy', 'set', file]);
    expect(reimported.code, reimported.stderr).toBe(0);
    expect(reimported.stdout).toContain(`${POLICY.grants.length} grant(s)`);
    rmSync(dir, { recursive: true, force: true });
  });

  it('says what was wrong, and exits non-zero, for a refused change', () => {
    const bad = admin(['policy', 'set', '-'], JSON.stringify({ version: 1, grants: [{ subjects: ['*'], role: 'god', hosts: ['*'] }] }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/400 invalid_argument: The policy was not changed: .*role/);
    const unknown = admin(['users', 'disable', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('There is no user "nobody"');
  });

  it('exports the audit log as JSONL', () => {
    const exported = admin(['audit', '--user', 'dave', '--jsonl']);
    expect(exported.code, exported.stderr).toBe(0);
    const entries = exported.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { user: string; tool: string });
    expect(entries.some((entry) => entry.user === 'dave' && entry.tool === 'ssh_exec_command')).toBe(true);
  });

  it("shows what users typed as data on the admin's terminal, never as control sequences", async () => {
    // A command that would clear the admin's screen and retitle the window if printed raw.
    const hostile = `echo hi # \u001b[2J\u001b]0;pwned\u0007 \u009b31m \u202e`;
    await stack.call('ssh_exec_command', { host: 'lab', command: hostile });
    const listed = admin(['audit', '--tool', 'ssh_exec_command', '--limit', '5']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(String.raw`echo hi # \x1b[2J\x1b]0;pwned\x07 \x9b31m \u{202e}`);
    expect(listed.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    // The export stays exact JSON, its string the command as typed.
    const exported = admin(['audit', '--tool', 'ssh_exec_command', '--jsonl']);
    expect(exported.stdout).not.toMatch(/[\u007f-\u009f\u202a-\u202e]/);
    const targets = exported.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { target: string }).target);
    expect(targets).toContain(hostile);
  });
});
