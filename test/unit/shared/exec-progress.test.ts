import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  EXEC_PROGRESS_DELAY_MS,
  EXEC_PROGRESS_INTERVAL_MS,
  execProgressMessage,
  PROGRESS_LINE_CHARS,
  withExecProgress,
} from '../../../shared/exec-progress.ts';
import type { ProgressContext } from '../../../shared/file-tools.ts';
import { LatestLineTracker, type ExecProgressTap, type LatestLine } from '../../../shared/latest-line.ts';

/** Any character a terminal would act on. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function line(text: string, stream: 'stdout' | 'stderr' = 'stdout'): LatestLine | null {
  const tracker = new LatestLineTracker(25_000);
  tracker.push(stream, `${text}\n`);
  return tracker.latest();
}

describe('execProgressMessage', () => {
  it('carries the elapsed time and the latest line, naming its stream', () => {
    expect(execProgressMessage(12, null)).toBe('running for 12 s');
    expect(execProgressMessage(12, line('step 1'))).toBe('running for 12 s; latest stdout: step 1');
    expect(execProgressMessage(4, line('oops', 'stderr'))).toBe('running for 4 s; latest stderr: oops');
  });

  it('shows terminal escapes, control and bidi characters as visible escapes', () => {
    const message = execProgressMessage(5, line('\u001b[31mred\u001b[0m\u0007 \r\u0000 \u202eevil'));
    expect(message).not.toMatch(CONTROL);
    expect(message).toContain('\\x1b[31mred\\x1b[0m\\x07 \\r\\x00 \\u{202e}evil');
  });

  it('bounds a 10,000-character line and says how long it was', () => {
    const message = execProgressMessage(5, line(`\u001b${'x'.repeat(9_999)}`));
    const shown = message.slice(message.indexOf(': ') + 2);
    expect(shown.startsWith('\\x1bxxx')).toBe(true);
    expect(shown).toContain('… (10,000 characters)');
    expect(shown.length).toBeLessThanOrEqual(PROGRESS_LINE_CHARS + '… (10,000 characters)'.length);
  });

  it('bounds a line whose escapes alone make it long, without splitting a surrogate pair', () => {
    const escapes = execProgressMessage(5, line('\u0007'.repeat(100)));
    expect(escapes.slice(escapes.indexOf(': ') + 2).length).toBeLessThanOrEqual(PROGRESS_LINE_CHARS + 30);
    const emoji = execProgressMessage(5, line('🚀'.repeat(200)));
    expect(emoji).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  it('says when later lines cannot be shown because the stream reached its limit', () => {
    const tracker = new LatestLineTracker(5);
    tracker.push('stdout', 'done\nmore');
    expect(execProgressMessage(9, tracker.latest())).toBe(
      'running for 9 s; latest stdout: done (stdout reached its character limit; later lines are not shown)',
    );
  });
});

interface Sent {
  progress: number;
  message?: string;
}

function context(token: string | undefined, sent: Sent[]): ProgressContext {
  return {
    mcpReq: {
      ...(token !== undefined ? { _meta: { progressToken: token } } : {}),
      notify: async (notification) => {
        sent.push({ progress: notification.params.progress, ...(notification.params.message !== undefined ? { message: notification.params.message } : {}) });
      },
      signal: new AbortController().signal,
    },
  };
}

describe('withExecProgress', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives the executor no tap, and sends nothing, when the client sent no progress token', async () => {
    const sent: Sent[] = [];
    let tapGiven: ExecProgressTap | undefined;
    let finish: (value: string) => void = () => undefined;
    const result = withExecProgress(context(undefined, sent), 30, (tap) => {
      tapGiven = tap;
      return new Promise<string>((resolve) => {
        finish = resolve;
      });
    });
    await vi.advanceTimersByTimeAsync(10_000);
    finish('done');
    expect(await result).toBe('done');
    expect(tapGiven).toBeUndefined();
    expect(sent).toEqual([]);
  });

  it('sends nothing in the first seconds, then the elapsed time and latest line every second', async () => {
    const sent: Sent[] = [];
    const tracker = new LatestLineTracker(25_000);
    let finish: (value: string) => void = () => undefined;
    const result = withExecProgress(context('p1', sent), 30, (tap) => {
      tap?.attach(() => tracker.latest());
      return new Promise<string>((resolve) => {
        finish = resolve;
      });
    });
    tracker.push('stdout', 'step 1\n');
    await vi.advanceTimersByTimeAsync(EXEC_PROGRESS_DELAY_MS - 1);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([{ progress: 3, message: 'running for 3 s; latest stdout: step 1' }]);
    tracker.push('stdout', 'step 2\n');
    await vi.advanceTimersByTimeAsync(EXEC_PROGRESS_INTERVAL_MS);
    expect(sent.at(-1)).toEqual({ progress: 4, message: 'running for 4 s; latest stdout: step 2' });
    finish('done');
    expect(await result).toBe('done');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toHaveLength(2);
  });

  it('does not hold the result for a read of the latest line that never answers', async () => {
    const sent: Sent[] = [];
    let finish: (value: string) => void = () => undefined;
    const result = withExecProgress(context('p2', sent), 30, (tap) => {
      tap?.attach(() => new Promise<LatestLine | null>(() => undefined));
      return new Promise<string>((resolve) => {
        finish = resolve;
      });
    });
    await vi.advanceTimersByTimeAsync(EXEC_PROGRESS_DELAY_MS + 3 * EXEC_PROGRESS_INTERVAL_MS);
    finish('done');
    expect(await result).toBe('done');
    // The hung read was abandoned, and no notification followed the result.
    expect(sent).toEqual([]);
  });

  it('still sends the elapsed time when reading the line fails', async () => {
    const sent: Sent[] = [];
    let finish: (value: string) => void = () => undefined;
    const result = withExecProgress(context('p3', sent), 30, (tap) => {
      tap?.attach(() => Promise.reject(new Error('hub unreachable')));
      return new Promise<string>((resolve) => {
        finish = resolve;
      });
    });
    await vi.advanceTimersByTimeAsync(EXEC_PROGRESS_DELAY_MS);
    finish('done');
    await result;
    expect(sent).toEqual([{ progress: 3, message: 'running for 3 s' }]);
  });
});
