import { describe, expect, it } from 'vitest';
import { READ_ONLY_CAPABILITY } from '../../../../shared/capabilities.ts';
import {
  EMPTY_POLICY,
  isDeploymentAdmin,
  policySchema,
  roleAtLeast,
  roleOn,
  type Grant,
  type Policy,
  type PolicyHost,
  type Subject,
} from '../../../../worker/team/policy.ts';

function policy(...grants: Array<Partial<Grant> & Pick<Grant, 'role' | 'subjects' | 'hosts'>>): Policy {
  return { version: 1, grants: grants.map((grant) => ({ effect: 'allow', ...grant })) };
}

const alice: Subject = { username: 'alice', groups: ['ops'] };
const bob: Subject = { username: 'bob', groups: [] };
const bootstrap: Subject = { username: 'admin', groups: [], bootstrapAdmin: true };

const web1: PolicyHost = { name: 'web1', labels: { env: 'prod', team: 'web' } };
const db1: PolicyHost = { name: 'db1', labels: { env: 'staging' } };
const bare: PolicyHost = { name: 'bare', labels: {} };

describe('roleOn: deny by default', () => {
  it('gives no role when the policy has no grants', () => {
    expect(roleOn(EMPTY_POLICY, alice, web1)).toBeNull();
    expect(roleOn(EMPTY_POLICY, bob, bare)).toBeNull();
  });

  it('gives no role when the only grant names someone else', () => {
    const p = policy({ subjects: ['user:bob'], role: 'admin', hosts: ['*'] });
    expect(roleOn(p, alice, web1)).toBeNull();
  });

  it('gives no role when the only grant names other hosts', () => {
    const p = policy({ subjects: ['user:alice'], role: 'operator', hosts: ['db1'] });
    expect(roleOn(p, alice, web1)).toBeNull();
  });
});

describe('roleOn: subjects', () => {
  it('matches a grant by user name', () => {
    const p = policy({ subjects: ['user:alice'], role: 'operator', hosts: ['*'] });
    expect(roleOn(p, alice, web1)).toBe('operator');
    expect(roleOn(p, bob, web1)).toBeNull();
  });

  it('does not take a user name as a group name or the other way round', () => {
    expect(roleOn(policy({ subjects: ['group:alice'], role: 'viewer', hosts: ['*'] }), alice, web1)).toBeNull();
    expect(roleOn(policy({ subjects: ['user:ops'], role: 'viewer', hosts: ['*'] }), alice, web1)).toBeNull();
  });

  it('matches a grant by group', () => {
    const p = policy({ subjects: ['group:ops'], role: 'operator', hosts: ['*'] });
    expect(roleOn(p, alice, web1)).toBe('operator');
    expect(roleOn(p, bob, web1)).toBeNull();
  });

  it('matches everyone signed in with "*"', () => {
    const p = policy({ subjects: ['*'], role: 'viewer', hosts: ['*'] });
    expect(roleOn(p, alice, web1)).toBe('viewer');
    expect(roleOn(p, bob, db1)).toBe('viewer');
  });
});

