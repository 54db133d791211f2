/**
 * Command rules (worker/team/policy.ts decideCommand): each rule of the semantics in its own test.
 * Classifications are written out by hand: these tests are about matching rules, not classifying.
 */
import { describe, expect, it } from 'vitest';
import { READ_ONLY_CAPABILITY } from '../../../../shared/capabilities.ts';
import type { CommandClassification } from '../../../../shared/shell/command-class.ts';
import {
  decideCommand,
  policySchema,
  roleOn,
  type CommandRule,
  type Policy,
  type PolicyHost,
  type Role,
  type Subject,
} from '../../../../worker/team/policy.ts';

const viewer: Subject = { username: 'vera', groups: ['support'] };
const operator: Subject = { username: 'otto', groups: ['ops'] };
const bootstrap: Subject = { username: 'admin', groups: [], bootstrapAdmin: true };

const staging: PolicyHost = { name: 'stage1', labels: { env: 'staging' }, relay: 'r1' };
const prod: PolicyHost = { name: 'web1', labels: { env: 'prod' }, relay: 'r1' };
const vault: PolicyHost = { name: 'vault', labels: { env: 'staging' }, relay: 'r1', capabilities: [READ_ONLY_CAPABILITY] };

const readOnly = (...programs: string[]): CommandClassification => ({ class: 'read-only', programs, reasons: [] });
const mutating = (...programs: string[]): CommandClassification => ({ class: 'mutating', programs, reasons: [] });
const privileged = (...programs: string[]): CommandClassification => ({ class: 'privileged', programs, reasons: [] });
const unknown = (...programs: string[]): CommandClassification => ({ class: 'unknown', programs, reasons: [] });

function policy(...commandRules: CommandRule[]): Policy {
  return {
    version: 1,
    grants: [
      { effect: 'allow', subjects: ['group:support'], role: 'viewer', hosts: ['*'] },
      { effect: 'allow', subjects: ['group:ops'], role: 'operator', hosts: ['*'] },
    ],
    commandRules,
  };
}

function decide(p: Policy, who: Subject, host: PolicyHost, command: CommandClassification): ReturnType<typeof decideCommand> {
  const role: Role | null = roleOn(p, who, host);
  return decideCommand(p, who, host, role, command);
}

/** The README's example. */
const EXAMPLE = policy(
  { effect: 'allow', roles: ['viewer'], hosts: ['env=staging'], classes: ['read-only'], note: 'viewers look around staging' },
  { effect: 'approve', roles: ['operator'], hosts: ['env=prod'], classes: ['privileged'], note: 'privileged on prod waits for a person' },
  { effect: 'deny', hosts: ['*'], programs: ['mkfs*'], note: 'nobody formats disks' },
);

describe('decideCommand: without command rules nothing changes', () => {
  const plain: Policy = { version: 1, grants: policy().grants };
  it('lets an operator run anything and a viewer nothing, as the role decides', () => {
    expect(decide(plain, operator, prod, privileged('rm'))).toEqual({ effect: 'allow', rule: null });
    expect(decide(plain, viewer, staging, readOnly('df'))).toEqual({ effect: 'deny', rule: null, role: 'viewer' });
    expect(decide(plain, { username: 'nobody', groups: [] }, staging, readOnly('df'))).toEqual({ effect: 'deny', rule: null, role: null });
  });
});

describe('decideCommand: allow lifts a role below operator', () => {
  it('lets a viewer run a read-only command where a rule allows it', () => {
    expect(decide(EXAMPLE, viewer, staging, readOnly('df'))).toEqual({ effect: 'allow', rule: { index: 0, note: 'viewers look around staging' } });
  });
  it('does not let the viewer run a mutating command there', () => {
    expect(decide(EXAMPLE, viewer, staging, mutating('df', 'touch'))).toEqual({ effect: 'deny', rule: null, role: 'viewer' });
  });
  it('does not reach hosts outside its selector', () => {
    expect(decide(EXAMPLE, viewer, prod, readOnly('df'))).toEqual({ effect: 'deny', rule: null, role: 'viewer' });
  });
  it('never opens a host the caller has no role on', () => {
    const open = policy({ effect: 'allow', hosts: ['*'], classes: ['read-only'] });
    expect(decide(open, { username: 'stranger', groups: [] }, staging, readOnly('ls'))).toEqual({ effect: 'deny', rule: null, role: null });
  });
  it('never opens a host the relay marks read-only', () => {
    expect(decide(EXAMPLE, viewer, vault, readOnly('df'))).toEqual({ effect: 'deny', rule: null, role: 'viewer' });
  });
});

