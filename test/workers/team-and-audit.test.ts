import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { auditLog, auditQuerySchema, type AuditEntry } from '../../worker/audit/audit-log.ts';
import { ACCOUNT_FAILURES_ALLOWED, ADDRESS_FAILURES_ALLOWED, FAILURE_WINDOW_MS, teamDirectory, type UserSummary } from '../../worker/team/team-directory.ts';

/** A TeamDirectory of its own, so counts and users from other tests never leak in. */
/** A day a few days back: recent enough that audit retention keeps rows from it. */
const DAY = new Date(Date.now() - 3 * 24 * 3600 * 1000).toISOString().slice(0, 10);

function freshTeam() {
  return env.TEAM_DIRECTORY.get(env.TEAM_DIRECTORY.idFromName(`test-${crypto.randomUUID()}`));
}

function freshAudit() {
  return env.AUDIT_LOG.get(env.AUDIT_LOG.idFromName(`test-${crypto.randomUUID()}`));
}

/** The pool's wrangler.toml sets ADMIN_USERNAME = "admin"; the Durable Object falls back to "admin" too. */
const BOOTSTRAP_NAME = env.ADMIN_USERNAME || 'admin';

type Team = ReturnType<typeof freshTeam>;

async function fail(team: Team, username: string, address: string, times: number): Promise<void> {
  for (let i = 0; i < times; i += 1) await team.finishSignIn(username, address, false);
}

