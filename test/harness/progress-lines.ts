/**
 * One command and one check for "progress carries the latest output line, escaped and bounded"
 * (shared/exec-progress.ts), used by the Worker's tests of both client eras
 * (test/e2e/mcp-eras.test.ts) and the stdio mode's (test/e2e/stdio-eras.test.ts).
 *
 * The command prints `step 1`, waits past the first progress notification (3 s), then prints a
 * line of 10,021 characters that starts `step 2` and carries a colour escape and a BEL, and runs
 * long enough for notifications to show it. Timing matters only for what can be seen, never for
 * a pass: the check asks for each line in some message, not at a given second.
 */
import { expect } from 'vitest';
import { PROGRESS_LINE_CHARS } from '../../shared/exec-progress.ts';

export const PROGRESS_LINES_COMMAND =
  "printf 'step 1\\n'; sleep 4; printf 'step 2 \\033[31mred\\033[0m\\a %s\\n' \"$(printf '%10000s' '' | tr ' ' x)\"; sleep 2.5";

/** How the second line shows in a message: its escapes visible, cut, with its length. */
const STEP_2_SHOWN = 'latest stdout: step 2 \\x1b[31mred\\x1b[0m\\x07 xxx';
const STEP_2_LENGTH = '(10,021 characters)';

/** Any character a terminal would act on. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

export interface SeenProgress {
  progress: number;
  total?: number;
  message?: string;
}

/** What the client saw during PROGRESS_LINES_COMMAND (timeout 30 s) shows both lines, in order, escaped and bounded. */
export function expectProgressLines(seen: SeenProgress[]): void {
  const messages = seen.map((event) => event.message ?? '');
  expect(
    seen.every((event) => event.total === 30),
    JSON.stringify(seen),
  ).toBe(true);
  const progress = seen.map((event) => event.progress);
  expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  // Nothing before the third second.
  expect(Math.min(...progress)).toBeGreaterThanOrEqual(3);
  const first = messages.findIndex((message) => /^running for \d+ s; latest stdout: step 1$/.test(message));
  const second = messages.findIndex((message) => message.includes(STEP_2_SHOWN));
  expect(first, JSON.stringify(messages)).toBeGreaterThanOrEqual(0);
  expect(second, JSON.stringify(messages)).toBeGreaterThan(first);
  expect(messages[second]).toContain(STEP_2_LENGTH);
  for (const message of messages) {
    expect(message).not.toMatch(CONTROL);
    // The prefix ("running for 30 s; latest stdout: "), the line, and the length note.
    expect(message.length).toBeLessThanOrEqual(40 + PROGRESS_LINE_CHARS + STEP_2_LENGTH.length + 2);
  }
}
