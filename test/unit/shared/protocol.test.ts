import { describe, expect, it } from 'vitest';
import { MAX_FRAME_CHARS, PING_FRAME, PONG_FRAME, parseHubFrame, parseRelayFrame } from '../../../shared/protocol.ts';

const hello = {
  type: 'hello',
  protocol: 1,
  relayId: 'lan-1',
  version: '0.1.0',
  hosts: [{ name: 'web1', target: 'u@h:22', labels: { env: 'prod' }, capabilities: ['exec'] }],
};

describe('relay frames', () => {
  it('accepts a well-formed hello', () => {
    const parsed = parseRelayFrame(JSON.stringify(hello));
    expect(parsed.ok && parsed.frame.type === 'hello' && parsed.frame.hosts[0]?.name).toBe('web1');
  });

  it('rejects text that is not JSON', () => {
    expect(parseRelayFrame('{nope')).toEqual({ ok: false, reason: 'frame is not valid JSON' });
  });

  it('rejects an unknown frame type and says why', () => {
    const parsed = parseRelayFrame(JSON.stringify({ type: 'shell', id: '1' }));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(/type/);
  });

  it('rejects a result whose error code is not in the enum', () => {
    expect(parseRelayFrame(JSON.stringify({ type: 'error', id: 'a', code: 'oops', message: 'x' })).ok).toBe(false);
  });

  it('rejects a relay id that could smuggle separators', () => {
    expect(parseRelayFrame(JSON.stringify({ ...hello, relayId: 'a/b' })).ok).toBe(false);
  });

  it('rejects oversized frames before parsing them', () => {
    const parsed = parseRelayFrame(' '.repeat(MAX_FRAME_CHARS + 1));
    expect(parsed.ok).toBe(false);
  });

  it('rejects an output chunk larger than the chunk limit', () => {
    expect(parseRelayFrame(JSON.stringify({ type: 'output', id: 'a', stream: 'stdout', data: 'x'.repeat(70_000) })).ok).toBe(false);
  });

  it('uses a ping frame that the schema accepts, so auto-responses and parsing agree', () => {
    expect(parseRelayFrame(PING_FRAME).ok).toBe(true);
    expect(parseHubFrame(PONG_FRAME).ok).toBe(true);
  });
});

describe('hub frames', () => {
  it('accepts an exec request with a deadline', () => {
    const frame = {
      type: 'request',
      id: 'r1',
      deadlineMs: 30_000,
      operation: { op: 'exec', host: 'web1', command: 'uptime', timeoutMs: 30_000, maxChars: 25_000 },
    };
    expect(parseHubFrame(JSON.stringify(frame)).ok).toBe(true);
  });

  it('rejects an exec request over the command length limit', () => {
    const frame = {
      type: 'request',
      id: 'r1',
      deadlineMs: 1000,
      operation: { op: 'exec', host: 'web1', command: 'x'.repeat(10_001), timeoutMs: 1000, maxChars: 10 },
    };
    expect(parseHubFrame(JSON.stringify(frame)).ok).toBe(false);
  });

  it('rejects a timeout beyond 300 seconds', () => {
    const frame = { type: 'request', id: 'r1', deadlineMs: 1000, operation: { op: 'exec', host: 'web1', command: 'true', timeoutMs: 301_000, maxChars: 10 } };
    expect(parseHubFrame(JSON.stringify(frame)).ok).toBe(false);
  });
});
