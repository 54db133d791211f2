/**
 * The team: built-in user accounts, the policy, and sign-in rate limits, in one Durable Object per
 * deployment (so an edit is seen by the very next request). Password hashes never leave it except
 * to the sign-in check, and passwords are verified by the caller so a slow hash never blocks it.
 */
import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { describeIssues } from '../../shared/describe-issues.ts';
import { EMPTY_POLICY, policySchema, type Policy, type Subject } from '../../shared/policy.ts';

export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const usernameSchema = z.string().regex(USERNAME_PATTERN, 'a user name is 1-64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit');
export const groupsSchema = z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'a group name is 1-64 letters, digits, ".", "_", "@" or "-"')).max(64);

/** Sign-in failures allowed per account, and per address, within the window before a pause. */
export const ACCOUNT_FAILURES_ALLOWED = 5;
export const ADDRESS_FAILURES_ALLOWED = 20;
export const FAILURE_WINDOW_MS = 15 * 60 * 1000;

interface StoredUser {
  username: string;
  passwordHash: string;
  groups: string[];
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface UserSummary {
  username: string;
  groups: string[];
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
  /** The deployment's own admin account (ADMIN_USERNAME): configured by secret, not here. */
  bootstrap?: boolean;
}

interface FailureWindow {
  count: number;
  since: number;
}

export type SignInGate =
  | { locked: true; retryAfterSeconds: number }
  | { locked: false; bootstrap: boolean; username: string; passwordHash: string | null; disabled: boolean };

/** What a tool call needs to decide: the caller's standing and the current policy. */
export interface Access {
  active: boolean;
  subject: Subject;
  policy: Policy;
}

const userKey = (username: string): string => `user:${username.toLowerCase()}`;
const failureKey = (kind: 'account' | 'address', value: string): string => `fail:${kind}:${value.toLowerCase()}`;

export class TeamDirectory extends DurableObject<Env> {
  private bootstrapName(): string {
    return this.env.ADMIN_USERNAME || 'admin';
  }

  private isBootstrap(username: string): boolean {
    return username.toLowerCase() === this.bootstrapName().toLowerCase();
  }

  /**
   * The deployment's key for signing browser cookies (sign-in sessions, remembered consent):
   * 32 random bytes made on first use and kept only here, so no one has to configure a secret.
   */
  async cookieSecret(): Promise<string> {
    const stored = await this.ctx.storage.get<string>('cookie-secret');
    if (stored) return stored;
    const secret = [...crypto.getRandomValues(new Uint8Array(32))].map((byte) => byte.toString(16).padStart(2, '0')).join('');
    await this.ctx.storage.put('cookie-secret', secret);
    return secret;
  }

  async policy(): Promise<Policy> {
    return (await this.ctx.storage.get<Policy>('policy')) ?? EMPTY_POLICY;
  }

  async setPolicy(document: unknown): Promise<{ ok: true; policy: Policy } | { ok: false; message: string }> {
    const parsed = policySchema.safeParse(document);
    if (!parsed.success) return { ok: false, message: describeIssues(parsed.error, 'policy') };
    await this.ctx.storage.put('policy', parsed.data);
    return { ok: true, policy: parsed.data };
  }

  async access(username: string): Promise<Access> {
    const policy = await this.policy();
    if (this.isBootstrap(username)) return { active: Boolean(this.env.ADMIN_PASSWORD_HASH), subject: { username: this.bootstrapName(), groups: [], bootstrapAdmin: true }, policy };
    const user = await this.ctx.storage.get<StoredUser>(userKey(username));
    if (!user) return { active: false, subject: { username, groups: [] }, policy };
    return { active: !user.disabled, subject: { username: user.username, groups: user.groups }, policy };
  }