describe('decideCommand: precedence deny > approve > confirm > allow > role', () => {
  it('deny beats an approve and an allow that also match', () => {
    const p = policy({ effect: 'allow', hosts: ['*'] }, { effect: 'approve', hosts: ['*'] }, { effect: 'deny', hosts: ['*'], programs: ['rm'], note: 'no rm' });
    expect(decide(p, operator, prod, mutating('rm'))).toEqual({ effect: 'deny', rule: { index: 2, note: 'no rm' } });
  });
  it('approve beats confirm and allow, and names its approvers', () => {
    const p = policy({ effect: 'allow', hosts: ['*'] }, { effect: 'confirm', hosts: ['*'] }, { effect: 'approve', hosts: ['*'], approvers: ['group:leads'] });
    expect(decide(p, operator, prod, mutating('rm'))).toEqual({ effect: 'approve', rule: { index: 2, note: null }, approvers: ['group:leads'] });
  });
  it('approve without approvers leaves them to the deployment admins (an empty list)', () => {
    expect(decide(EXAMPLE, operator, prod, privileged('systemctl'))).toEqual({
      effect: 'approve',
      rule: { index: 1, note: 'privileged on prod waits for a person' },
      approvers: [],
    });
  });
  it('confirm beats allow', () => {
    const p = policy({ effect: 'allow', hosts: ['*'] }, { effect: 'confirm', hosts: ['*'], classes: ['mutating'] });
    expect(decide(p, operator, prod, mutating('touch'))).toEqual({ effect: 'confirm', rule: { index: 1, note: null } });
  });
  it('the first matching rule of the winning effect is named', () => {
    const p = policy({ effect: 'deny', hosts: ['env=prod'], note: 'first' }, { effect: 'deny', hosts: ['*'], note: 'second' });
    expect(decide(p, operator, prod, readOnly('ls'))).toEqual({ effect: 'deny', rule: { index: 0, note: 'first' } });
  });
  it('a rule for another role does not apply', () => {
    expect(decide(EXAMPLE, viewer, prod, privileged('systemctl'))).toEqual({ effect: 'deny', rule: null, role: 'viewer' });
    expect(decide(EXAMPLE, operator, staging, privileged('systemctl'))).toEqual({ effect: 'allow', rule: null });
  });
  it('a rule for other subjects does not apply; one for a group does', () => {
    const p = policy({ effect: 'deny', subjects: ['user:someone'], hosts: ['*'] }, { effect: 'approve', subjects: ['group:OPS'], hosts: ['*'] });
    expect(decide(p, operator, prod, readOnly('ls'))).toMatchObject({ effect: 'approve', rule: { index: 1 } });
  });
});

describe('decideCommand: classes', () => {
  it('a rule for privileged also matches unknown', () => {
    expect(decide(EXAMPLE, operator, prod, unknown())).toMatchObject({ effect: 'approve', rule: { index: 1 } });
  });
  it('a rule for unknown does not match privileged', () => {
    const p = policy({ effect: 'deny', hosts: ['*'], classes: ['unknown'] });
    expect(decide(p, operator, prod, privileged('reboot'))).toEqual({ effect: 'allow', rule: null });
    expect(decide(p, operator, prod, unknown())).toMatchObject({ effect: 'deny' });
  });
  it('a rule for read-only does not match mutating', () => {
    const p = policy({ effect: 'deny', hosts: ['*'], classes: ['read-only'] });
    expect(decide(p, operator, prod, mutating('touch'))).toEqual({ effect: 'allow', rule: null });
  });
});

