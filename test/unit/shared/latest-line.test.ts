import { describe, expect, it } from 'vitest';
import { KEPT_LINE_CHARS, LatestLineTracker } from '../../../shared/latest-line.ts';

describe('LatestLineTracker', () => {
  it('reports the last complete line, never one still being written', () => {
    const tracker = new LatestLineTracker(25_000);
    expect(tracker.latest()).toBeNull();
    tracker.push('stdout', 'step 1\nstep');
    expect(tracker.latest()).toMatchObject({ stream: 'stdout', text: 'step 1' });
    tracker.push('stdout', ' 2');
    expect(tracker.latest()).toMatchObject({ text: 'step 1' });
    tracker.push('stdout', ' done\nnext');
    expect(tracker.latest()).toMatchObject({ stream: 'stdout', text: 'step 2 done', length: 11 });
  });

  it('takes the newest line of either stream, and skips blank lines', () => {
    const tracker = new LatestLineTracker(25_000);
    tracker.push('stdout', 'compiling\n\n   \n');
    expect(tracker.latest()).toMatchObject({ stream: 'stdout', text: 'compiling' });
    tracker.push('stderr', 'warning: x\n');
    expect(tracker.latest()).toMatchObject({ stream: 'stderr', text: 'warning: x' });
    tracker.push('stdout', 'a\nb\nc\n');
    expect(tracker.latest()).toMatchObject({ stream: 'stdout', text: 'c' });
  });

  it('keeps at most KEPT_LINE_CHARS of a line however long, with its full length', () => {
    const tracker = new LatestLineTracker(10_000_000);
    for (let i = 0; i < 1000; i += 1) tracker.push('stdout', 'x'.repeat(1000));
    tracker.push('stdout', '\n');
    const latest = tracker.latest();
    expect(latest?.text).toBe('x'.repeat(KEPT_LINE_CHARS));
    expect(latest?.length).toBe(1_000_000);
    // One chunk holding a long line between two newlines is bounded the same way.
    tracker.push('stdout', `short\n${'y'.repeat(50_000)}\n`);
    expect(tracker.latest()).toMatchObject({ text: 'y'.repeat(KEPT_LINE_CHARS), length: 50_000 });
  });

  it('says when the stream reached the character limit, after which nothing more of it arrives', () => {
    const tracker = new LatestLineTracker(10);
    tracker.push('stdout', 'line 1\n');
    expect(tracker.latest()?.limitReached).toBe(false);
    tracker.push('stdout', 'lin');
    expect(tracker.latest()).toMatchObject({ text: 'line 1', limitReached: true });
  });
});