describe('TeamDirectory sign-in rate limits', () => {
  it('uses the documented limits', () => {
    expect(ACCOUNT_FAILURES_ALLOWED).toBe(5);
    expect(ADDRESS_FAILURES_ALLOWED).toBe(20);
    expect(FAILURE_WINDOW_MS).toBe(15 * 60 * 1000);
  });

  it('lets an account in until it reaches ACCOUNT_FAILURES_ALLOWED failures, then locks it', async () => {
    const team = freshTeam();
    await fail(team, 'carol', '192.0.2.1', ACCOUNT_FAILURES_ALLOWED - 1);
    expect((await team.beginSignIn('carol', '192.0.2.1')).locked).toBe(false);
    await fail(team, 'carol', '192.0.2.1', 1);
    const gate = await team.beginSignIn('carol', '192.0.2.1');
    expect(gate.locked).toBe(true);
    if (gate.locked) {
      expect(gate.retryAfterSeconds).toBeGreaterThan(0);
      expect(gate.retryAfterSeconds).toBeLessThanOrEqual(FAILURE_WINDOW_MS / 1000);
    }
  });

  it('keeps a locked account locked from another address, whatever the case of its name', async () => {
    const team = freshTeam();
    await fail(team, 'carol', '192.0.2.1', ACCOUNT_FAILURES_ALLOWED);
    const elsewhere = await team.beginSignIn('carol', '198.51.100.7');
    expect(elsewhere.locked).toBe(true);
    expect(elsewhere.locked && elsewhere.retryAfterSeconds).toBeGreaterThan(0);
    expect((await team.beginSignIn('CAROL', '198.51.100.8')).locked).toBe(true);
  });

  it('does not lock another account, from another address or from the same one', async () => {
    const team = freshTeam();
    await fail(team, 'carol', '192.0.2.1', ACCOUNT_FAILURES_ALLOWED);
    expect((await team.beginSignIn('dave', '198.51.100.7')).locked).toBe(false);
    // The address has only ACCOUNT_FAILURES_ALLOWED failures, well under ADDRESS_FAILURES_ALLOWED.
    expect((await team.beginSignIn('dave', '192.0.2.1')).locked).toBe(false);
  });

  it('clears the account count on a success', async () => {
    const team = freshTeam();
    await fail(team, 'erin', '192.0.2.2', ACCOUNT_FAILURES_ALLOWED - 1);
    await team.finishSignIn('erin', '192.0.2.2', true);
    await fail(team, 'erin', '192.0.2.2', ACCOUNT_FAILURES_ALLOWED - 1);
    // Without the clear this would be 2 * (ACCOUNT_FAILURES_ALLOWED - 1) failures, over the limit.
    expect((await team.beginSignIn('erin', '192.0.2.2')).locked).toBe(false);
    await fail(team, 'erin', '192.0.2.2', 1);
    expect((await team.beginSignIn('erin', '192.0.2.2')).locked).toBe(true);
  });

  it('locks an address after ADDRESS_FAILURES_ALLOWED failures, for any user name', async () => {
    const team = freshTeam();
    const address = '203.0.113.9';
    // A different name each time, so no single account reaches its own limit.
    for (let i = 0; i < ADDRESS_FAILURES_ALLOWED - 1; i += 1) await team.finishSignIn(`guess${i}`, address, false);
    expect((await team.beginSignIn('frank', address)).locked).toBe(false);
    await team.finishSignIn(`guess${ADDRESS_FAILURES_ALLOWED - 1}`, address, false);

    const gate = await team.beginSignIn('frank', address);
    expect(gate.locked).toBe(true);
    expect(gate.locked && gate.retryAfterSeconds).toBeGreaterThan(0);
    expect((await team.beginSignIn('someone-never-seen', address)).locked).toBe(true);
    expect((await team.beginSignIn(BOOTSTRAP_NAME, address)).locked).toBe(true);
    // The same names from another address are fine.
    expect((await team.beginSignIn('frank', '203.0.113.10')).locked).toBe(false);
    expect((await team.beginSignIn('guess0', '203.0.113.10')).locked).toBe(false);
  });

  it('a success does not clear the address count', async () => {
    const team = freshTeam();
    const address = '203.0.113.20';
    for (let i = 0; i < ADDRESS_FAILURES_ALLOWED - 1; i += 1) await team.finishSignIn(`guess${i}`, address, false);
    await team.finishSignIn('someone', address, true);
    await team.finishSignIn('guess-last', address, false);
    expect((await team.beginSignIn('frank', address)).locked).toBe(true);
  });

  it('forgets failures older than the window', async () => {
    const team = freshTeam();
    await runInDurableObject(team, async (_instance, state) => {
      const since = Date.now() - FAILURE_WINDOW_MS - 1000;
      await state.storage.put('fail:account:gina', { count: 100, since });
      await state.storage.put('fail:address:192.0.2.50', { count: 100, since });
    });
    expect((await team.beginSignIn('gina', '192.0.2.50')).locked).toBe(false);
    // And the next failure starts a fresh count rather than adding to the old one.
    await team.finishSignIn('gina', '192.0.2.50', false);
    expect((await team.beginSignIn('gina', '192.0.2.50')).locked).toBe(false);
  });

  it('a new password lifts an account lock-out', async () => {
    const team = freshTeam();
    expect((await team.addUser('hana', 'hash-1', [])).ok).toBe(true);
    await fail(team, 'hana', '192.0.2.60', ACCOUNT_FAILURES_ALLOWED);
    expect((await team.beginSignIn('hana', '192.0.2.61')).locked).toBe(true);
    expect((await team.updateUser('hana', { passwordHash: 'hash-2' })).ok).toBe(true);
    const gate = await team.beginSignIn('hana', '192.0.2.61');
    expect(gate).toMatchObject({ locked: false, passwordHash: 'hash-2' });
  });

  it('hands back what to verify: the stored hash, null for an unknown user, the secret for the bootstrap admin', async () => {
    const team = freshTeam();
    expect((await team.addUser('Ivan', 'stored-hash-ivan', ['ops'])).ok).toBe(true);
    expect(await team.beginSignIn('ivan', '192.0.2.70')).toEqual({
      locked: false,
      bootstrap: false,
      username: 'Ivan',
      passwordHash: 'stored-hash-ivan',
      disabled: false,
    });
    expect(await team.beginSignIn('nobody', '192.0.2.70')).toEqual({
      locked: false,
      bootstrap: false,
      username: 'nobody',
      passwordHash: null,
      disabled: false,
    });
    const admin = await team.beginSignIn(BOOTSTRAP_NAME.toUpperCase(), '192.0.2.70');
    expect(admin).toEqual({ locked: false, bootstrap: true, username: BOOTSTRAP_NAME, passwordHash: env.ADMIN_PASSWORD_HASH, disabled: false });
    expect(env.ADMIN_PASSWORD_HASH).toBeTruthy();
  });
});

