import { describe, expect, it } from 'vitest';
import { approvalArgsHash, approvalCallSchema, type ApprovalCall } from '../../../worker/approvals/approval-call.ts';

const plain: ApprovalCall = { tool: 'ssh_exec_command', relay: 'r1', host: 'r1/web1', guest: null, command: 'systemctl restart nginx', timeoutMs: 30_000 };

describe('an approval binds the sudo flag', () => {
  it('the same command under sudo hashes differently from the plain one, so one approval cannot serve the other', async () => {
    expect(await approvalArgsHash({ ...plain, sudo: true })).not.toBe(await approvalArgsHash(plain));
  });

  it('the schema keeps the flag and refuses anything but true', () => {
    expect(approvalCallSchema.safeParse({ ...plain, sudo: true }).success).toBe(true);
    expect(approvalCallSchema.safeParse({ ...plain, sudo: false }).success).toBe(false);
  });
});
