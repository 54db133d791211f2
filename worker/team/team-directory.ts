/**
 * The team: user accounts, the policy, and sign-in rate limits, in one Durable Object per
 * deployment (so an edit is seen by the very next request). Password hashes never leave it except
 * to the sign-in check, and passwords are verified by the caller so a slow hash never blocks it.
 *
 * Accounts are built-in (an admin made them; they sign in with a password) or external (recorded
 * on each successful sign-in through OpenID Connect or GitHub; no password). Both kinds share one
 * name space, policy subjects, disable and delete.
 */
import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { describeIssues } from '../../shared/describe-issues.ts';
import { randomBytes, toHex } from '../../shared/encoding.ts';
import { equalBytes } from '../auth/password-hash.ts';
import type { HostInventoryEntry } from '../../shared/protocol.ts';
import { decideCommand, EMPTY_POLICY, policySchema, type CommandRuling, type Policy, type Role, type Subject } from './policy.ts';
import { auditLog, type AuditEnd, type AuditEntry, type StartedEntry } from '../audit/audit-log.ts';
import { logEvent } from '../log.ts';
import { readSettings } from '../settings.ts';
import { decideGate, resolveGateHost, type GateDecision } from './gate-decision.ts';
import { applyFreeze, NO_FREEZE, type FreezeMark, type FreezeScope, type FreezeState } from './freeze.ts';
import { success, type Outcome } from '../../shared/errors.ts';
import type { CommandClassification } from '../../shared/shell/command-class.ts';
import { policyHost } from './fleet.ts';
import { isGrantId, recordRevokedGrants, revokedGrantKey, stillRevoked } from './revoked-grants.ts';
import {
  addOutboxRow,
  completeOutboxRow,
  AUDIT_WRITES_PER_CALL,
  confirmDelivered,
  createOutbox,
  DRAIN_BATCH,
  DRAIN_ROUNDS,
  dropStale,
  pendingCount,
  undelivered,
} from './audit-outbox.ts';

export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const usernameSchema = z.string().regex(USERNAME_PATTERN, 'a user name is 1-64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit');
export const groupsSchema = z
  .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'a group name is 1-64 letters, digits, ".", "_", "@" or "-"'))
  .max(64);

/**
 * Sign-in failures allowed per account, and per address, within the window before a pause. An
 * attempt whose password is still being checked counts as a failure until it settles.
 */
export const ACCOUNT_FAILURES_ALLOWED = 5;
export const ADDRESS_FAILURES_ALLOWED = 20;
export const FAILURE_WINDOW_MS = 15 * 60 * 1000;
/**
 * An attempt begun and never finished (its Worker died between the two halves) stops counting after
 * this long, so it cannot lock an account for good. A password check takes well under a second.
 */
export const PENDING_ATTEMPT_MS = 60 * 1000;

/** Where an account's sign-in comes from. */
export type UserSource = 'builtin' | 'oidc' | 'github';

interface StoredUser {
  username: string;
  /** Empty for external accounts: they never sign in with a password. */
  passwordHash: string;
  /** Groups an admin gave (admin API); a sign-in never changes them. */
  groups: string[];
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
  /** Absent on records made before external sign-in existed: those are built-in. */
  source?: UserSource;
  /** The OAuth grant owner of an external account (oidc/…, github/…); built-in ones use builtInUserId. */
  userId?: string;
  /** Groups the identity provider reported at the latest sign-in (OIDC groups claim), replaced each time. */
  idpGroups?: string[];
  /** Browser sessions issued before this time (ms since the epoch) are no longer honoured. */
  sessionsValidAfter?: number;
}

export interface UserSummary {
  username: string;
  groups: string[];
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
  /** builtin (password), oidc or github. */
  source: UserSource;
  /** Groups from the identity provider's latest sign-in; the effective groups are these plus `groups`. */
  idpGroups?: string[];
  /** The deployment's own admin account (ADMIN_USERNAME): configured by secret, not here. */
  bootstrap?: boolean;
}

/** builtin_account: the name belongs to a password account; other_account: to another external identity. */
export type ExternalSignInResult = { ok: true; username: string } | { ok: false; reason: 'builtin_account' | 'other_account' | 'disabled' };

interface FailureWindow {
  /** Settled failures since `since`. */
  count: number;
  since: number;
  /** Start times (ms) of attempts admitted by beginSignIn and not yet settled by finishSignIn. */
  pending?: number[];
}

