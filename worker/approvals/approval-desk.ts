/**
 * The approvals of a deployment: one Durable Object (`approvals`, SQLite), so approvers have one
 * queue and a record is used at most once (the check and the `used` mark happen in one step inside
 * the object, with nothing awaited between them).
 *
 *   request  the executor opens a record for a call a command rule holds (pending for 1 h)
 *   decide   an approver approves or rejects it; who may is checked afresh against the team now
 *   consume  the executor presents the call it is about to run; every part must match, then `used`
 *   status   the requester or an approver reads it; anyone else gets "not found", as for a made-up id
 *   list     the pending records a person may decide
 *
 * The alarm expires what was not decided (or not used) in time and sends the webhook. Each step is
 * written to the audit log through the TeamDirectory's outbox (recordCall): request, decision, use,
 * refused use and expiry; the command is the row's target, as for any call, and output never is.
 *
 * Storage: table `approvals` (id, state, due: the time the record next changes by itself, record:
 * the ApprovalRecord as JSON); table `webhooks` (approval id, attempt count, next attempt time).
 */
import { DurableObject } from 'cloudflare:workers';
import { failure, success, type Outcome } from '../../shared/errors.ts';
import { randomBytes, toHex } from '../../shared/encoding.ts';
import { describeIssues } from '../../shared/describe-issues.ts';
import { isDeploymentAdmin, type Subject } from '../team/policy.ts';
import { recordCall } from '../team/gate-call.ts';
import { teamDirectory } from '../team/team-directory.ts';
import { logEvent } from '../log.ts';
import { readSettings } from '../settings.ts';
import type { AuditEntry } from '../audit/audit-log.ts';
import { APPROVAL_ID_PATTERN, newApprovalSchema, type ApprovalBinding, type ApprovalRecord, type NewApproval } from './approval-record.ts';
import { sendWebhook, webhookBody, webhookConfig } from './approval-webhook.ts';

/** A pending request may be decided for an hour; an approved one must be used within 15 minutes. */
export const PENDING_TTL_MS = 60 * 60 * 1000;
export const APPROVED_TTL_MS = 15 * 60 * 1000;
/** Requests one user may have waiting at once: a client in a loop cannot flood the approvers' queue. */
export const MAX_PENDING_PER_USER = 20;
/** Records kept in all; decided ones older than KEEP_DECIDED_MS go first, then the oldest decided ones. */
export const MAX_RECORDS = 10_000;
const KEEP_DECIDED_MS = 7 * 24 * 3600 * 1000;
/** Lists are bounded whatever the queue holds. */
export const MAX_LISTED = 200;
/** Records expired, and webhooks sent, per alarm: bounded work, the rest on the next one. */
const ALARM_BATCH = 100;

/** The person asking the desk: their user name (looked up in the team now) and, for a requester, their user id. */
export interface DeskCaller {
  username: string;
  userId?: string;
  /** The OAuth grant of an MCP caller's token (none for a browser session): refused once revoked. */
  grantId?: string;
}

export type Verdict = 'approve' | 'reject';

export function approvalDesk(env: Env): DurableObjectStub<ApprovalDesk> {
  return env.APPROVAL_DESK.get(env.APPROVAL_DESK.idFromName('approvals'));
}

function notFound(id: string): Outcome<never> {
  return failure('approval_not_found', `No approval ${id} of yours exists.`);
}

function iso(time: number): string {
  return new Date(time).toISOString();
}

/** Whether `who` is named by one of `subjects` ("*", "user:NAME", "group:NAME"; case-insensitive, as policy matches). */
function named(subjects: readonly string[], who: Subject): boolean {
  const user = `user:${who.username.toLowerCase()}`;
  const groups = who.groups.map((group) => `group:${group.toLowerCase()}`);
  return subjects.some((entry) => {
    const subject = entry.toLowerCase();
    return subject === '*' || subject === user || groups.includes(subject);
  });
}

