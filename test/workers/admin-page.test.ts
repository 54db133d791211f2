/**
 * The admin page (/admin) in the Workers pool: who gets in, that every change needs the CSRF
 * token and an admin rechecked on each request, and what each section does with good and bad input.
 */
import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_POLICY, type Policy } from '../../worker/team/policy.ts';
import { auditLog, type AuditEntry } from '../../worker/audit/audit-log.ts';
import { teamDirectory } from '../../worker/team/team-directory.ts';
import { TEST_ADMIN } from './oauth-flow.ts';
import { csrfOf, PageClient } from './page-client.ts';

const team = teamDirectory(env);
const unique = (prefix: string): string => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

/** The one-time password as the users page shows it. */
function shownPassword(html: string): string | null {
  return /<code id="one-time-password">([A-Za-z0-9]{24})<\/code>/.exec(html)?.[1] ?? null;
}

async function signedInAdmin(): Promise<PageClient> {
  const admin = new PageClient();
  const reply = await admin.signIn(TEST_ADMIN.username, TEST_ADMIN.password);
  expect(reply.status, reply.html).toBe(303);
  await admin.get('/admin');
  return admin;
}

async function addUserThroughPage(admin: PageClient, username: string, groups = ''): Promise<string> {
  await admin.get('/admin');
  const reply = await admin.post('/admin/users', { action: 'add', username, groups });
  expect(reply.status, reply.html.slice(0, 2000)).toBe(200);
  const password = shownPassword(reply.html);
  expect(password).not.toBeNull();
  return password ?? '';
}

let policyBefore: Policy;
beforeAll(async () => {
  policyBefore = await team.policy();
});
afterAll(async () => {
  // The pool's team directory is shared with other test files: leave the policy as it was.
  await team.setPolicy(policyBefore ?? EMPTY_POLICY);
});