describe('roleOn: host selectors', () => {
  it('"*" matches every host', () => {
    const p = policy({ subjects: ['user:alice'], role: 'viewer', hosts: ['*'] });
    for (const host of [web1, db1, bare]) expect(roleOn(p, alice, host)).toBe('viewer');
  });

  it('a host name matches that host only', () => {
    const p = policy({ subjects: ['user:alice'], role: 'operator', hosts: ['web1'] });
    expect(roleOn(p, alice, web1)).toBe('operator');
    expect(roleOn(p, alice, db1)).toBeNull();
    expect(roleOn(p, alice, { name: 'web10', labels: {} })).toBeNull();
    expect(roleOn(p, alice, { name: 'WEB1', labels: {} })).toBeNull();
  });

  it('a label "key=value" matches hosts with exactly that value', () => {
    const p = policy({ subjects: ['user:alice'], role: 'operator', hosts: ['env=prod'] });
    expect(roleOn(p, alice, web1)).toBe('operator');
  });

  it('a label selector does not match a different value, a longer value, or a missing label', () => {
    const p = policy({ subjects: ['user:alice'], role: 'operator', hosts: ['env=prod'] });
    expect(roleOn(p, alice, db1)).toBeNull();
    expect(roleOn(p, alice, { name: 'x', labels: { env: 'production' } })).toBeNull();
    expect(roleOn(p, alice, { name: 'x', labels: { env: 'Prod' } })).toBeNull();
    expect(roleOn(p, alice, bare)).toBeNull();
    expect(roleOn(p, alice, { name: 'env=prod', labels: {} })).toBeNull();
  });

  it('a label selector with an empty value does not match a host without that label', () => {
    const p = policy({ subjects: ['user:alice'], role: 'viewer', hosts: ['env='] });
    expect(roleOn(p, alice, bare)).toBeNull();
    expect(roleOn(p, alice, { name: 'x', labels: { env: '' } })).toBe('viewer');
  });

  it('a grant applies when any of its selectors matches', () => {
    const p = policy({ subjects: ['user:alice'], role: 'viewer', hosts: ['db1', 'team=web'] });
    expect(roleOn(p, alice, web1)).toBe('viewer');
    expect(roleOn(p, alice, db1)).toBe('viewer');
    expect(roleOn(p, alice, bare)).toBeNull();
  });
});

describe('roleOn: several grants', () => {
  it('the highest allowed role wins', () => {
    const p = policy(
      { subjects: ['*'], role: 'viewer', hosts: ['*'] },
      { subjects: ['group:ops'], role: 'admin', hosts: ['env=prod'] },
      { subjects: ['user:alice'], role: 'operator', hosts: ['*'] },
    );
    expect(roleOn(p, alice, web1)).toBe('admin');
    expect(roleOn(p, alice, db1)).toBe('operator');
    expect(roleOn(p, bob, web1)).toBe('viewer');
  });

  it('the order of grants does not matter', () => {
    const grants = [
      { subjects: ['user:alice'], role: 'admin' as const, hosts: ['*'] },
      { subjects: ['user:alice'], role: 'viewer' as const, hosts: ['*'] },
    ];
    expect(roleOn(policy(...grants), alice, web1)).toBe('admin');
    expect(roleOn(policy(...[...grants].reverse()), alice, web1)).toBe('admin');
  });

  it('"deny operator" on a label leaves viewer there and nowhere else changes', () => {
    const p = policy(
      { subjects: ['user:alice'], role: 'admin', hosts: ['*'] },
      { effect: 'deny', subjects: ['user:alice'], role: 'operator', hosts: ['env=prod'] },
    );
    expect(roleOn(p, alice, web1)).toBe('viewer');
    expect(roleOn(p, alice, db1)).toBe('admin');
  });

  it('"deny admin" leaves operator', () => {
    const p = policy({ subjects: ['user:alice'], role: 'admin', hosts: ['*'] }, { effect: 'deny', subjects: ['group:ops'], role: 'admin', hosts: ['web1'] });
    expect(roleOn(p, alice, web1)).toBe('operator');
  });

  it('"deny viewer" removes all access even when an admin allow matches', () => {
    const p = policy({ subjects: ['user:alice'], role: 'admin', hosts: ['*'] }, { effect: 'deny', subjects: ['*'], role: 'viewer', hosts: ['env=prod'] });
    expect(roleOn(p, alice, web1)).toBeNull();
    expect(roleOn(p, alice, db1)).toBe('admin');
  });

  it('deny beats allow whichever comes first', () => {
    const allow = { subjects: ['user:alice'], role: 'operator' as const, hosts: ['web1'] };
    const deny = { effect: 'deny' as const, subjects: ['user:alice'], role: 'operator' as const, hosts: ['web1'] };
    expect(roleOn(policy(allow, deny), alice, web1)).toBe('viewer');
    expect(roleOn(policy(deny, allow), alice, web1)).toBe('viewer');
  });

  it('a deny alone gives nothing', () => {
    const p = policy({ effect: 'deny', subjects: ['user:alice'], role: 'admin', hosts: ['*'] });
    expect(roleOn(p, alice, web1)).toBeNull();
  });

  it('a deny for someone else does not touch this user', () => {
    const p = policy({ subjects: ['*'], role: 'operator', hosts: ['*'] }, { effect: 'deny', subjects: ['user:bob'], role: 'viewer', hosts: ['*'] });
    expect(roleOn(p, alice, web1)).toBe('operator');
    expect(roleOn(p, bob, web1)).toBeNull();
  });
});

