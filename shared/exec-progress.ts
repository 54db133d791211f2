/**
 * Progress for a command that runs a while: when the client sent a progress token, a
 * notifications/progress every second from the third second on (seconds elapsed of the command's
 * timeout, and the latest output line) until the command ends, on the call's own response stream.
 * A command that ends sooner sends none.
 *
 * The latest line is remote output, so untrusted: a progress message carries one line of it,
 * bounded (PROGRESS_LINE_CHARS) and with every control character shown as an escape
 * (shared/visible-text.ts), so what a client shows mid-call cannot be recoloured or rewritten by
 * the host. The whole output, with its limits, is in the result.
 *
 * Where the line comes from is the executor's business: the tool hands it a tap (ExecProgressTap)
 * only when there is a token, the executor attaches a source, and this reads it once per
 * notification (in the Worker, one call to the relay hub; in stdio mode, memory).
 */
import type { ProgressContext } from './file-tools.ts';
import type { ExecProgressTap, LatestLine, LatestLineSource } from './latest-line.ts';
import { visibleText } from './visible-text.ts';
import { formatCount } from './format-count.ts';

/** The first notification comes this long after the command started: a quick command sends none. */
export const EXEC_PROGRESS_DELAY_MS = 3000;
export const EXEC_PROGRESS_INTERVAL_MS = 1000;
/** The most characters of the output line one progress message shows (after escaping). */
export const PROGRESS_LINE_CHARS = 160;

/** The line as a progress message shows it: escaped, and cut visibly to PROGRESS_LINE_CHARS. */
function shownLine(line: LatestLine): string {
  const visible = visibleText(line.text);
  if (visible.length <= PROGRESS_LINE_CHARS && line.length === line.text.length) return visible;
  let cut = PROGRESS_LINE_CHARS - 1;
  const last = visible.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut -= 1;
  return `${visible.slice(0, cut)}… (${formatCount(line.length)} characters)`;
}

/** The one wording of an exec progress message, in the Worker and in stdio mode alike. */
export function execProgressMessage(elapsedSeconds: number, latest: LatestLine | null): string {
  const running = `running for ${elapsedSeconds} s`;
  if (!latest) return running;
  const limit = latest.limitReached ? ` (${latest.stream} reached its character limit; later lines are not shown)` : '';
  return `${running}; latest ${latest.stream}: ${shownLine(latest)}${limit}`;
}

/**
 * Run `start` (which sends the command) and, when the client sent a progress token, report
 * progress until it settles. `start` gets a tap for the executor only when there is a token, so a
 * call without one costs nothing more. The result never overtakes a notification being sent
 * (a client drops progress that arrives after the result); a read of the latest line still
 * pending when the command ends is abandoned, not awaited.
 */
export async function withExecProgress<T>(ctx: ProgressContext, timeoutSeconds: number, start: (tap: ExecProgressTap | undefined) => Promise<T>): Promise<T> {
  const token = ctx.mcpReq._meta?.progressToken;
  if (token === undefined) return start(undefined);
  let source: LatestLineSource | null = null;
  // What the call waits for before it runs (an approval): said instead of "running".
  let waitingFor: string | null = null;
  const work = start({ attach: (attached) => void (source = attached), note: (message) => void (waitingFor = message) });
  const started = Date.now();
  let settled = false;
  let markSettled: () => void = () => undefined;
  const ended = new Promise<null>((resolve) => {
    markSettled = () => resolve(null);
  });
  // One notification at a time: a slow read skips ticks rather than queueing them.
  let inFlight: Promise<void> | null = null;
  const report = async (): Promise<void> => {
    const elapsed = Math.min(timeoutSeconds, Math.floor((Date.now() - started) / 1000));
    const read = source;
    let latest: LatestLine | null = null;
    if (read) {
      try {
        latest = await Promise.race([Promise.resolve(read()), ended]);
      } catch {
        // The line could not be read (the hub was unreachable): the elapsed time still goes out.
      }
    }
    if (settled) return;
    const message = waitingFor !== null ? `${visibleText(waitingFor)} (${elapsed} s)` : execProgressMessage(elapsed, latest);
    await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: elapsed, total: timeoutSeconds, message } });
  };
  const tick = (): void => {
    if (inFlight) return;
    inFlight = report()
      .catch(() => undefined)
      .finally(() => {
        inFlight = null;
      });
  };
  let interval: ReturnType<typeof setInterval> | undefined;
  const delay = setTimeout(() => {
    tick();
    interval = setInterval(tick, EXEC_PROGRESS_INTERVAL_MS);
  }, EXEC_PROGRESS_DELAY_MS);
  try {
    return await work;
  } finally {
    clearTimeout(delay);
    if (interval !== undefined) clearInterval(interval);
    settled = true;
    markSettled();
    await inFlight;
  }
}