describe('decideCommand: programs', () => {
  it('match by basename glob, anywhere in the command', () => {
    expect(decide(EXAMPLE, operator, staging, privileged('echo', 'mkfs.ext4'))).toEqual({ effect: 'deny', rule: { index: 2, note: 'nobody formats disks' } });
    expect(decide(EXAMPLE, operator, staging, privileged('/sbin/mkfs'))).toMatchObject({ effect: 'deny', rule: { index: 2 } });
  });
  it('match the whole name, and case matters', () => {
    expect(decide(EXAMPLE, operator, staging, privileged('xmkfs'))).toEqual({ effect: 'allow', rule: null });
    expect(decide(EXAMPLE, operator, staging, privileged('MKFS'))).toEqual({ effect: 'allow', rule: null });
    const dotted = policy({ effect: 'deny', hosts: ['*'], programs: ['mkfs.ext?'] });
    expect(decide(dotted, operator, staging, privileged('mkfs.ext4'))).toMatchObject({ effect: 'deny' });
    expect(decide(dotted, operator, staging, privileged('mkfsXext4'))).toEqual({ effect: 'allow', rule: null });
  });
  it('with classes too, both must match', () => {
    const p = policy({ effect: 'deny', hosts: ['*'], programs: ['rm'], classes: ['privileged'] });
    expect(decide(p, operator, staging, mutating('rm'))).toEqual({ effect: 'allow', rule: null });
    expect(decide(p, operator, staging, privileged('rm'))).toMatchObject({ effect: 'deny' });
  });
});

describe('decideCommand: the bootstrap admin', () => {
  it('is bound by a command deny', () => {
    expect(decide(EXAMPLE, bootstrap, prod, privileged('mkfs.ext4'))).toEqual({ effect: 'deny', rule: { index: 2, note: 'nobody formats disks' } });
  });
  it('otherwise runs anything as the admin role allows', () => {
    expect(decide(EXAMPLE, bootstrap, prod, privileged('reboot'))).toEqual({ effect: 'allow', rule: null });
  });
});

describe('commandRules in the policy document', () => {
  it("today's documents parse unchanged, with no commandRules key", () => {
    const today = {
      version: 1,
      grants: [
        { subjects: ['group:ops'], role: 'operator', hosts: ['*'], note: 'ops run things everywhere' },
        { effect: 'deny', subjects: ['group:contractors'], role: 'operator', hosts: ['env=prod'] },
      ],
    };
    const parsed = policySchema.safeParse(today);
    expect(parsed.success).toBe(true);
    expect(parsed.data).toEqual({ ...today, grants: [today.grants[0] && { effect: 'allow', ...today.grants[0] }, today.grants[1]] });
    expect(parsed.data && 'commandRules' in parsed.data).toBe(false);
  });
  it('accepts the README example', () => {
    expect(policySchema.safeParse(EXAMPLE).success).toBe(true);
  });
  it.each([
    [{ effect: 'permit', hosts: ['*'] }, 'commandRules.0.effect: effect must be one of allow, deny, approve, confirm'],
    [{ effect: 'deny', hosts: [] }, 'commandRules.0.hosts: a command rule names at least one host selector'],
    [{ effect: 'deny', hosts: ['*'], classes: ['dangerous'] }, 'commandRules.0.classes.0: a class is one of read-only, mutating, privileged, unknown'],
    [{ effect: 'deny', hosts: ['*'], programs: ['/sbin/mkfs'] }, 'commandRules.0.programs.0: a program is a basename or a glob'],
    [{ effect: 'deny', hosts: ['*'], programs: ['rm; ls'] }, 'commandRules.0.programs.0: a program is a basename or a glob'],
    [{ effect: 'allow', hosts: ['*'], approvers: ['group:leads'] }, 'commandRules.0.approvers: only an "approve" rule names approvers'],
    [{ effect: 'allow', hosts: ['*'], roles: ['root'] }, 'commandRules.0.roles.0: a role is one of viewer, operator, admin'],
    [{ effect: 'allow', hosts: ['*'], colour: 'red' }, 'commandRules.0'],
  ])('refuses %j with a clear message', (rule, message) => {
    const parsed = policySchema.safeParse({ version: 1, grants: [], commandRules: [rule] });
    expect(parsed.success).toBe(false);
    const described = (parsed.error?.issues ?? []).map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    expect(described).toContain(message);
  });
});
