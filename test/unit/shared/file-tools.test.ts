import { describe, expect, it } from 'vitest';
import { decodeUtf8Prefix, lossyTextPrefix, permissionsArgument } from '../../../shared/file-tools.ts';

describe('reading text in parts', () => {
  it('pages through bytes that are not valid UTF-8 without skipping or repeating any', () => {
    const data = Uint8Array.from([0x61, 0xff, 0xe2, 0x82, 0xac, 0x62, 0xc3, 0xa9, 0xfe, 0x63, 0xe2, 0x82]);
    let offset = 0;
    let pages = 0;
    while (offset < data.length && pages < 50) {
      const page = lossyTextPrefix(data.subarray(offset), 2);
      expect(page.text.length).toBeLessThanOrEqual(2);
      expect(page.bytes).toBeGreaterThan(0);
      offset += page.bytes;
      pages += 1;
    }
    expect(offset).toBe(data.length);
  });

  it('takes a character split at the end of a range as not yet read', () => {
    const euro = new TextEncoder().encode('a€');
    expect(decodeUtf8Prefix(euro.subarray(0, 3))).toEqual({ text: 'a', bytes: 1 });
    expect(decodeUtf8Prefix(Uint8Array.from([0xff]))).toBeNull();
  });

  it('reads octal permissions as the seed did', () => {
    expect(permissionsArgument.parse(644)).toBe(0o644);
    expect(permissionsArgument.parse('0600')).toBe(0o600);
    expect(permissionsArgument.safeParse('888').success).toBe(false);
  });
});
