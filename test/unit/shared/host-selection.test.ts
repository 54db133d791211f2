import { describe, expect, it } from 'vitest';
import { selectHost } from '../../../shared/host-selection.ts';

describe('selectHost', () => {
  it('uses the only host when none is named', () => {
    expect(selectHost(['web1'], undefined)).toEqual({ ok: true, value: 'web1' });
  });
  it('requires a name when several hosts exist', () => {
    const result = selectHost(['web1', 'db1'], undefined);
    expect(result.ok === false && result.error.code).toBe('host_ambiguous');
  });
  it('refuses a name that is not configured and lists the known ones', () => {
    const result = selectHost(['web1'], 'web2');
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('host_not_configured');
      expect(result.error.message).toContain('web1');
    }
  });
  it('matches names exactly, not by prefix or case', () => {
    expect(selectHost(['web1'], 'WEB1').ok).toBe(false);
    expect(selectHost(['web10'], 'web1').ok).toBe(false);
  });
  it('explains how to add a host when none exist', () => {
    const result = selectHost([], undefined);
    expect(result.ok === false && result.error.message).toMatch(/HOST=/);
  });
});