describe('admin page: signing in', () => {
  it('shows the sign-in form, with a CSRF token, when there is no session', async () => {
    const browser = new PageClient();
    const reply = await browser.get('/admin');
    expect(reply.status).toBe(200);
    expect(reply.html).toContain('Sign in to the admin page');
    expect(reply.html).toContain('action="/admin/sign-in"');
    expect(csrfOf(reply.html)).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(reply.html).not.toContain('id="users"');
    for (const path of ['/admin/policy', '/admin/audit', '/admin/policy/export', '/admin/audit/export']) {
      const other = await browser.get(path);
      expect(other.status, path).toBe(200);
      expect(other.html, path).toContain('Sign in to the admin page');
    }
  });

  it('answers a wrong password with 401 and a message, and sets no session', async () => {
    const browser = new PageClient();
    await browser.get('/admin');
    const reply = await browser.post('/admin/sign-in', { username: TEST_ADMIN.username, password: 'not-the-password' });
    expect(reply.status).toBe(401);
    expect(reply.html).toContain('Wrong user name or password.');
    expect(reply.html).toContain(`value="${TEST_ADMIN.username}"`);
    expect(reply.headers.getSetCookie().some((cookie) => cookie.startsWith('mre-session='))).toBe(false);
    // A later good sign-in clears the account's failure count.
    expect((await browser.post('/admin/sign-in', { username: TEST_ADMIN.username, password: TEST_ADMIN.password })).status).toBe(303);
  });

  it('refuses a sign-in without the CSRF token', async () => {
    const browser = new PageClient();
    await browser.get('/admin');
    const reply = await browser.post('/admin/sign-in', { username: TEST_ADMIN.username, password: TEST_ADMIN.password }, null);
    expect(reply.status).toBe(403);
    expect(reply.headers.getSetCookie().some((cookie) => cookie.startsWith('mre-session='))).toBe(false);
  });

  it('signs the deployment admin in, back to the page asked for, and out again', async () => {
    const browser = new PageClient();
    await browser.get('/admin/policy');
    const reply = await browser.post('/admin/sign-in', { username: TEST_ADMIN.username, password: TEST_ADMIN.password, next: '/admin/policy' });
    expect(reply.status).toBe(303);
    expect(new URL(reply.location ?? '').pathname).toBe('/admin/policy');
    const users = await browser.get('/admin');
    expect(users.status).toBe(200);
    expect(users.html).toContain('id="users"');
    expect(users.html).toContain(`Signed in as <strong>${TEST_ADMIN.username}</strong>`);

    const out = await browser.post('/admin/sign-out', {});
    expect(out.status).toBe(303);
    expect((await browser.get('/admin')).html).toContain('Sign in to the admin page');
  });

  it('never redirects off the admin page after sign-in', async () => {
    for (const next of ['https://evil.example/', '//evil.example/admin', '/admin/../authorize', '/elsewhere']) {
      const browser = new PageClient();
      await browser.get('/admin');
      const reply = await browser.post('/admin/sign-in', { username: TEST_ADMIN.username, password: TEST_ADMIN.password, next });
      expect(reply.status, next).toBe(303);
      const location = new URL(reply.location ?? '');
      expect(location.origin, next).toBe('http://127.0.0.1:8787');
      expect(location.pathname, next).toBe('/admin');
    }
  });

  it('serves every page unframeable, script-free and uncached', async () => {
    const admin = await signedInAdmin();
    for (const path of ['/admin', '/admin/policy', '/admin/audit']) {
      const reply = await admin.get(path);
      expect(reply.status, path).toBe(200);
      const csp = reply.headers.get('Content-Security-Policy') ?? '';
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).toContain("default-src 'none'");
      expect(csp, path).not.toContain('script-src');
      expect(reply.headers.get('X-Frame-Options'), path).toBe('DENY');
      expect(reply.headers.get('Cache-Control'), path).toBe('no-store');
      expect(reply.html, path).not.toContain('<script');
    }
    const signIn = await new PageClient().get('/admin');
    expect(signIn.headers.get('X-Frame-Options')).toBe('DENY');
    expect(signIn.headers.get('Content-Security-Policy')).toContain("frame-ancestors 'none'");
  });
});

describe('admin page: who may use it', () => {
  it('shows a signed-in user who is not an admin a 403 page with only a sign-out button', async () => {
    const admin = await signedInAdmin();
    const username = unique('viewer');
    const password = await addUserThroughPage(admin, username);

    const user = new PageClient();
    expect((await user.signIn(username, password)).status).toBe(303);
    for (const path of ['/admin', '/admin/policy', '/admin/audit', '/admin/policy/export', '/admin/audit/export']) {
      const reply = await user.get(path);
      expect(reply.status, path).toBe(403);
      expect(reply.html, path).toContain('not an admin of this deployment');
      expect(reply.html, path).toContain('action="/admin/sign-out"');
      expect(reply.html, path).not.toContain('<nav><a');
      expect(reply.html, path).not.toContain('"grants"');
    }
    // Not even with a valid CSRF token of its own can it change anything.
    const victim = unique('victim');
    const attempt = await user.post('/admin/users', { action: 'add', username: victim });
    expect(attempt.status).toBe(403);
    expect((await team.listUsers()).some((entry) => entry.username === victim)).toBe(false);
  });

  it('rechecks admin standing on every request: a revoked admin grant locks the page at once', async () => {
    const admin = await signedInAdmin();
    const username = unique('second-admin');
    const password = await addUserThroughPage(admin, username, 'page-admins');
    const saved = await team.setPolicy({ version: 1, grants: [{ subjects: ['group:page-admins'], role: 'admin', hosts: ['*'] }] });
    expect(saved.ok).toBe(true);

    const second = new PageClient();
    expect((await second.signIn(username, password)).status).toBe(303);
    expect((await second.get('/admin')).status).toBe(200);
    await team.setPolicy(EMPTY_POLICY);
    expect((await second.get('/admin')).status).toBe(403);
  });

  it('ends the session of a user an admin disables', async () => {
    const admin = await signedInAdmin();
    const username = unique('leaver');
    const password = await addUserThroughPage(admin, username);
    const user = new PageClient();
    await user.signIn(username, password);
    expect((await user.get('/admin')).status).toBe(403);

    await admin.get('/admin');
    const disabled = await admin.post('/admin/users', { action: 'disable', username });
    expect(disabled.status).toBe(303);
    expect((await admin.get(new URL(disabled.location ?? '').pathname + new URL(disabled.location ?? '').search)).html).toContain(`Disabled ${username}`);
    const after = await user.get('/admin');
    expect(after.status).toBe(200);
    expect(after.html).toContain('Sign in to the admin page');
  });
});

