import { describe, expect, it } from 'vitest';
import { formatCount } from '../../../shared/format-count.ts';

describe('formatCount', () => {
  it("writes whole numbers exactly as toLocaleString('en-US') does", () => {
    const samples = [0, 1, 12, 999, 1000, 1001, 65_536, 999_999, 1_000_000, 1_048_576, 4_194_304, 123_456_789, Number.MAX_SAFE_INTEGER, -1, -1000, -1_234_567];
    for (const value of samples) expect(formatCount(value), String(value)).toBe(value.toLocaleString('en-US'));
  });

  it('falls back to the locale for what is not a safe whole number', () => {
    for (const value of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) expect(formatCount(value)).toBe(value.toLocaleString('en-US'));
  });
});
