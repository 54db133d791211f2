/**
 * The approvals queue for both admin front ends (the JSON API and the admin page): list what is
 * waiting, approve or reject. The ApprovalDesk checks the approver afresh on every decision (a
 * deployment admin, or a person the rule names; never the requester for another person's rule).
 */
import { approvalDesk, type Verdict } from '../approvals/approval-desk.ts';
import { APPROVAL_ID_PATTERN, type ApprovalRecord } from '../approvals/approval-record.ts';
import { logEvent } from '../log.ts';
import type { ActionResult } from './admin-actions.ts';

export async function pendingApprovals(env: Env, admin: string): Promise<ApprovalRecord[]> {
  const listed = await approvalDesk(env).list({ username: admin });
  return listed.ok ? listed.value : [];
}

export async function decideApproval(env: Env, admin: string, id: string, verdict: Verdict): Promise<ActionResult<{ approval: ApprovalRecord }>> {
  if (!APPROVAL_ID_PATTERN.test(id)) return { ok: false, reason: 'not_found', message: 'An approval id is 32 hex digits.' };
  const decided = await approvalDesk(env).decide(id, { username: admin }, verdict);
  if (!decided.ok) {
    const reason = decided.error.code === 'approval_not_found' ? 'not_found' : 'conflict';
    return { ok: false, reason, message: decided.error.message };
  }
  logEvent('info', `approval ${verdict === 'approve' ? 'approved' : 'rejected'}`, { admin, approval: id, requester: decided.value.requester.username });
  return { ok: true, approval: decided.value };
}