describe('admin page: CSRF', () => {
  it('refuses a change with no token or a wrong one, and changes nothing', async () => {
    const admin = await signedInAdmin();
    const username = unique('csrf');
    for (const csrf of [null, 'x'.repeat(32), '']) {
      const reply = await admin.post('/admin/users', { action: 'add', username }, csrf);
      expect(reply.status, String(csrf)).toBe(403);
      expect(reply.html).toContain('nothing was changed');
      expect(shownPassword(reply.html)).toBeNull();
    }
    expect((await team.listUsers()).some((entry) => entry.username === username)).toBe(false);

    const before = await team.policy();
    await admin.get('/admin/policy');
    const policy = await admin.post(
      '/admin/policy',
      { policy: JSON.stringify({ version: 1, grants: [{ subjects: ['*'], role: 'admin', hosts: ['*'] }] }) },
      'wrong-token',
    );
    expect(policy.status).toBe(403);
    expect(await team.policy()).toEqual(before);
  });

  it('refuses a change from a browser with no session, even with a token', async () => {
    const stranger = new PageClient();
    await stranger.get('/admin');
    const username = unique('nosession');
    const reply = await stranger.post('/admin/users', { action: 'add', username });
    expect(reply.status).toBe(401);
    expect((await team.listUsers()).some((entry) => entry.username === username)).toBe(false);
  });
});