describe('roleOn: read-only hosts', () => {
  const readOnly: PolicyHost = { name: 'web1', labels: { env: 'prod' }, capabilities: [READ_ONLY_CAPABILITY] };

  it('the capability is called "read-only"', () => {
    expect(READ_ONLY_CAPABILITY).toBe('read-only');
  });

  it('caps an admin at viewer', () => {
    const p = policy({ subjects: ['user:alice'], role: 'admin', hosts: ['*'] });
    expect(roleOn(p, alice, readOnly)).toBe('viewer');
  });

  it('caps an operator at viewer and leaves a viewer a viewer', () => {
    expect(roleOn(policy({ subjects: ['user:alice'], role: 'operator', hosts: ['*'] }), alice, readOnly)).toBe('viewer');
    expect(roleOn(policy({ subjects: ['user:alice'], role: 'viewer', hosts: ['*'] }), alice, readOnly)).toBe('viewer');
  });

  it('does not give access to someone without a grant', () => {
    expect(roleOn(EMPTY_POLICY, alice, readOnly)).toBeNull();
  });

  it('other capabilities do not cap the role', () => {
    const p = policy({ subjects: ['user:alice'], role: 'admin', hosts: ['*'] });
    expect(roleOn(p, alice, { ...readOnly, capabilities: ['something-else'] })).toBe('admin');
  });

  it('caps the bootstrap admin too ("never more than viewer there")', () => {
    expect(roleOn(EMPTY_POLICY, bootstrap, readOnly)).toBe('viewer');
  });
});

describe('roleOn: bootstrap admin', () => {
  it('is admin everywhere with an empty policy', () => {
    expect(roleOn(EMPTY_POLICY, bootstrap, web1)).toBe('admin');
    expect(roleOn(EMPTY_POLICY, bootstrap, bare)).toBe('admin');
  });

  it('is not affected by deny grants, even ones naming it', () => {
    const p = policy(
      { effect: 'deny', subjects: ['*'], role: 'viewer', hosts: ['*'] },
      { effect: 'deny', subjects: ['user:admin'], role: 'viewer', hosts: ['web1', 'env=prod'] },
    );
    expect(roleOn(p, bootstrap, web1)).toBe('admin');
    expect(roleOn(p, { username: 'admin', groups: [] }, web1)).toBeNull();
  });
});