  /** First half of a sign-in: refuses while rate-limited, else hands back what to verify against. */
  async beginSignIn(username: string, address: string): Promise<SignInGate> {
    const now = Date.now();
    const windows = await Promise.all([this.window(failureKey('account', username), now), this.window(failureKey('address', address), now)]);
    const [account, fromAddress] = windows;
    const blockedUntil = Math.max(
      account.count >= ACCOUNT_FAILURES_ALLOWED ? account.since + FAILURE_WINDOW_MS : 0,
      fromAddress.count >= ADDRESS_FAILURES_ALLOWED ? fromAddress.since + FAILURE_WINDOW_MS : 0,
    );
    if (blockedUntil > now) return { locked: true, retryAfterSeconds: Math.ceil((blockedUntil - now) / 1000) };
    if (this.isBootstrap(username)) return { locked: false, bootstrap: true, username: this.bootstrapName(), passwordHash: this.env.ADMIN_PASSWORD_HASH ?? null, disabled: false };
    const user = await this.ctx.storage.get<StoredUser>(userKey(username));
    return { locked: false, bootstrap: false, username: user?.username ?? username, passwordHash: user?.passwordHash ?? null, disabled: user?.disabled ?? false };
  }

  /** Second half: a failure counts against the account and the address; a success clears the account's count. */
  async finishSignIn(username: string, address: string, succeeded: boolean): Promise<void> {
    const now = Date.now();
    if (succeeded) {
      await this.ctx.storage.delete(failureKey('account', username));
      return;
    }
    for (const key of [failureKey('account', username), failureKey('address', address)]) {
      const current = await this.window(key, now);
      await this.ctx.storage.put(key, { count: current.count + 1, since: current.count === 0 ? now : current.since } satisfies FailureWindow);
    }
  }

  private async window(key: string, now: number): Promise<FailureWindow> {
    const stored = await this.ctx.storage.get<FailureWindow>(key);
    if (!stored || now - stored.since >= FAILURE_WINDOW_MS) return { count: 0, since: now };
    return stored;
  }

  async listUsers(): Promise<UserSummary[]> {
    const stored = await this.ctx.storage.list<StoredUser>({ prefix: 'user:' });
    const users = [...stored.values()].map(({ passwordHash: _hash, ...summary }) => summary);
    const bootstrap: UserSummary = { username: this.bootstrapName(), groups: [], disabled: !this.env.ADMIN_PASSWORD_HASH, createdAt: '', updatedAt: '', bootstrap: true };
    return [bootstrap, ...users].sort((a, b) => a.username.localeCompare(b.username));
  }

  async addUser(username: string, passwordHash: string, groups: string[]): Promise<{ ok: true; user: UserSummary } | { ok: false; message: string }> {
    if (this.isBootstrap(username)) return { ok: false, message: `"${username}" is the deployment's own admin account (ADMIN_USERNAME); choose another name.` };
    if (await this.ctx.storage.get(userKey(username))) return { ok: false, message: `A user "${username}" already exists.` };
    const now = new Date().toISOString();
    const user: StoredUser = { username, passwordHash, groups: [...new Set(groups)], disabled: false, createdAt: now, updatedAt: now };
    await this.ctx.storage.put(userKey(username), user);
    const { passwordHash: _hash, ...summary } = user;
    return { ok: true, user: summary };
  }

  async updateUser(
    username: string,
    change: { disabled?: boolean; groups?: string[]; passwordHash?: string },
  ): Promise<{ ok: true; user: UserSummary } | { ok: false; message: string }> {
    if (this.isBootstrap(username)) return { ok: false, message: `"${username}" is the deployment's own admin account; change it with the ADMIN_PASSWORD_HASH secret.` };
    const user = await this.ctx.storage.get<StoredUser>(userKey(username));
    if (!user) return { ok: false, message: `There is no user "${username}".` };
    const updated: StoredUser = {
      ...user,
      ...(change.disabled !== undefined ? { disabled: change.disabled } : {}),
      ...(change.groups !== undefined ? { groups: [...new Set(change.groups)] } : {}),
      ...(change.passwordHash !== undefined ? { passwordHash: change.passwordHash } : {}),
      updatedAt: new Date().toISOString(),
    };
    await this.ctx.storage.put(userKey(username), updated);
    // A reset password also lifts a lock-out from earlier failures.
    if (change.passwordHash !== undefined) await this.ctx.storage.delete(failureKey('account', username));
    const { passwordHash: _hash, ...summary } = updated;
    return { ok: true, user: summary };
  }

  async deleteUser(username: string): Promise<boolean> {
    if (this.isBootstrap(username)) return false;
    return this.ctx.storage.delete(userKey(username));
  }
}

export function teamDirectory(env: Env): DurableObjectStub<TeamDirectory> {
  return env.TEAM_DIRECTORY.get(env.TEAM_DIRECTORY.idFromName('team'));
}