export type SignInGate =
  { locked: true; retryAfterSeconds: number } | { locked: false; bootstrap: boolean; username: string; passwordHash: string | null; disabled: boolean };

/** What a tool call needs to decide: the caller's standing, the current policy, and the relays to look at. */
export interface Access {
  active: boolean;
  subject: Subject;
  policy: Policy;
  /** The grant owner of an external account (absent for built-in ones). */
  userId?: string;
  /** Browser sessions issued before this (ms since the epoch) are void: set on creation, disable and password reset. */
  sessionsValidAfter?: number;
  /** Inactive because the access token's grant was revoked (the account itself may be fine). */
  grantRevoked?: boolean;
  /** Relays that may serve hosts: every known relay whose credential is not revoked. */
  relays: string[];
  /** The hosts of each of those relays, as its hub last pushed them; null for a relay that has not pushed any yet. */
  fleet: Array<{ relayId: string; hosts: HostInventoryEntry[] | null }>;
  /** Counts every setPolicy (0 before the first): a decision names the revision it was made under. */
  policyRevision: number;
  /** What an admin froze: read with the standing, so the very next call is refused. */
  freeze: FreezeState;
}

/**
 * A relay the deployment knows. `issued`: an admin issued it its own credential (only the token's
 * SHA-256 is kept). `deployment`: it came in with the deployment-wide RELAY_TOKEN_HASH token and
 * was recorded under the name it gave.
 */
export interface RelayRecordSummary {
  name: string;
  credential: 'issued' | 'deployment';
  createdAt: string;
  revokedAt?: string;
  lastConnectedAt?: string;
}

interface StoredRelay extends RelayRecordSummary {
  tokenHash: string | null;
  /**
   * The hosts the relay reported at its last hello, pushed by its hub before the hub welcomes it,
   * so a tool call reads the caller's standing and the fleet in one call (Access.fleet). Absent
   * until the relay says hello after this field existed (the gate then asks its hub).
   */
  hosts?: HostInventoryEntry[];
}

export type RelayAdmission = { ok: true; name: string } | { ok: false; message: string };

const userKey = (username: string): string => `user:${username.toLowerCase()}`;

function summary(user: StoredUser): UserSummary {
  const { passwordHash: _hash, userId: _userId, sessionsValidAfter: _after, ...rest } = user;
  return { ...rest, source: user.source ?? 'builtin' };
}
const relayKey = (name: string): string => `relay:${name.toLowerCase()}`;
const failureKey = (kind: 'account' | 'address', value: string): string => `fail:${kind}:${value.toLowerCase()}`;

type SettledWindow = Required<FailureWindow>;

function isEmpty(window: SettledWindow): boolean {
  return window.count === 0 && window.pending.length === 0;
}

/**
 * Until when a key refuses new attempts (0: it does not). Settled failures at the limit block until
 * the window ends; attempts in flight that fill the limit block until the oldest one would expire
 * (it will have settled long before, and then the window rule applies).
 */
function blockedUntilFor(window: SettledWindow, allowed: number): number {
  if (window.count >= allowed) return window.since + FAILURE_WINDOW_MS;
  const oldest = window.pending[0];
  if (oldest !== undefined && window.count + window.pending.length >= allowed) return oldest + PENDING_ATTEMPT_MS;
  return 0;
}

/** What the gate records of a call: the audit row's fields known before the decision. */
export interface GateRequest {
  /** The audit row's fields; relay and host are filled from the route when the call is let through. */
  entry: StartedEntry;
  requestedHost: string | undefined;
  needed: Role;
  /** Write the `started` row of a call let through (false: the caller begins it later, with beginAudit). */
  begin: boolean;
  /** A call that runs a command: its text and the Worker's classification, for the command rules. */
  command?: GateCommand;
  /** The OAuth grant of the caller's access token (absent for transfer links): refused once revoked. */
  grantId?: string;
}

export interface GateCommand {
  text: string;
  classification: CommandClassification;
  /** False when the classifier itself failed (not a command it could not classify): command rules then cannot be applied. */
  classified?: boolean;
}

/**
 * The gate's decision, and the outbox id of the `started` row of a call let through (when begun).
 * A command held for a person (CallGate.command approve/confirm) gets no row here: auditId is null,
 * and whoever holds it writes its rows.
 */
export type GateAnswer = GateDecision & { auditId: string | null };

