import { describe, expect, it } from 'vitest';
import { MAX_CHUNK_BYTES } from '../../../shared/binary-frames.ts';
import { ByteSender, sendStream } from '../../../shared/byte-streams.ts';
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

describe('sending an HTTP body', () => {
  it('does not send the chunk that completes the size before the body is seen to end', async () => {
    const sent: number[] = [];
    const sender = new ByteSender('x', (frame) => {
      sent.push(frame.length);
      return true;
    });
    sender.grant(10 * MAX_CHUNK_BYTES);
    // Announced: exactly two chunks; the body has one byte more.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(2 * MAX_CHUNK_BYTES));
        controller.enqueue(new Uint8Array(1));
        controller.close();
      },
    });
    expect(await sendStream(sender, body, 2 * MAX_CHUNK_BYTES, new AbortController().signal)).toBe('long');
    expect(sent).toHaveLength(1);
  });

  it('reports a body that ends short of its announced size', async () => {
    const sender = new ByteSender('x', () => true);
    sender.grant(1_000_000);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(10));
        controller.close();
      },
    });
    expect(await sendStream(sender, body, 20, new AbortController().signal)).toBe('short');
  });
});