describe('admin page: users', () => {
  it('shows a new user’s one-time password once, and that password signs them in', async () => {
    const admin = await signedInAdmin();
    const username = unique('newbie');
    const reply = await admin.post('/admin/users', { action: 'add', username, groups: 'ops, dev' });
    expect(reply.status).toBe(200);
    expect(reply.location).toBeNull();
    const password = shownPassword(reply.html);
    expect(password).not.toBeNull();
    expect(reply.html).toContain('not shown again');

    const listed = await admin.get('/admin');
    expect(listed.html).toContain(`data-user="${username}"`);
    expect(listed.html).toContain('value="ops, dev"');
    expect(listed.html).not.toContain(password ?? 'no password');
    expect(listed.html).not.toContain('id="one-time-password"');

    const user = new PageClient();
    expect((await user.signIn(username, password ?? '')).status).toBe(303);
  });

  it('explains a refused new user and keeps what was typed', async () => {
    const admin = await signedInAdmin();
    const bad = await admin.post('/admin/users', { action: 'add', username: 'bad name<script>', groups: 'ops' });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('username: a user name is 1-64 letters');
    expect(bad.html).toContain('value="bad name&lt;script&gt;"');
    expect(bad.html).not.toContain('bad name<script>');

    const taken = await admin.post('/admin/users', { action: 'add', username: TEST_ADMIN.username });
    expect(taken.status).toBe(409);
    expect(taken.html).toContain('deployment&#39;s own admin account');
  });

  it('edits groups, disables, enables, resets and deletes (after a confirmation step)', async () => {
    const admin = await signedInAdmin();
    const username = unique('worker');
    const firstPassword = await addUserThroughPage(admin, username, 'ops');

    const grouped = await admin.post('/admin/users', { action: 'groups', username, groups: 'db,  web' });
    expect(grouped.status).toBe(303);
    expect((await team.access(username)).subject.groups).toEqual(['db', 'web']);

    await admin.get('/admin');
    expect((await admin.post('/admin/users', { action: 'disable', username })).status).toBe(303);
    expect((await team.access(username)).active).toBe(false);
    expect((await admin.get('/admin')).html).toMatch(new RegExp(`data-user="${username}"[\\s\\S]*?badge disabled`));
    expect((await admin.post('/admin/users', { action: 'enable', username })).status).toBe(303);
    expect((await team.access(username)).active).toBe(true);

    await admin.get('/admin');
    const reset = await admin.post('/admin/users', { action: 'reset', username });
    expect(reset.status).toBe(200);
    const newPassword = shownPassword(reset.html);
    expect(newPassword).not.toBeNull();
    expect(newPassword).not.toBe(firstPassword);
    expect((await new PageClient().signIn(username, firstPassword)).status).toBe(401);
    expect((await new PageClient().signIn(username, newPassword ?? '')).status).toBe(303);

    const confirm = await admin.get(`/admin/users/delete?username=${encodeURIComponent(username)}`);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain(`Delete ${username}?`);
    expect((await team.listUsers()).some((entry) => entry.username === username)).toBe(true);
    const deleted = await admin.post('/admin/users', { action: 'delete', username });
    expect(deleted.status).toBe(303);
    expect((await team.listUsers()).some((entry) => entry.username === username)).toBe(false);
  });

  it('marks the bootstrap admin and offers no actions on it', async () => {
    const admin = await signedInAdmin();
    const html = (await admin.get('/admin')).html;
    const row = new RegExp(`<tr data-user="${TEST_ADMIN.username}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';
    expect(row).toContain('deployment admin');
    expect(row).not.toContain('<form');
  });
});

describe('admin page: policy', () => {
  const GOOD: Policy = {
    version: 1,
    grants: [{ effect: 'allow', subjects: ['group:page-test'], role: 'viewer', hosts: ['env=lab'], note: 'from the page test' }],
  };

  it('keeps the stored policy and shows the error and the submitted text when the document is bad', async () => {
    const admin = await signedInAdmin();
    await team.setPolicy(GOOD);
    await admin.get('/admin/policy');
    const wrongRole = JSON.stringify({ version: 1, grants: [{ subjects: ['*'], role: 'superuser', hosts: ['*'] }] });
    const reply = await admin.post('/admin/policy', { policy: wrongRole });
    expect(reply.status).toBe(400);
    expect(reply.html).toContain('The policy was not changed: grants.0.role: role must be one of viewer, operator, admin');
    expect(reply.html).toContain('&quot;superuser&quot;');
    expect(await team.policy()).toEqual(GOOD);

    const notJson = await admin.post('/admin/policy', { policy: '{ "version": 1, <b>oops</b>' });
    expect(notJson.status).toBe(400);
    expect(notJson.html).toContain('not valid JSON');
    expect(notJson.html).toContain('&lt;b&gt;oops&lt;/b&gt;');
    expect(notJson.html).not.toContain('<b>oops</b>');
    expect(await team.policy()).toEqual(GOOD);
  });

  it('saves a valid document and shows it', async () => {
    const admin = await signedInAdmin();
    await admin.get('/admin/policy');
    const reply = await admin.post('/admin/policy', { policy: JSON.stringify(GOOD) });
    expect(reply.status).toBe(303);
    expect(await team.policy()).toEqual(GOOD);
    const shown = await admin.get('/admin/policy?done=saved');
    expect(shown.html).toContain('Saved the policy.');
    expect(shown.html).toContain('from the page test');
  });

  it('exports the policy as a policy.json attachment', async () => {
    const admin = await signedInAdmin();
    await team.setPolicy(GOOD);
    const reply = await admin.get('/admin/policy/export');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('Content-Disposition')).toBe('attachment; filename="policy.json"');
    expect(reply.headers.get('Content-Type')).toContain('application/json');
    expect(reply.headers.get('Cache-Control')).toBe('no-store');
    expect(JSON.parse(reply.html)).toEqual(GOOD);
  });

  it('imports a policy file with the same checks', async () => {
    const admin = await signedInAdmin();
    await team.setPolicy(EMPTY_POLICY);
    await admin.get('/admin/policy');
    const bad = new FormData();
    bad.set('file', new File([JSON.stringify({ version: 2, grants: [] })], 'policy.json', { type: 'application/json' }));
    const refused = await admin.post('/admin/policy/import', bad);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('version: version must be 1');
    expect(await team.policy()).toEqual(EMPTY_POLICY);

    const good = new FormData();
    good.set('file', new File([JSON.stringify(GOOD)], 'policy.json', { type: 'application/json' }));
    const imported = await admin.post('/admin/policy/import', good);
    expect(imported.status).toBe(303);
    expect(await team.policy()).toEqual(GOOD);
  });
});

describe('admin page: audit log', () => {
  const entry = (user: string, overrides: Partial<AuditEntry> = {}): AuditEntry => ({
    time: new Date().toISOString(),
    user,
    client: 'pool client',
    relay: 'relay-1',
    host: 'web',
    tool: 'ssh_exec_command',
    target: 'echo <hello> & "bye"',
    outcome: 'ok',
    code: null,
    exitCode: 0,
    bytes: 12,
    durationMs: 34,
    ...overrides,
  });

  it('filters by user and outcome, escapes what it shows, and exports the same rows as JSONL', async () => {
    const admin = await signedInAdmin();
    const someone = unique('audited');
    const other = unique('other');
    await auditLog(env).record(entry(someone));
    await auditLog(env).record(entry(someone, { outcome: 'denied', code: 'access_denied', exitCode: null, host: 'db', target: 'rm -rf /' }));
    await auditLog(env).record(entry(other));

    const all = await admin.get(`/admin/audit?user=${someone}`);
    expect(all.status).toBe(200);
    expect(all.html).toContain('2 calls, newest first');
    expect(all.html).toContain('echo &lt;hello&gt; &amp; &quot;bye&quot;');
    expect(all.html).not.toContain(other);

    const denied = await admin.get(`/admin/audit?user=${someone}&outcome=denied&host=&tool=`);
    expect(denied.html).toContain('1 call, newest first');
    expect(denied.html).toContain('access_denied');
    expect(denied.html).toContain(`href="/admin/audit/export?user=${someone}&amp;outcome=denied"`);

    const exported = await admin.get(`/admin/audit/export?user=${someone}&outcome=denied`);
    expect(exported.status).toBe(200);
    expect(exported.headers.get('Content-Disposition')).toBe('attachment; filename="audit.jsonl"');
    expect(exported.headers.get('Content-Type')).toBe('application/x-ndjson');
    const lines = exported.html
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditEntry);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ user: someone, outcome: 'denied', host: 'db', target: 'rm -rf /' });
  });

  it('reads dates without a zone as UTC and explains a bad filter', async () => {
    const admin = await signedInAdmin();
    const someone = unique('dated');
    await auditLog(env).record(entry(someone));
    const today = new Date().toISOString().slice(0, 10);
    const found = await admin.get(`/admin/audit?user=${someone}&since=${today}&until=${today}`);
    expect(found.html).toContain('1 call, newest first');
    const future = await admin.get(`/admin/audit?user=${someone}&since=2999-01-01`);
    expect(future.html).toContain('No recorded calls match.');

    const bad = await admin.get('/admin/audit?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('The query was not run: since: since must be an ISO 8601 time');
    expect(bad.html).toContain('value="yesterday"');
  });
});