/** What ssh_check_command answers: what the gate would do with the command, without running it. */
export interface CommandCheck {
  /** The host as the caller names it. */
  host: string;
  role: Role | null;
  ruling: CommandRuling;
  policyRevision: number;
}

const POLICY_KEY = 'policy';
const REVISION_KEY = 'policy-revision';
const FREEZE_KEY = 'freeze';

/** Retry delays of a failed outbox delivery: doubling from the first, capped. */
const DRAIN_RETRY_FIRST_MS = 500;
/**
 * New outbox rows wait this long before the alarm delivers them, so one delivery carries the rows of
 * many calls and never competes with the call that wrote them (audit readers flush first, so they
 * still read their writes).
 */
const DRAIN_DELAY_MS = 1_000;
const DRAIN_RETRY_MAX_MS = 60_000;

export class TeamDirectory extends DurableObject<Env> {
  /** Failed deliveries in a row (sets the next retry's delay); reset by a delivery that works. */
  private drainFailures = 0;
  /**
   * True once this instance has seen an alarm set, until the alarm runs: every tool call writes a
   * row, and asking storage whether an alarm is set each time is avoidable work on its path.
   */
  private alarmSet = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    createOutbox(ctx.storage.sql);
  }

  /**
   * The one call on a tool call's path to the team: decide it (standing, fleet, role) and, in the
   * same call, write its audit row into the outbox: `started` for a call let through (before
   * anything is sent), complete for one refused. If the row cannot be written this throws, and the
   * caller refuses the call.
   */
  async gate(request: GateRequest): Promise<GateAnswer> {
    const { entry } = request;
    const access = await this.access(entry.user, request.grantId);
    const decision = await decideGate(this.env, access, entry.user, entry.tool, request.requestedHost, request.needed, request.command);
    const outcome = decision.outcome;
    if (!outcome.ok) {
      const durationMs = Date.now() - new Date(entry.time).getTime();
      const row: AuditEntry = {
        ...entry,
        relay: null,
        outcome: decision.denied ? 'denied' : 'error',
        code: outcome.error.code,
        exitCode: null,
        bytes: null,
        durationMs: Math.max(0, durationMs),
      };
      addOutboxRow(this.ctx.storage.sql, row);
      await this.scheduleDrain();
      return { ...decision, auditId: null };
    }
    const held = outcome.value.command?.effect === 'approve' || outcome.value.command?.effect === 'confirm';
    if (!request.begin || held) return { ...decision, auditId: null };
    const auditId = addOutboxRow(this.ctx.storage.sql, started({ ...entry, relay: outcome.value.route.relay, host: outcome.value.route.host }));
    await this.scheduleDrain();
    return { ...decision, auditId };
  }

  /**
   * ssh_check_command: what the gate would decide for `command` on the requested host, in one call,
   * recorded as a complete `checked` row (or as denied / error when the host cannot be used at all).
   */
  async checkCommand(entry: StartedEntry, requestedHost: string | undefined, command: CommandClassification, grantId?: string): Promise<Outcome<CommandCheck>> {
    const access = await this.access(entry.user, grantId);
    const resolved = await resolveGateHost(this.env, access, entry.user, requestedHost);
    const durationMs = Math.max(0, Date.now() - new Date(entry.time).getTime());
    const none = { code: null, exitCode: null, bytes: null, durationMs };
    if (!resolved.ok) {
      const code = resolved.outcome.ok ? null : resolved.outcome.error.code;
      addOutboxRow(this.ctx.storage.sql, { ...entry, relay: null, ...none, outcome: resolved.denied ? 'denied' : 'error', code });
      await this.scheduleDrain();
      return resolved.outcome;
    }
    const { relay, entry: hostEntry, id, role } = resolved.host;
    const ruling = decideCommand(access.policy, access.subject, policyHost(relay, hostEntry), role, command);
    addOutboxRow(this.ctx.storage.sql, { ...entry, relay, host: hostEntry.name, ...none, outcome: 'checked' });
    await this.scheduleDrain();
    return success({ host: id, role, ruling, policyRevision: access.policyRevision });
  }

  /** Write the `started` row of a call about to be sent (a transfer link, after its claim); its id completes it. */
  async beginAudit(entry: StartedEntry): Promise<string> {
    const id = addOutboxRow(this.ctx.storage.sql, started(entry));
    await this.scheduleDrain();
    return id;
  }

  /** Write a complete row (a call refused or failed before it was sent). */
  async recordAudit(entry: AuditEntry): Promise<void> {
    addOutboxRow(this.ctx.storage.sql, entry);
    await this.scheduleDrain();
  }

  /**
   * Writes made after calls were answered, batched in the Worker (audit-batch.ts): completions of
   * started rows (once: a complete row is never rewritten) and complete rows of calls already done.
   */
  async writeAuditBatch(batch: { completions: ReadonlyArray<{ auditId: string; end: AuditEnd }>; rows: ReadonlyArray<AuditEntry> }): Promise<void> {
    let written = false;
    for (const { auditId, end } of batch.completions.slice(0, AUDIT_WRITES_PER_CALL)) {
      if (completeOutboxRow(this.ctx.storage.sql, auditId, end)) written = true;
    }
    for (const row of batch.rows.slice(0, AUDIT_WRITES_PER_CALL)) {
      addOutboxRow(this.ctx.storage.sql, row);
      written = true;
    }
    if (written) await this.scheduleDrain();
  }

  /**
   * Deliver every outbox row to the AuditLog now (audit readers, before they query). False when the
   * AuditLog failed: the rows stay and the alarm retries them.
   */
  async flushAudit(): Promise<boolean> {
    try {
      await this.drainAudit();
      return true;
    } catch (error) {
      logEvent('error', 'could not flush the audit outbox; the alarm retries it', { error: String(error) });
      await this.scheduleDrain();
      return false;
    }
  }

  /** The alarm delivers the outbox; a failed delivery is retried with a growing delay, never dropped. */
  override async alarm(): Promise<void> {
    // This alarm is spent; whatever is set from here on sets the flag again.
    this.alarmSet = false;
    try {
      await this.drainAudit();
      this.drainFailures = 0;
      if (pendingCount(this.ctx.storage.sql) > 0) {
        await this.ctx.storage.setAlarm(Date.now());
        this.alarmSet = true;
      }
    } catch (error) {
      this.drainFailures += 1;
      const delay = Math.min(DRAIN_RETRY_MAX_MS, DRAIN_RETRY_FIRST_MS * 2 ** Math.min(this.drainFailures - 1, 20));
      logEvent('error', 'could not deliver the audit outbox; retrying', { failures: this.drainFailures, retryInMs: delay, error: String(error) });
      await this.ctx.storage.setAlarm(Date.now() + delay);
      this.alarmSet = true;
    }
  }

  /** Deliver undelivered rows in bounded batches. A concurrent drain may deliver a row twice: the AuditLog's upsert makes that harmless. */
  private async drainAudit(): Promise<void> {
    const sql = this.ctx.storage.sql;
    for (let round = 0; round < DRAIN_ROUNDS; round += 1) {
      const rows = undelivered(sql, DRAIN_BATCH);
      if (rows.length === 0) break;
      await auditLog(this.env).deliver(rows.map(({ state: _state, ...row }) => row));
      confirmDelivered(sql, rows);
    }
    const retention = readSettings(this.env).auditRetentionDays * 24 * 3600 * 1000;
    dropStale(sql, new Date(Date.now() - retention).toISOString());
  }

  /** Run the drain soon, unless an alarm is already set (a pending retry keeps its delay). */
  private async scheduleDrain(): Promise<void> {
    if (this.alarmSet) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + DRAIN_DELAY_MS);
    this.alarmSet = true;
  }

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
    const secret = toHex(randomBytes(32));
    await this.ctx.storage.put('cookie-secret', secret);
    return secret;
  }

  async policy(): Promise<Policy> {
    return (await this.ctx.storage.get<Policy>(POLICY_KEY)) ?? EMPTY_POLICY;
  }

  /** The policy and its revision, read together. */
  async policyAndRevision(): Promise<{ policy: Policy; revision: number }> {
    const stored = await this.ctx.storage.get([POLICY_KEY, REVISION_KEY]);
    return { policy: (stored.get(POLICY_KEY) as Policy | undefined) ?? EMPTY_POLICY, revision: (stored.get(REVISION_KEY) as number | undefined) ?? 0 };
  }

  /** Replace the policy; every save counts a new revision (an approval made under an older one no longer holds). */
  async setPolicy(document: unknown): Promise<{ ok: true; policy: Policy; revision: number } | { ok: false; message: string }> {
    const parsed = policySchema.safeParse(document);
    if (!parsed.success) return { ok: false, message: describeIssues(parsed.error, 'policy') };
    const revision = ((await this.ctx.storage.get<number>(REVISION_KEY)) ?? 0) + 1;
    await this.ctx.storage.put({ [POLICY_KEY]: parsed.data, [REVISION_KEY]: revision });
    return { ok: true, policy: parsed.data, revision };
  }

  async freezeState(): Promise<FreezeState> {
    return (await this.ctx.storage.get<FreezeState>(FREEZE_KEY)) ?? NO_FREEZE;
  }

  /** Freeze (mark) or unfreeze (null) one scope; the next call anywhere sees it. */
  async setFreeze(scope: FreezeScope, name: string | undefined, mark: FreezeMark | null): Promise<FreezeState> {
    const state = applyFreeze(await this.freezeState(), scope, name, mark);
    await this.ctx.storage.put(FREEZE_KEY, state);
    return state;
  }

  /**
   * `grantId`: the OAuth grant the caller's access token belongs to, when the call came with one; a
   * grant revoked since (revokeGrants) leaves the caller inactive, whatever their account's state.
   */
  async access(username: string, grantId?: string): Promise<Access> {
    const grantKey = grantId !== undefined && isGrantId(grantId) ? revokedGrantKey(grantId) : null;
    const [stored, known] = await Promise.all([
      this.ctx.storage.get([POLICY_KEY, REVISION_KEY, FREEZE_KEY, ...(grantKey ? [grantKey] : [])]),
      this.liveRelays(),
    ]);
    if (grantKey !== null && stillRevoked(stored.get(grantKey), Date.now())) {
      return { ...(await this.accountAccess(username, stored, known)), active: false, grantRevoked: true };
    }
    return this.accountAccess(username, stored, known);
  }

  /** Tell the directory that these OAuth grants were revoked: their calls are refused from now on. */
  async revokeGrants(grantIds: string[]): Promise<void> {
    await recordRevokedGrants(this.ctx.storage, grantIds);
  }

  private async accountAccess(username: string, stored: Map<string, unknown>, known: StoredRelay[]): Promise<Access> {
    const policy = (stored.get(POLICY_KEY) as Policy | undefined) ?? EMPTY_POLICY;
    const policyRevision = (stored.get(REVISION_KEY) as number | undefined) ?? 0;
    const freeze = (stored.get(FREEZE_KEY) as FreezeState | undefined) ?? NO_FREEZE;
    const relays = known.map((relay) => relay.name);
    const fleet = known.map((relay) => ({ relayId: relay.name, hosts: relay.hosts ?? null }));
    if (this.isBootstrap(username))
      return {
        active: Boolean(this.env.ADMIN_PASSWORD_HASH),
        subject: { username: this.bootstrapName(), groups: [], bootstrapAdmin: true },
        policy,
        relays,
        fleet,
        policyRevision,
        freeze,
      };
    const user = await this.ctx.storage.get<StoredUser>(userKey(username));
    if (!user) return { active: false, subject: { username, groups: [] }, policy, relays, fleet, policyRevision, freeze };
    const groups = [...new Set([...user.groups, ...(user.idpGroups ?? [])])];
    return {
      active: !user.disabled,
      subject: { username: user.username, groups },
      policy,
      relays,
      fleet,
      policyRevision,
      freeze,
      ...(user.userId ? { userId: user.userId } : {}),
      ...(user.sessionsValidAfter !== undefined ? { sessionsValidAfter: user.sessionsValidAfter } : {}),
    };
  }

  /** Names of the relays whose hosts count: known and not revoked. */
  async relayNames(): Promise<string[]> {
    return (await this.liveRelays()).map((relay) => relay.name);
  }

  private async liveRelays(): Promise<StoredRelay[]> {
    const stored = await this.ctx.storage.list<StoredRelay>({ prefix: 'relay:' });
    return [...stored.values()].filter((relay) => !relay.revokedAt);
  }

  async listRelays(): Promise<RelayRecordSummary[]> {
    const stored = await this.ctx.storage.list<StoredRelay>({ prefix: 'relay:' });
    return [...stored.values()].map(({ tokenHash: _hash, hosts: _hosts, ...summary }) => summary).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * May this relay connect? `tokenHash` is the SHA-256 of an issued token naming `name`, or null
   * when the relay came with the deployment-wide token (already checked by the caller). A name
   * with its own credential accepts only that credential; a revoked name accepts nothing.
   */
  async admitRelay(name: string, tokenHash: string | null): Promise<RelayAdmission> {
    const stored = await this.ctx.storage.get<StoredRelay>(relayKey(name));
    const now = new Date().toISOString();
    if (stored?.revokedAt)
      return {
        ok: false,
        message: `The credential of relay "${stored.name}" was revoked; ask an admin for a new one (mcp-remote-exec admin relays add ${stored.name}).`,
      };
    if (tokenHash === null) {
      if (stored?.credential === 'issued')
        return {
          ok: false,
          message: `Relay "${stored.name}" has its own credential; the deployment token cannot stand in for it. Run it with the token issued for it.`,
        };
      // Recorded so the hub's hello check finds it; "last seen" is stamped only once the hub
      // welcomes it (noteRelayConnected): a refused duplicate must not touch the live one's record.
      if (!stored) await this.ctx.storage.put(relayKey(name), { name, credential: 'deployment', tokenHash: null, createdAt: now } satisfies StoredRelay);
      return { ok: true, name: stored?.name ?? name };
    }
    const encoder = new TextEncoder();
    if (!stored?.tokenHash || !equalBytes(encoder.encode(stored.tokenHash), encoder.encode(tokenHash))) {
      return { ok: false, message: 'The relay token was refused.' };
    }
    return { ok: true, name: stored.name };
  }

  /** The hub welcomed relay `name`: stamp when it last connected (the admin page's "last seen"). */
  /** The hub of relay `name` welcomes it now, with these hosts: recorded before the welcome, so the next call sees them. */
  async noteRelayConnected(name: string, hosts: HostInventoryEntry[]): Promise<void> {
    const stored = await this.ctx.storage.get<StoredRelay>(relayKey(name));
    if (stored && !stored.revokedAt)
      await this.ctx.storage.put(relayKey(name), { ...stored, hosts, lastConnectedAt: new Date().toISOString() } satisfies StoredRelay);
  }

  /** Give relay `name` its own credential (its token's SHA-256). Refused while it has a live one: revoke first. */
  async issueRelay(name: string, tokenHash: string): Promise<{ ok: true; relay: RelayRecordSummary } | { ok: false; message: string }> {
    const stored = await this.ctx.storage.get<StoredRelay>(relayKey(name));
    if (stored?.credential === 'issued' && !stored.revokedAt) {
      return { ok: false, message: `Relay "${stored.name}" already has a credential. Revoke it first (relays revoke ${stored.name}), then issue a new one.` };
    }
    const relay: StoredRelay = { name: stored?.name ?? name, credential: 'issued', tokenHash, createdAt: new Date().toISOString() };
    await this.ctx.storage.put(relayKey(name), relay);
    const { tokenHash: _hash, ...summary } = relay;
    return { ok: true, relay: summary };
  }

  /** Revoke relay `name`: it can no longer connect, and its hosts leave every listing. */
  async revokeRelay(name: string): Promise<{ ok: true; relay: RelayRecordSummary } | { ok: false; message: string }> {
    const stored = await this.ctx.storage.get<StoredRelay>(relayKey(name));
    if (!stored) return { ok: false, message: `There is no relay "${name}".` };
    const revoked: StoredRelay = { ...stored, tokenHash: null, revokedAt: stored.revokedAt ?? new Date().toISOString() };
    await this.ctx.storage.put(relayKey(name), revoked);
    const { tokenHash: _hash, ...summary } = revoked;
    return { ok: true, relay: summary };
  }

  /**
   * First half of a sign-in: refuses while rate-limited, else counts the attempt against the account
   * and the address at once (pending) and hands back what to verify against. Counting on entry, not
   * after the slow password check, is what holds the limits against parallel guesses: the reads and
   * writes here await only this object's storage, so the input gate lets no other call in between,
   * and the thirtieth of thirty simultaneous guesses sees the twenty-nine before it.
   */
  async beginSignIn(username: string, address: string): Promise<SignInGate> {
    const now = Date.now();
    const accountKey = failureKey('account', username);
    const addressKey = failureKey('address', address);
    const [account, fromAddress] = await Promise.all([this.window(accountKey, now), this.window(addressKey, now)]);
    const blockedUntil = Math.max(blockedUntilFor(account, ACCOUNT_FAILURES_ALLOWED), blockedUntilFor(fromAddress, ADDRESS_FAILURES_ALLOWED));
    if (blockedUntil > now) return { locked: true, retryAfterSeconds: Math.max(1, Math.ceil((blockedUntil - now) / 1000)) };
    await this.ctx.storage.put({
      [accountKey]: { ...account, pending: [...account.pending, now] } satisfies FailureWindow,
      [addressKey]: { ...fromAddress, pending: [...fromAddress.pending, now] } satisfies FailureWindow,
    });
    if (this.isBootstrap(username))
      return { locked: false, bootstrap: true, username: this.bootstrapName(), passwordHash: this.env.ADMIN_PASSWORD_HASH ?? null, disabled: false };
    const user = await this.ctx.storage.get<StoredUser>(userKey(username));
    return {
      locked: false,
      bootstrap: false,
      username: user?.username ?? username,
      passwordHash: user?.passwordHash || null,
      disabled: user?.disabled ?? false,
    };
  }

  /**
   * Second half: settles one pending attempt of this account and address. A failure stays counted
   * against both; a success clears the account's failures and refunds its attempt to the address
   * (the address keeps its earlier failures).
   */
  async finishSignIn(username: string, address: string, succeeded: boolean): Promise<void> {
    const now = Date.now();
    const accountKey = failureKey('account', username);
    const addressKey = failureKey('address', address);
    const [account, fromAddress] = await Promise.all([this.window(accountKey, now), this.window(addressKey, now)]);
    const settle = (window: SettledWindow, failed: boolean): SettledWindow => ({
      count: failed ? window.count + 1 : window.count,
      since: failed && window.count === 0 ? now : window.since,
      // Pending attempts of one key are alike but for their start; settle the oldest.
      pending: window.pending.slice(1),
    });
    const accountAfter: SettledWindow = succeeded ? { count: 0, since: now, pending: account.pending.slice(1) } : settle(account, true);
    const addressAfter = settle(fromAddress, !succeeded);
    // Nothing left to count: no key, as before any attempt.
    const after: [string, SettledWindow][] = [
      [accountKey, accountAfter],
      [addressKey, addressAfter],
    ];
    const kept = after.filter(([, window]) => !isEmpty(window));
    const gone = after.filter(([, window]) => isEmpty(window)).map(([key]) => key);
    if (kept.length > 0) await this.ctx.storage.put(Object.fromEntries(kept));
    if (gone.length > 0) await this.ctx.storage.delete(gone);
  }

  /** A key's failures within the window and its attempts not yet expired. */
  private async window(key: string, now: number): Promise<SettledWindow> {
    const stored = await this.ctx.storage.get<FailureWindow>(key);
    const pending = (stored?.pending ?? []).filter((started) => now - started < PENDING_ATTEMPT_MS);
    if (!stored || now - stored.since >= FAILURE_WINDOW_MS) return { count: 0, since: now, pending };
    return { count: stored.count, since: stored.since, pending };
  }

  async listUsers(): Promise<UserSummary[]> {
    const stored = await this.ctx.storage.list<StoredUser>({ prefix: 'user:' });
    const users = [...stored.values()].map(summary);
    const bootstrap: UserSummary = {
      username: this.bootstrapName(),
      groups: [],
      disabled: !this.env.ADMIN_PASSWORD_HASH,
      createdAt: '',
      updatedAt: '',
      source: 'builtin',
      bootstrap: true,
    };
    return [bootstrap, ...users].sort((a, b) => a.username.localeCompare(b.username));
  }

  async addUser(username: string, passwordHash: string, groups: string[]): Promise<{ ok: true; user: UserSummary } | { ok: false; message: string }> {
    if (this.isBootstrap(username)) return { ok: false, message: `"${username}" is the deployment's own admin account (ADMIN_USERNAME); choose another name.` };
    if (await this.ctx.storage.get(userKey(username))) return { ok: false, message: `A user "${username}" already exists.` };
    const now = new Date().toISOString();
    // Browser sessions of an earlier account of the same name (deleted since) do not carry over.
    const user: StoredUser = {
      username,
      passwordHash,
      groups: [...new Set(groups)],
      disabled: false,
      createdAt: now,
      updatedAt: now,
      source: 'builtin',
      sessionsValidAfter: Date.now(),
    };
    await this.ctx.storage.put(userKey(username), user);
    return { ok: true, user: summary(user) };
  }

  /** Whether anyone can sign in with a password: the bootstrap admin or any enabled built-in account. */
  async passwordSignInUsable(): Promise<boolean> {
    if (this.env.ADMIN_PASSWORD_HASH) return true;
    const stored = await this.ctx.storage.list<StoredUser>({ prefix: 'user:' });
    return [...stored.values()].some((user) => (user.source ?? 'builtin') === 'builtin' && !user.disabled);
  }

  /**
   * Record a successful sign-in through an identity provider: make the account on first use,
   * refresh the provider's groups after. Never takes over a built-in account or another external
   * identity of the same name, and never re-enables an account an admin disabled.
   */
  async recordExternalSignIn(signIn: {
    username: string;
    userId: string;
    source: Exclude<UserSource, 'builtin'>;
    idpGroups: string[];
  }): Promise<ExternalSignInResult> {
    if (this.isBootstrap(signIn.username)) return { ok: false, reason: 'builtin_account' };
    const existing = await this.ctx.storage.get<StoredUser>(userKey(signIn.username));
    const now = new Date().toISOString();
    const idpGroups = [...new Set(signIn.idpGroups)];
    if (existing) {
      if ((existing.source ?? 'builtin') === 'builtin') return { ok: false, reason: 'builtin_account' };
      if (existing.userId !== signIn.userId) return { ok: false, reason: 'other_account' };
      if (existing.disabled) return { ok: false, reason: 'disabled' };
      await this.ctx.storage.put(userKey(signIn.username), { ...existing, idpGroups, updatedAt: now } satisfies StoredUser);
      return { ok: true, username: existing.username };
    }
    const user: StoredUser = {
      username: signIn.username,
      passwordHash: '',
      groups: [],
      disabled: false,
      createdAt: now,
      updatedAt: now,
      source: signIn.source,
      userId: signIn.userId,
      idpGroups,
      sessionsValidAfter: Date.now(),
    };
    await this.ctx.storage.put(userKey(signIn.username), user);
    return { ok: true, username: user.username };
  }

  async updateUser(
    username: string,
    change: { disabled?: boolean; groups?: string[]; passwordHash?: string },
  ): Promise<{ ok: true; user: UserSummary; userId: string | null } | { ok: false; message: string }> {
    if (this.isBootstrap(username))
      return { ok: false, message: `"${username}" is the deployment's own admin account; change it with the ADMIN_PASSWORD_HASH secret.` };
    const user = await this.ctx.storage.get<StoredUser>(userKey(username));
    if (!user) return { ok: false, message: `There is no user "${username}".` };
    const source = user.source ?? 'builtin';
    if (change.passwordHash !== undefined && source !== 'builtin') {
      return { ok: false, message: `"${user.username}" signs in through ${source === 'oidc' ? 'OpenID Connect' : 'GitHub'} and has no password to reset.` };
    }
    // Disabling or a new password ends every browser session the user has open.
    const endSessions = change.disabled === true || change.passwordHash !== undefined;
    const updated: StoredUser = {
      ...user,
      ...(change.disabled !== undefined ? { disabled: change.disabled } : {}),
      ...(change.groups !== undefined ? { groups: [...new Set(change.groups)] } : {}),
      ...(change.passwordHash !== undefined ? { passwordHash: change.passwordHash } : {}),
      // +1: the Workers clock moves only between I/O, so a session issued just before this change can
      // carry the very same millisecond; it must end too (a tie goes to the change).
      ...(endSessions ? { sessionsValidAfter: Date.now() + 1 } : {}),
      updatedAt: new Date().toISOString(),
    };
    await this.ctx.storage.put(userKey(username), updated);
    // A reset password also lifts a lock-out from earlier failures.
    if (change.passwordHash !== undefined) await this.ctx.storage.delete(failureKey('account', username));
    return { ok: true, user: summary(updated), userId: updated.userId ?? null };
  }

  async deleteUser(username: string): Promise<boolean> {
    if (this.isBootstrap(username)) return false;
    return this.ctx.storage.delete(userKey(username));
  }

  /** What an external account's OAuth grants are filed under; null for built-in accounts (builtInUserId) and unknown names. */
  async grantOwner(username: string): Promise<string | null> {
    return (await this.ctx.storage.get<StoredUser>(userKey(username)))?.userId ?? null;
  }
}

function started(entry: StartedEntry): AuditEntry {
  return { ...entry, outcome: 'started', code: null, exitCode: null, bytes: null, durationMs: 0 };
}

export function teamDirectory(env: Env): DurableObjectStub<TeamDirectory> {
  return env.TEAM_DIRECTORY.get(env.TEAM_DIRECTORY.idFromName('team'));
}
