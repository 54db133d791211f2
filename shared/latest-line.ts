/**
 * The latest complete output line of a command that is still running, for its progress
 * notifications (shared/exec-progress.ts). Kept where the output arrives: the relay hub, for the
 * Worker (worker/relay/relay-requests.ts), and the stdio executor's output sink
 * (relay/local-executor.ts). Only while a client asked for progress: a call without a progress
 * token keeps nothing here.
 *
 * Memory stays bounded whatever the command prints: of a line, only its first KEPT_LINE_CHARS
 * characters are kept, with its full length. The text is remote output, untrusted and raw here;
 * execProgressMessage escapes and bounds it before it leaves.
 */

/** The most of one line kept; the progress message shows fewer (PROGRESS_LINE_CHARS). */
export const KEPT_LINE_CHARS = 512;

export type OutputStream = 'stdout' | 'stderr';

export interface LatestLine {
  stream: OutputStream;
  /** The line's first characters (at most KEPT_LINE_CHARS), without its newline; raw remote output. */
  text: string;
  /** The whole line's length in characters. */
  length: number;
  /**
   * The stream has reached the call's character limit: the relay sends no more of it (the result
   * shows that much too), so later lines of this stream cannot be shown.
   */
  limitReached: boolean;
}

/** How an executor lets the progress reporter read the latest line: called at most once a second. */
export type LatestLineSource = () => Promise<LatestLine | null> | LatestLine | null;

/**
 * Given to an executor in its ExecRequest only when the client asked for progress: the executor
 * tells it where the running command's latest line can be read (attach), once the command is sent.
 */
export interface ExecProgressTap {
  attach(source: LatestLineSource): void;
  /** Say what the call waits for before it runs (e.g. a person's approval); null when it runs. */
  note(message: string | null): void;
}

/** A line being written: its start and its length so far. */
interface PartialLine {
  text: string;
  length: number;
}

function keep(partial: PartialLine, more: string): PartialLine {
  const room = KEPT_LINE_CHARS - partial.text.length;
  return { text: room > 0 ? partial.text + more.slice(0, room) : partial.text, length: partial.length + more.length };
}

/** Output chunks in, the latest complete non-blank line out. */
export class LatestLineTracker {
  private readonly maxChars: number;
  private readonly partial: Record<OutputStream, PartialLine> = { stdout: { text: '', length: 0 }, stderr: { text: '', length: 0 } };
  private readonly received: Record<OutputStream, number> = { stdout: 0, stderr: 0 };
  private last: { stream: OutputStream; line: PartialLine } | null = null;

  /** `maxChars`: the call's character limit per stream, past which the relay sends nothing more. */
  constructor(maxChars: number) {
    this.maxChars = maxChars;
  }

  push(stream: OutputStream, chunk: string): void {
    this.received[stream] += chunk.length;
    const end = chunk.lastIndexOf('\n');
    if (end < 0) {
      this.partial[stream] = keep(this.partial[stream], chunk);
      return;
    }
    // Only the chunk's last non-blank complete line matters: walk back from its last newline.
    let lineEnd = end;
    for (;;) {
      // (lastIndexOf clamps a negative start to 0, which would find this very newline again.)
      const start = lineEnd > 0 ? chunk.lastIndexOf('\n', lineEnd - 1) : -1;
      const line = start < 0 ? keep(this.partial[stream], chunk.slice(0, lineEnd)) : keep({ text: '', length: 0 }, chunk.slice(start + 1, lineEnd));
      if (line.text.trim() !== '' || line.length > line.text.length) {
        this.last = { stream, line };
        break;
      }
      if (start < 0) break;
      lineEnd = start;
    }
    this.partial[stream] = keep({ text: '', length: 0 }, chunk.slice(end + 1));
  }

  latest(): LatestLine | null {
    if (!this.last) return null;
    const { stream, line } = this.last;
    return { stream, text: line.text, length: line.length, limitReached: this.received[stream] >= this.maxChars };
  }
}
