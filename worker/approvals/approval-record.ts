/**
 * An approval record as the ApprovalDesk keeps it, and the views of it that leave the desk. The
 * record is bound to the requester (user id and name), the client, the exact call (its hash) and the
 * policy revision it was decided under; it is approved or rejected once, and used once.
 */
import { z } from 'zod';
import { COMMAND_CLASSES } from '../../shared/shell/command-class.ts';
import { approvalCallSchema } from './approval-call.ts';

export const APPROVAL_STATES = ['pending', 'approved', 'rejected', 'expired', 'used'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

/** 128 random bits as 32 lowercase hex digits. */
export const APPROVAL_ID_PATTERN = /^[0-9a-f]{32}$/;

/** A subject as policy writes it: "*", "user:NAME" or "group:NAME". */
const subjectSchema = z.string().regex(/^(\*|user:[A-Za-z0-9._@-]{1,64}|group:[A-Za-z0-9._@-]{1,64})$/);

/** What the executor hands the desk to open an approval (the rest is the desk's). */
export const newApprovalSchema = z
  .object({
    requester: z.object({ userId: z.string().min(1).max(256), username: z.string().min(1).max(128) }).strict(),
    /** The MCP client the token was issued to (its registered name, else its id), as the audit log names it. */
    client: z.string().max(256).nullable(),
    call: approvalCallSchema,
    argsHash: z.string().regex(/^[0-9a-f]{64}$/),
    class: z.enum(COMMAND_CLASSES),
    reasons: z.array(z.string().max(500)).max(20),
    rule: z.object({ index: z.number().int().min(0).max(100_000), note: z.string().max(500).nullable() }).strict(),
    policyRevision: z.number().int().min(0),
    /** Who may approve besides deployment admins; empty: admins only. */
    approvers: z.array(subjectSchema).max(64),
    /** A `confirm` rule: the requester may approve their own call. */
    self: z.boolean(),
  })
  .strict();
export type NewApproval = z.infer<typeof newApprovalSchema>;

export interface ApprovalRecord extends Omit<NewApproval, 'call'> {
  id: string;
  tool: string;
  relay: string;
  host: string;
  guest: NewApproval['call']['guest'];
  command: string;
  timeoutMs: number;
  sudo?: true;
  state: ApprovalState;
  createdAt: number;
  /** Until when a pending request may be decided. */
  expiresAt: number;
  /** Until when an approved one may be used; null until approved. */
  approvedUntil: number | null;
  decidedBy: string | null;
  decidedAt: number | null;
  usedAt: number | null;
}

/** What the executor presents to use an approval: all of it must match the record. */
export interface ApprovalBinding {
  userId: string;
  client: string | null;
  relay: string;
  host: string;
  guest: NewApproval['call']['guest'];
  tool: string;
  argsHash: string;
  policyRevision: number;
}

/** The call an approval is for, as it was asked. */
export function callOf(record: ApprovalRecord): NewApproval['call'] {
  return {
    tool: record.tool,
    relay: record.relay,
    host: record.host,
    guest: record.guest,
    command: record.command,
    timeoutMs: record.timeoutMs,
    ...(record.sudo ? { sudo: true as const } : {}),
  };
}

/** Who approves, in words: "deployment admins", or the listed subjects and admins. */
export function approversLabel(record: Pick<ApprovalRecord, 'approvers' | 'self' | 'requester'>): string {
  const others = record.approvers.length > 0 ? `${record.approvers.join(', ')} or a deployment admin` : 'a deployment admin';
  return record.self ? `${record.requester.username} (own confirmation) or ${others}` : others;
}

/** A record as JSON for the admin API and the status tool: times as ISO strings. */
export function approvalJson(record: ApprovalRecord): Record<string, unknown> {
  const iso = (time: number | null): string | null => (time === null ? null : new Date(time).toISOString());
  return {
    id: record.id,
    state: record.state,
    requester: record.requester.username,
    client: record.client,
    relay: record.relay,
    host: record.host,
    guest: record.guest,
    tool: record.tool,
    command: record.command,
    class: record.class,
    reasons: record.reasons,
    rule: record.rule,
    policy_revision: record.policyRevision,
    approvers: record.approvers,
    self: record.self,
    created_at: iso(record.createdAt),
    expires_at: iso(record.expiresAt),
    approved_until: iso(record.approvedUntil),
    decided_by: record.decidedBy,
    decided_at: iso(record.decidedAt),
    used_at: iso(record.usedAt),
  };
}