describe('isDeploymentAdmin', () => {
  it('is false with an empty policy', () => {
    expect(isDeploymentAdmin(EMPTY_POLICY, alice)).toBe(false);
  });

  it('is true for the bootstrap admin whatever the policy says', () => {
    expect(isDeploymentAdmin(EMPTY_POLICY, bootstrap)).toBe(true);
    const p = policy({ effect: 'deny', subjects: ['*'], role: 'viewer', hosts: ['*'] });
    expect(isDeploymentAdmin(p, bootstrap)).toBe(true);
  });

  it('is true with an allow admin grant on "*" (by user, group or everyone)', () => {
    expect(isDeploymentAdmin(policy({ subjects: ['user:alice'], role: 'admin', hosts: ['*'] }), alice)).toBe(true);
    expect(isDeploymentAdmin(policy({ subjects: ['group:ops'], role: 'admin', hosts: ['web1', '*'] }), alice)).toBe(true);
    expect(isDeploymentAdmin(policy({ subjects: ['*'], role: 'admin', hosts: ['*'] }), bob)).toBe(true);
  });

  it('is false when the admin grant names someone else', () => {
    expect(isDeploymentAdmin(policy({ subjects: ['user:alice'], role: 'admin', hosts: ['*'] }), bob)).toBe(false);
  });

  it('is false with admin on a label or a host name only', () => {
    expect(isDeploymentAdmin(policy({ subjects: ['user:alice'], role: 'admin', hosts: ['env=prod'] }), alice)).toBe(false);
    expect(isDeploymentAdmin(policy({ subjects: ['user:alice'], role: 'admin', hosts: ['web1', 'db1'] }), alice)).toBe(false);
  });

  it('is false with a lower role on "*"', () => {
    expect(isDeploymentAdmin(policy({ subjects: ['user:alice'], role: 'operator', hosts: ['*'] }), alice)).toBe(false);
  });

  it('is false with a deny admin grant on "*" that matches', () => {
    const p = policy({ subjects: ['user:alice'], role: 'admin', hosts: ['*'] }, { effect: 'deny', subjects: ['group:ops'], role: 'admin', hosts: ['*'] });
    expect(isDeploymentAdmin(p, alice)).toBe(false);
  });

  it('is false with a lower deny on "*" that matches, since it also forbids admin', () => {
    const p = policy({ subjects: ['user:alice'], role: 'admin', hosts: ['*'] }, { effect: 'deny', subjects: ['user:alice'], role: 'operator', hosts: ['*'] });
    expect(isDeploymentAdmin(p, alice)).toBe(false);
  });

  it('stays true when a deny on "*" names someone else, or a deny names only some hosts', () => {
    const p = policy(
      { subjects: ['user:alice'], role: 'admin', hosts: ['*'] },
      { effect: 'deny', subjects: ['user:bob'], role: 'viewer', hosts: ['*'] },
      { effect: 'deny', subjects: ['user:alice'], role: 'viewer', hosts: ['env=prod'] },
    );
    expect(isDeploymentAdmin(p, alice)).toBe(true);
  });
});

describe('roleAtLeast', () => {
  it('orders viewer < operator < admin', () => {
    expect(roleAtLeast('viewer', 'viewer')).toBe(true);
    expect(roleAtLeast('viewer', 'operator')).toBe(false);
    expect(roleAtLeast('viewer', 'admin')).toBe(false);
    expect(roleAtLeast('operator', 'viewer')).toBe(true);
    expect(roleAtLeast('operator', 'operator')).toBe(true);
    expect(roleAtLeast('operator', 'admin')).toBe(false);
    expect(roleAtLeast('admin', 'viewer')).toBe(true);
    expect(roleAtLeast('admin', 'operator')).toBe(true);
    expect(roleAtLeast('admin', 'admin')).toBe(true);
  });

  it('no role is never enough', () => {
    expect(roleAtLeast(null, 'viewer')).toBe(false);
    expect(roleAtLeast(null, 'admin')).toBe(false);
  });
});