describe('TeamDirectory users', () => {
  it('adds a user and refuses a duplicate name, whatever its case', async () => {
    const team = freshTeam();
    const added = await team.addUser('Judy', 'hash-judy', ['ops', 'ops', 'web']);
    expect(added.ok).toBe(true);
    if (added.ok) {
      expect(added.user).toMatchObject({ username: 'Judy', groups: ['ops', 'web'], disabled: false });
      expect(added.user).not.toHaveProperty('passwordHash');
    }
    const again = await team.addUser('judy', 'hash-other', []);
    expect(again.ok).toBe(false);
    expect(again.ok === false && again.message).toMatch(/already exists/);
    expect((await team.addUser('JUDY', 'hash-other', [])).ok).toBe(false);
    // The first account is untouched.
    expect(await team.beginSignIn('judy', '192.0.2.80')).toMatchObject({ locked: false, username: 'Judy', passwordHash: 'hash-judy' });
  });

  it("refuses the bootstrap admin's name, whatever its case", async () => {
    const team = freshTeam();
    expect(BOOTSTRAP_NAME).toBe('admin');
    for (const name of [BOOTSTRAP_NAME, BOOTSTRAP_NAME.toUpperCase()]) {
      const result = await team.addUser(name, 'hash-x', []);
      expect(result.ok).toBe(false);
      expect(result.ok === false && result.message).toMatch(/ADMIN_USERNAME/);
    }
    const listed: UserSummary[] = await team.listUsers();
    const names = listed.map((user) => user.username);
    expect(names).toEqual([BOOTSTRAP_NAME]);
  });

  it('lists users, with the bootstrap admin, and never a password hash', async () => {
    const team = freshTeam();
    await team.addUser('zed', 'secret-hash-zed', ['ops']);
    await team.addUser('amy', 'secret-hash-amy', []);
    await team.updateUser('amy', { passwordHash: 'secret-hash-amy-2' });
    const users: UserSummary[] = await team.listUsers();
    expect(users.map((user) => user.username)).toEqual([BOOTSTRAP_NAME, 'amy', 'zed']);
    for (const user of users) expect(user).not.toHaveProperty('passwordHash');
    expect(JSON.stringify(users)).not.toMatch(/secret-hash/);
    expect(users.find((user) => user.username === BOOTSTRAP_NAME)).toMatchObject({ bootstrap: true, disabled: false });
    expect(users.find((user) => user.username === 'zed')).toMatchObject({ groups: ['ops'], disabled: false });
  });

  it('updateUser({ disabled: true }) makes access() inactive, and re-enabling restores it', async () => {
    const team = freshTeam();
    await team.addUser('kim', 'hash-kim', ['ops']);
    expect(await team.access('kim')).toMatchObject({ active: true, subject: { username: 'kim', groups: ['ops'] } });
    const disabled = await team.updateUser('kim', { disabled: true });
    expect(disabled.ok && disabled.user.disabled).toBe(true);
    expect((await team.access('kim')).active).toBe(false);
    expect((await team.access('KIM')).active).toBe(false);
    expect(await team.beginSignIn('kim', '192.0.2.90')).toMatchObject({ locked: false, disabled: true });
    await team.updateUser('kim', { disabled: false });
    expect((await team.access('kim')).active).toBe(true);
  });

  it('updateUser changes groups and refuses an unknown user or the bootstrap admin', async () => {
    const team = freshTeam();
    await team.addUser('lee', 'hash-lee', ['ops']);
    expect((await team.updateUser('lee', { groups: ['web'] })).ok).toBe(true);
    expect((await team.access('lee')).subject.groups).toEqual(['web']);
    expect((await team.updateUser('ghost', { disabled: true })).ok).toBe(false);
    expect((await team.updateUser(BOOTSTRAP_NAME, { disabled: true })).ok).toBe(false);
    expect((await team.access(BOOTSTRAP_NAME)).active).toBe(true);
  });

  it('access() of an unknown user is inactive and carries no groups', async () => {
    const team = freshTeam();
    const access = await team.access('nobody-here');
    expect(access.active).toBe(false);
    expect(access.subject).toEqual({ username: 'nobody-here', groups: [] });
  });

  it('access() of the bootstrap admin is active and marked bootstrapAdmin', async () => {
    const team = freshTeam();
    const access = await team.access(BOOTSTRAP_NAME);
    expect(access.active).toBe(true);
    expect(access.subject).toEqual({ username: BOOTSTRAP_NAME, groups: [], bootstrapAdmin: true });
  });

  it('deleteUser removes a user but never the bootstrap admin', async () => {
    const team = freshTeam();
    await team.addUser('mo', 'hash-mo', []);
    expect(await team.deleteUser('MO')).toBe(true);
    expect((await team.access('mo')).active).toBe(false);
    expect(await team.deleteUser('mo')).toBe(false);
    expect(await team.deleteUser(BOOTSTRAP_NAME)).toBe(false);
  });
});