export class ApprovalDesk extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(
      'CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, state TEXT NOT NULL, due INTEGER, created_at INTEGER NOT NULL, record TEXT NOT NULL)',
    );
    this.sql.exec('CREATE INDEX IF NOT EXISTS approvals_due ON approvals (due)');
    this.sql.exec('CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL)');
  }

  // ---- storage ----

  private load(id: string): ApprovalRecord | null {
    if (!APPROVAL_ID_PATTERN.test(id)) return null;
    const row = this.sql.exec<{ record: string }>('SELECT record FROM approvals WHERE id = ?', id).toArray()[0];
    return row ? (JSON.parse(row.record) as ApprovalRecord) : null;
  }

  private save(record: ApprovalRecord): void {
    const due = record.state === 'pending' ? record.expiresAt : record.state === 'approved' ? record.approvedUntil : null;
    this.sql.exec(
      'INSERT OR REPLACE INTO approvals (id, state, due, created_at, record) VALUES (?, ?, ?, ?, ?)',
      record.id,
      record.state,
      due,
      record.createdAt,
      JSON.stringify(record),
    );
  }

  /** A live record past its time is expired here, on read, as well as by the alarm: the answer never depends on the alarm's timing. */
  private current(record: ApprovalRecord, now: number): { record: ApprovalRecord; expiredNow: boolean } {
    const late =
      (record.state === 'pending' && now >= record.expiresAt) || (record.state === 'approved' && record.approvedUntil !== null && now >= record.approvedUntil);
    if (!late) return { record, expiredNow: false };
    const expired: ApprovalRecord = { ...record, state: 'expired' };
    this.save(expired);
    return { record: expired, expiredNow: true };
  }

  private async audit(record: ApprovalRecord, event: string, user: string, outcome: AuditEntry['outcome'], code: string | null, note = ''): Promise<void> {
    const by = user.toLowerCase() === record.requester.username.toLowerCase() ? '' : ` (requested by ${record.requester.username})`;
    await recordCall(this.env, {
      time: iso(Date.now()),
      user,
      client: record.client,
      relay: record.relay,
      host: record.host,
      tool: event,
      target: `approval ${record.id}${by}${note ? ` [${note}]` : ''}: ${record.tool}${record.guest ? ` ${record.guest.kind} ${record.guest.id}` : ''}: ${record.command}`,
      outcome,
      code,
      exitCode: null,
      bytes: null,
      durationMs: 0,
    });
  }

  private async schedule(): Promise<void> {
    const nextDue = this.sql.exec<{ t: number | null }>('SELECT MIN(due) AS t FROM approvals WHERE due IS NOT NULL').one().t;
    const nextHook = this.sql.exec<{ t: number | null }>('SELECT MIN(next_at) AS t FROM webhooks').one().t;
    const next = [nextDue, nextHook].filter((time): time is number => time !== null);
    if (next.length === 0) return;
    const at = Math.min(...next);
    const set = await this.ctx.storage.getAlarm();
    if (set === null || set > at) await this.ctx.storage.setAlarm(at);
  }

  /** Room for one more record: old decided ones go first; live ones are never dropped. */
  private makeRoom(now: number): boolean {
    this.sql.exec("DELETE FROM approvals WHERE state NOT IN ('pending', 'approved') AND created_at < ?", now - KEEP_DECIDED_MS);
    const count = (): number => Number(this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM approvals').one().n);
    const excess = count() - (MAX_RECORDS - 1);
    if (excess > 0)
      this.sql.exec(
        "DELETE FROM approvals WHERE id IN (SELECT id FROM approvals WHERE state NOT IN ('pending', 'approved') ORDER BY created_at ASC LIMIT ?)",
        excess,
      );
    return count() < MAX_RECORDS;
  }

  /** The caller's standing now: never remembered, so a removed admin or group member stops deciding at once. */
  private async standing(username: string, grantId?: string): Promise<{ subject: Subject; admin: boolean } | null> {
    const access = await teamDirectory(this.env).access(username, grantId);
    if (!access.active) return null;
    return { subject: access.subject, admin: isDeploymentAdmin(access.policy, access.subject) };
  }

  private isRequester(record: ApprovalRecord, who: DeskCaller): boolean {
    if (who.userId !== undefined) return who.userId === record.requester.userId;
    return who.username.toLowerCase() === record.requester.username.toLowerCase();
  }

  // ---- the operations ----

  async request(input: unknown): Promise<Outcome<{ id: string; expiresAt: string }>> {
    const parsed = newApprovalSchema.safeParse(input);
    if (!parsed.success) return failure('invalid_argument', `Not an approval request: ${describeIssues(parsed.error, 'the request')}`);
    const ask = parsed.data;
    const now = Date.now();
    const same = this.pendingOwn(ask, now);
    if (same) return success({ id: same.id, expiresAt: iso(same.expiresAt) });
    const waiting = Number(
      this.sql
        .exec<{ n: number }>(
          "SELECT COUNT(*) AS n FROM approvals WHERE state = 'pending' AND json_extract(record, '$.requester.userId') = ?",
          ask.requester.userId,
        )
        .one().n,
    );
    if (waiting >= MAX_PENDING_PER_USER)
      return failure(
        'approval_refused',
        `You already have ${waiting} approvals waiting (the most one person may have). Wait for them to be decided or to expire (${PENDING_TTL_MS / 60_000} minutes), then call again.`,
      );
    if (!this.makeRoom(now)) return failure('approval_refused', 'The approvals queue of this deployment is full. Ask an admin to decide the waiting requests.');
    const { call, ...rest } = ask;
    const record: ApprovalRecord = {
      ...rest,
      ...call,
      id: toHex(randomBytes(16)),
      state: 'pending',
      createdAt: now,
      expiresAt: now + PENDING_TTL_MS,
      approvedUntil: null,
      decidedBy: null,
      decidedAt: null,
      usedAt: null,
    };
    this.save(record);
    const hook = webhookConfig(this.env);
    if (hook.problem) logEvent('warn', 'approval webhook not sent', { problem: hook.problem });
    if (hook.config) this.sql.exec('INSERT OR REPLACE INTO webhooks (id, attempts, next_at) VALUES (?, 0, ?)', record.id, now);
    await this.schedule();
    await this.audit(record, 'approval_requested', record.requester.username, 'ok', null, `class ${record.class}, rule ${record.rule.index}`);
    return success({ id: record.id, expiresAt: iso(record.expiresAt) });
  }

  /**
   * The requester's own confirmation still pending for exactly this call (same client, arguments and
   * policy revision). The call asked again (a 2026-07-28 client's retry with its answer, or the
   * same command once more) gets that record, not a second one waiting beside it.
   */
  private pendingOwn(ask: NewApproval, now: number): ApprovalRecord | null {
    if (!ask.self) return null;
    const rows = this.sql
      .exec<{ record: string }>(
        "SELECT record FROM approvals WHERE state = 'pending' AND json_extract(record, '$.requester.userId') = ? AND json_extract(record, '$.argsHash') = ?",
        ask.requester.userId,
        ask.argsHash,
      )
      .toArray();
    for (const row of rows) {
      const record = JSON.parse(row.record) as ApprovalRecord;
      if (record.self && record.client === ask.client && record.policyRevision === ask.policyRevision && record.expiresAt > now) return record;
    }
    return null;
  }

  /**
   * Approve or reject. Allowed to a deployment admin, to anyone the record's approvers name, and to
   * the requester only when the rule asked for their own confirmation: nobody approves their own
   * call otherwise, admins included (the point is a second person). Someone who may neither decide
   * nor see the record gets "not found", as for a made-up id.
   */
  async decide(id: string, approver: DeskCaller, verdict: Verdict): Promise<Outcome<ApprovalRecord>> {
    const stored = this.load(id);
    if (!stored) return notFound(id);
    const standing = await this.standing(approver.username, approver.grantId);
    const requester = this.isRequester(stored, approver);
    const listed = standing !== null && (standing.admin || named(stored.approvers, standing.subject));
    if (standing === null || (!listed && !requester)) return notFound(id);
    if (requester && !stored.self)
      return failure(
        'access_denied',
        `Approval ${id} is for your own call: another person (${stored.approvers.join(', ') || 'a deployment admin'}) must decide it.`,
      );
    // Read again after the awaited team lookup: another approver may have decided meanwhile.
    const fresh = this.load(id);
    if (!fresh) return notFound(id);
    const { record, expiredNow } = this.current(fresh, Date.now());
    if (expiredNow) await this.expired(record);
    if (record.state !== 'pending')
      return failure(
        'approval_refused',
        `Approval ${id} is ${record.state}${record.decidedBy ? ` (decided by ${record.decidedBy} at ${iso(record.decidedAt ?? 0)})` : ''}; it can no longer be decided.`,
      );
    const now = Date.now();
    const decided: ApprovalRecord = {
      ...record,
      state: verdict === 'approve' ? 'approved' : 'rejected',
      approvedUntil: verdict === 'approve' ? now + APPROVED_TTL_MS : null,
      decidedBy: approver.username,
      decidedAt: now,
    };
    this.save(decided);
    this.sql.exec('DELETE FROM webhooks WHERE id = ?', id);
    await this.schedule();
    await this.audit(decided, verdict === 'approve' ? 'approval_approved' : 'approval_rejected', approver.username, 'ok', null);
    return success(decided);
  }

  /**
   * Use an approval for the call about to run. Every part of the binding must match the record, it
   * must be approved and within its time, and it becomes `used` in the same step: a second use, by
   * anyone, is refused. Each mismatch is refused with its own reason and audited.
   */
  async consume(id: string, binding: ApprovalBinding): Promise<Outcome<ApprovalRecord>> {
    const stored = this.load(id);
    // Another user's approval is answered exactly like one that does not exist.
    if (!stored || stored.requester.userId !== binding.userId) return notFound(id);
    const now = Date.now();
    const { record, expiredNow } = this.current(stored, now);
    const refusal = this.mismatch(record, binding);
    if (refusal === null) {
      const used: ApprovalRecord = { ...record, state: 'used', usedAt: now };
      this.save(used);
      await this.schedule();
      await this.audit(used, 'approval_used', record.requester.username, 'ok', null);
      return success(used);
    }
    if (expiredNow) await this.expired(record);
    await this.audit(record, 'approval_refused', record.requester.username, 'denied', 'approval_refused', refusal.key);
    return failure('approval_refused', `Approval ${id} cannot be used: ${refusal.message}`);
  }

  private mismatch(record: ApprovalRecord, binding: ApprovalBinding): { key: string; message: string } | null {
    switch (record.state) {
      case 'used':
        return { key: 'used', message: `it was already used at ${iso(record.usedAt ?? 0)}; an approval runs its call once.` };
      case 'rejected':
        return { key: 'rejected', message: `${record.decidedBy ?? 'an approver'} rejected it.` };
      case 'expired':
        return {
          key: 'expired',
          message:
            record.decidedAt === null
              ? `nobody decided it before it expired at ${iso(record.expiresAt)}.`
              : `it was approved but not used within ${APPROVED_TTL_MS / 60_000} minutes.`,
        };
      case 'pending':
        return { key: 'pending', message: 'it has not been approved yet.' };
      case 'approved':
        break;
      default: {
        const unhandled: never = record.state;
        return { key: 'state', message: `it is in an unknown state ${String(unhandled)}.` };
      }
    }
    if (record.client !== binding.client)
      return { key: 'client', message: `it was asked for from another client (${record.client ?? 'unknown'}), not ${binding.client ?? 'an unknown client'}.` };
    if (record.relay !== binding.relay || record.host !== binding.host) return { key: 'host', message: `it is for host ${record.host}, not ${binding.host}.` };
    if (JSON.stringify(record.guest) !== JSON.stringify(binding.guest)) return { key: 'guest', message: 'it is for another container or VM.' };
    if (record.tool !== binding.tool) return { key: 'tool', message: `it is for ${record.tool}, not ${binding.tool}.` };
    if (record.argsHash !== binding.argsHash)
      return { key: 'arguments', message: 'the command or its timeout differs from the one approved (even by one character).' };
    if (record.policyRevision !== binding.policyRevision)
      return {
        key: 'policy',
        message: `the policy changed since it was approved (revision ${record.policyRevision}, now ${binding.policyRevision}); approvals do not outlive a policy edit.`,
      };
    return null;
  }

  /** The record, for its requester or someone who may decide it; anyone else: not found. */
  async status(id: string, caller: DeskCaller): Promise<Outcome<ApprovalRecord>> {
    const stored = this.load(id);
    if (!stored) return notFound(id);
    if (!this.isRequester(stored, caller)) {
      const standing = await this.standing(caller.username, caller.grantId);
      if (standing === null || !(standing.admin || named(stored.approvers, standing.subject))) return notFound(id);
    }
    const fresh = this.load(id);
    if (!fresh) return notFound(id);
    const { record, expiredNow } = this.current(fresh, Date.now());
    if (expiredNow) await this.expired(record);
    return success(record);
  }

  /** The pending records `viewer` may decide (an admin: all of them), oldest first. */
  async list(viewer: DeskCaller): Promise<Outcome<ApprovalRecord[]>> {
    const standing = await this.standing(viewer.username, viewer.grantId);
    if (standing === null) return success([]);
    const now = Date.now();
    const rows = this.sql
      .exec<{ record: string }>("SELECT record FROM approvals WHERE state = 'pending' AND due > ? ORDER BY created_at ASC", now)
      .toArray()
      .map((row) => JSON.parse(row.record) as ApprovalRecord);
    const mine = rows.filter((record) => standing.admin || named(record.approvers, standing.subject) || (record.self && this.isRequester(record, viewer)));
    return success(mine.slice(0, MAX_LISTED));
  }

  private async expired(record: ApprovalRecord): Promise<void> {
    this.sql.exec('DELETE FROM webhooks WHERE id = ?', record.id);
    await this.audit(record, 'approval_expired', record.requester.username, 'ok', null, record.decidedAt === null ? 'not decided' : 'approved, not used');
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    const late = this.sql
      .exec<{ record: string }>('SELECT record FROM approvals WHERE due IS NOT NULL AND due <= ? ORDER BY due LIMIT ?', now, ALARM_BATCH)
      .toArray()
      .map((row) => JSON.parse(row.record) as ApprovalRecord);
    for (const stored of late) {
      const { record, expiredNow } = this.current(stored, now);
      if (expiredNow) await this.expired(record);
    }
    await this.sendWebhooks(now);
    await this.schedule();
  }

  private async sendWebhooks(now: number): Promise<void> {
    const due = this.sql
      .exec<{ id: string; attempts: number }>('SELECT id, attempts FROM webhooks WHERE next_at <= ? ORDER BY next_at LIMIT ?', now, ALARM_BATCH)
      .toArray();
    if (due.length === 0) return;
    const { config } = webhookConfig(this.env);
    const publicUrl = readSettings(this.env).publicUrl;
    for (const hook of due) {
      const record = this.load(hook.id);
      if (!config || !record || record.state !== 'pending') {
        this.sql.exec('DELETE FROM webhooks WHERE id = ?', hook.id);
        continue;
      }
      const sent = await sendWebhook(config, webhookBody(record, publicUrl));
      const attempts = Number(hook.attempts) + 1;
      const delay = config.retryDelaysMs[attempts - 1];
      if (sent.delivered || delay === undefined) {
        this.sql.exec('DELETE FROM webhooks WHERE id = ?', hook.id);
        if (!sent.delivered) logEvent('warn', 'approval webhook given up', { approval: hook.id, attempts, last: sent.detail });
      } else {
        this.sql.exec('UPDATE webhooks SET attempts = ?, next_at = ? WHERE id = ?', attempts, Date.now() + delay, hook.id);
        logEvent('warn', 'approval webhook failed; will retry', { approval: hook.id, attempts, last: sent.detail, retryInMs: delay });
      }
    }
  }
}