describe('policySchema', () => {
  const validGrant = { subjects: ['user:alice', 'group:ops', '*'], role: 'operator', hosts: ['*', 'web1', 'env=prod'] };

  function refuses(document: unknown, pathPart: string): void {
    const result = policySchema.safeParse(document);
    expect(result.success).toBe(false);
    if (!result.success) expect(result.error.issues.map((issue) => issue.path.join('.'))).toContain(pathPart);
  }

  it('accepts a valid document and defaults effect to "allow"', () => {
    const result = policySchema.safeParse({
      version: 1,
      grants: [validGrant, { effect: 'deny', subjects: ['user:bob'], role: 'viewer', hosts: ['db1'], note: 'no db for bob' }],
    });
    expect(result.success).toBe(true);
    if (!result.success) return;
    expect(result.data.grants[0]).toEqual({ effect: 'allow', ...validGrant });
    expect(result.data.grants[1]?.effect).toBe('deny');
    expect(result.data.grants[1]?.note).toBe('no db for bob');
  });

  it('accepts the empty policy', () => {
    expect(policySchema.safeParse(EMPTY_POLICY).success).toBe(true);
  });

  it('refuses a subject without a "user:" or "group:" prefix', () => {
    refuses({ version: 1, grants: [{ ...validGrant, subjects: ['alice'] }] }, 'grants.0.subjects.0');
    refuses({ version: 1, grants: [{ ...validGrant, subjects: ['role:alice'] }] }, 'grants.0.subjects.0');
    refuses({ version: 1, grants: [{ ...validGrant, subjects: ['user:'] }] }, 'grants.0.subjects.0');
    refuses({ version: 1, grants: [{ ...validGrant, subjects: ['user:al ice'] }] }, 'grants.0.subjects.0');
  });

  it('refuses a grant without subjects', () => {
    refuses({ version: 1, grants: [{ ...validGrant, subjects: [] }] }, 'grants.0.subjects');
  });

  it('refuses an unknown role', () => {
    refuses({ version: 1, grants: [{ ...validGrant, role: 'root' }] }, 'grants.0.role');
    refuses({ version: 1, grants: [{ ...validGrant, role: 'Admin' }] }, 'grants.0.role');
  });

  it('refuses an unknown effect', () => {
    refuses({ version: 1, grants: [{ ...validGrant, effect: 'block' }] }, 'grants.0.effect');
  });

  it('refuses an empty host list and an empty or spaced host selector', () => {
    refuses({ version: 1, grants: [{ ...validGrant, hosts: [] }] }, 'grants.0.hosts');
    refuses({ version: 1, grants: [{ ...validGrant, hosts: [''] }] }, 'grants.0.hosts.0');
    refuses({ version: 1, grants: [{ ...validGrant, hosts: ['env=pro d'] }] }, 'grants.0.hosts.0');
  });

  it('refuses unknown fields in a grant and in the document', () => {
    refuses({ version: 1, grants: [{ ...validGrant, roles: ['admin'] }] }, 'grants.0');
    const result = policySchema.safeParse({ version: 1, grants: [], extra: true });
    expect(result.success).toBe(false);
  });

  it('refuses another version or a missing grants list', () => {
    refuses({ version: 2, grants: [] }, 'version');
    refuses({ version: 1 }, 'grants');
  });
});

describe('names in grants', () => {
  it('match user and group names without regard to case, as accounts are looked up', () => {
    const policy = policySchema.parse({
      version: 1,
      grants: [
        { subjects: ['user:alice'], role: 'operator', hosts: ['*'] },
        { subjects: ['group:Ops'], role: 'viewer', hosts: ['*'] },
      ],
    });
    const host = { name: 'web', labels: {} };
    expect(roleOn(policy, { username: 'Alice', groups: [] }, host)).toBe('operator');
    expect(roleOn(policy, { username: 'bob', groups: ['ops'] }, host)).toBe('viewer');
    expect(roleOn(policy, { username: 'alicia', groups: [] }, host)).toBeNull();
  });
});

describe('roleOn: selectors that name a relay', () => {
  const onA = { name: 'web', labels: { env: 'prod' }, relay: 'site-a' };
  const onB = { name: 'web', labels: { env: 'prod', relay: 'site-a' }, relay: 'site-b' };

  it('"relay=NAME" matches the relay the Worker admitted, whatever labels a relay reports', () => {
    const p = policy({ subjects: ['user:alice'], role: 'operator', hosts: ['relay=site-a'] });
    expect(roleOn(p, alice, onA)).toBe('operator');
    expect(roleOn(p, alice, onB)).toBeNull();
    expect(roleOn(p, alice, { ...onA, relay: 'SITE-A' })).toBe('operator');
  });

  it('"relay/host" matches that host on that relay only, while a bare name matches on any relay', () => {
    const qualified = policy({ subjects: ['user:alice'], role: 'viewer', hosts: ['site-a/web'] });
    expect(roleOn(qualified, alice, onA)).toBe('viewer');
    expect(roleOn(qualified, alice, onB)).toBeNull();
    const bare = policy({ subjects: ['user:alice'], role: 'viewer', hosts: ['web'] });
    expect(roleOn(bare, alice, onA)).toBe('viewer');
    expect(roleOn(bare, alice, onB)).toBe('viewer');
  });

  it('a deny scoped to a relay beats an allow everywhere', () => {
    const p = policy(
      { subjects: ['user:alice'], role: 'operator', hosts: ['*'] },
      { effect: 'deny', subjects: ['user:alice'], role: 'operator', hosts: ['relay=site-b'] },
    );
    expect(roleOn(p, alice, onA)).toBe('operator');
    expect(roleOn(p, alice, onB)).toBe('viewer');
  });
});