describe('TeamDirectory policy', () => {
  const valid = { version: 1, grants: [{ subjects: ['group:ops'], role: 'operator', hosts: ['env=prod'] }] };

  it('starts with the empty policy', async () => {
    const team = freshTeam();
    expect(await team.policy()).toEqual({ version: 1, grants: [] });
  });

  it('accepts a valid document, fills in defaults, and hands it to access()', async () => {
    const team = freshTeam();
    const result = await team.setPolicy(valid);
    expect(result.ok).toBe(true);
    const expected = { version: 1, grants: [{ effect: 'allow', subjects: ['group:ops'], role: 'operator', hosts: ['env=prod'] }] };
    expect(result.ok && result.policy).toEqual(expected);
    expect(await team.policy()).toEqual(expected);
    await team.addUser('nia', 'hash-nia', ['ops']);
    expect((await team.access('nia')).policy).toEqual(expected);
  });

  it('refuses an invalid document with a message naming the problem and keeps the old policy', async () => {
    const team = freshTeam();
    expect((await team.setPolicy(valid)).ok).toBe(true);
    const before = await team.policy();
    for (const bad of [
      { version: 1, grants: [{ subjects: ['alice'], role: 'operator', hosts: ['*'] }] },
      { version: 1, grants: [{ subjects: ['user:alice'], role: 'root', hosts: ['*'] }] },
      { version: 1, grants: [{ subjects: ['user:alice'], role: 'viewer', hosts: [] }] },
      { version: 1, grants: [], surprise: true },
      { version: 2, grants: [] },
      'not a policy',
    ]) {
      const result = await team.setPolicy(bad);
      expect(result.ok).toBe(false);
      expect(result.ok === false && result.message.length).toBeGreaterThan(0);
      expect(await team.policy()).toEqual(before);
    }
    const named = await team.setPolicy({ version: 1, grants: [{ subjects: ['alice'], role: 'operator', hosts: ['*'] }] });
    expect(named.ok === false && named.message).toContain('grants.0.subjects.0');
  });
});

describe('teamDirectory(env) and auditLog(env)', () => {
  it("reach the deployment's shared instances", async () => {
    const shared = teamDirectory(env);
    const byName = env.TEAM_DIRECTORY.get(env.TEAM_DIRECTORY.idFromName('team'));
    const name = `shared-${crypto.randomUUID().slice(0, 8)}`;
    expect((await shared.addUser(name, 'hash', [])).ok).toBe(true);
    expect((await byName.access(name)).active).toBe(true);
    expect(await shared.deleteUser(name)).toBe(true);

    const log = auditLog(env);
    const logByName = env.AUDIT_LOG.get(env.AUDIT_LOG.idFromName('audit'));
    const user = `audit-${crypto.randomUUID()}`;
    await log.record(entry({ user }));
    expect(await logByName.query(auditQuerySchema.parse({ user }))).toHaveLength(1);
  });
});

function entry(overrides: Partial<AuditEntry>): AuditEntry {
  return {
    time: `${DAY}T10:00:00.000Z`,
    user: 'alice',
    client: 'client-1',
    relay: 'relay-1',
    host: 'web1',
    tool: 'ssh_exec',
    target: 'uptime',
    outcome: 'ok',
    code: null,
    exitCode: 0,
    bytes: 12,
    durationMs: 5,
    ...overrides,
  };
}

describe('AuditLog', () => {
  const rows: AuditEntry[] = [
    entry({ time: `${DAY}T10:00:00.000Z`, user: 'alice', host: 'web1', tool: 'ssh_exec', target: 'uptime', outcome: 'ok' }),
    entry({
      time: `${DAY}T11:00:00.000Z`,
      user: 'bob',
      host: 'db1',
      tool: 'ssh_read_file',
      target: '/etc/hosts',
      outcome: 'denied',
      code: 'access_denied',
      exitCode: null,
      bytes: null,
    }),
    entry({ time: `${DAY}T12:00:00.000Z`, user: 'alice', host: 'db1', tool: 'ssh_exec', target: 'false', outcome: 'error', code: 'exit_nonzero', exitCode: 1 }),
    entry({
      time: `${DAY}T13:00:00.000Z`,
      user: 'carol',
      host: null,
      relay: null,
      client: null,
      tool: 'ssh_list_hosts',
      target: null,
      outcome: 'ok',
      exitCode: null,
      bytes: null,
    }),
    entry({ time: `${DAY}T14:00:00.000Z`, user: 'alice', host: 'web1', tool: 'ssh_upload', target: '/tmp/x', outcome: 'ok', bytes: 4096, durationMs: 12.6 }),
  ];

  async function seeded() {
    const log = freshAudit();
    for (const row of rows) await log.record(row);
    return log;
  }

  const q = (query: Record<string, unknown>) => auditQuerySchema.parse(query);
  const times = (entries: AuditEntry[]) => entries.map((found) => found.time);

  it('upserts outbox deliveries by their id: a repeat adds nothing, and a late started never overwrites the completion', async () => {
    const log = freshAudit();
    const startedRow = entry({ target: 'sleep 100', outcome: 'started', code: null, exitCode: null, bytes: null, durationMs: 0 });
    const outboxId = crypto.randomUUID();
    await log.deliver([{ ...startedRow, outboxId }]);
    await log.deliver([{ ...startedRow, outboxId }]);
    expect(await log.query(q({}))).toEqual([startedRow]);
    const done = { ...startedRow, outcome: 'error' as const, code: 'relay_disconnected', durationMs: 1500 };
    await log.deliver([{ ...done, outboxId }]);
    expect(await log.query(q({}))).toEqual([done]);
    // A started that arrives after its completion (a retried delivery) and a second completion change nothing.
    await log.deliver([{ ...startedRow, outboxId }]);
    await log.deliver([{ ...done, outcome: 'ok', code: null, outboxId }]);
    expect(await log.query(q({}))).toEqual([done]);
  });

  it('returns every entry newest first, each as recorded', async () => {
    const log = await seeded();
    const all = await log.query(q({}));
    expect(times(all)).toEqual(rows.map((row) => row.time).reverse());
    expect(all[1]).toEqual(rows[3]);
    expect(all[3]).toEqual(rows[1]);
    // Durations are stored as whole milliseconds.
    expect(all[0]).toEqual({ ...rows[4], durationMs: 13 });
  });

  it('filters by user', async () => {
    const log = await seeded();
    const found = await log.query(q({ user: 'alice' }));
    expect(times(found)).toEqual([`${DAY}T14:00:00.000Z`, `${DAY}T12:00:00.000Z`, `${DAY}T10:00:00.000Z`]);
    expect(await log.query(q({ user: 'nobody' }))).toEqual([]);
  });

  it('filters by host', async () => {
    const log = await seeded();
    const found = await log.query(q({ host: 'db1' }));
    expect(times(found)).toEqual([`${DAY}T12:00:00.000Z`, `${DAY}T11:00:00.000Z`]);
  });

  it('filters by tool', async () => {
    const log = await seeded();
    expect(times(await log.query(q({ tool: 'ssh_exec' })))).toEqual([`${DAY}T12:00:00.000Z`, `${DAY}T10:00:00.000Z`]);
    expect(times(await log.query(q({ tool: 'ssh_list_hosts' })))).toEqual([`${DAY}T13:00:00.000Z`]);
  });

  it('filters by outcome', async () => {
    const log = await seeded();
    const denied: AuditEntry[] = await log.query(q({ outcome: 'denied' }));
    expect(denied.map((found) => found.user)).toEqual(['bob']);
    expect(times(await log.query(q({ outcome: 'error' })))).toEqual([`${DAY}T12:00:00.000Z`]);
    expect(await log.query(q({ outcome: 'ok' }))).toHaveLength(3);
  });

  it('filters by since and until, both inclusive, in any time zone notation', async () => {
    const log = await seeded();
    expect(times(await log.query(q({ since: `${DAY}T12:00:00Z` })))).toEqual([`${DAY}T14:00:00.000Z`, `${DAY}T13:00:00.000Z`, `${DAY}T12:00:00.000Z`]);
    expect(times(await log.query(q({ until: `${DAY}T11:00:00Z` })))).toEqual([`${DAY}T11:00:00.000Z`, `${DAY}T10:00:00.000Z`]);
    expect(times(await log.query(q({ since: `${DAY}T10:30:00Z`, until: `${DAY}T13:30:00Z` })))).toEqual([
      `${DAY}T13:00:00.000Z`,
      `${DAY}T12:00:00.000Z`,
      `${DAY}T11:00:00.000Z`,
    ]);
    // 13:00+02:00 is 11:00Z.
    expect(times(await log.query(q({ until: `${DAY}T13:00:00+02:00` })))).toEqual([`${DAY}T11:00:00.000Z`, `${DAY}T10:00:00.000Z`]);
  });

  it('combines filters', async () => {
    const log = await seeded();
    expect(times(await log.query(q({ user: 'alice', host: 'web1', since: `${DAY}T11:00:00Z` })))).toEqual([`${DAY}T14:00:00.000Z`]);
    expect(await log.query(q({ user: 'bob', outcome: 'ok' }))).toEqual([]);
  });

  it('returns at most limit entries, the newest ones', async () => {
    const log = await seeded();
    expect(times(await log.query(q({ limit: 2 })))).toEqual([`${DAY}T14:00:00.000Z`, `${DAY}T13:00:00.000Z`]);
    expect(times(await log.query(q({ user: 'alice', limit: 1 })))).toEqual([`${DAY}T14:00:00.000Z`]);
  });

  it('defaults to 100 entries', async () => {
    const log = freshAudit();
    for (let i = 0; i < 105; i += 1) await log.record(entry({ time: new Date(Date.parse(`${DAY}T00:00:00Z`) + i * 1000).toISOString() }));
    const found = await log.query(q({}));
    expect(found).toHaveLength(100);
    expect(found[0]?.time).toBe(`${DAY}T00:01:44.000Z`);
  });

  it('cuts a target longer than 2000 characters and marks the cut', async () => {
    const log = freshAudit();
    const long = `${'a'.repeat(2000)}TAIL-NOT-STORED`;
    await log.record(entry({ user: 'long', target: long }));
    const [found] = await log.query(q({ user: 'long' }));
    expect(found?.target).toBe(`${'a'.repeat(2000)}… [cut]`);
    expect(found?.target).not.toContain('TAIL');
  });

  it('keeps a target of exactly 2000 characters whole', async () => {
    const log = freshAudit();
    const exact = 'b'.repeat(2000);
    await log.record(entry({ user: 'exact', target: exact }));
    const [found] = await log.query(q({ user: 'exact' }));
    expect(found?.target).toBe(exact);
  });
});

describe('AuditLog retention', () => {
  it('deletes rows older than AUDIT_RETENTION_DAYS when it next writes, and keeps newer ones', async () => {
    const log = freshAudit();
    const days = Number(env.AUDIT_RETENTION_DAYS);
    const old = new Date(Date.now() - (days + 1) * 24 * 3600 * 1000).toISOString();
    const recent = new Date(Date.now() - (days - 1) * 24 * 3600 * 1000).toISOString();
    // The first write of a fresh log prunes, so the old row goes as soon as it is written.
    await log.record(entry({ time: old, user: 'ancient' }));
    await log.record(entry({ time: recent, user: 'recent' }));
    const users = (await log.query(auditQuerySchema.parse({}))).map((found: AuditEntry) => found.user);
    expect(users).toEqual(['recent']);
  });
});
