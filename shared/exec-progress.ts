/**
 * Progress for a command that runs a while: when the client sent a progress token, a
 * notifications/progress every second (seconds elapsed of the command's timeout) until the
 * command ends, on the call's own response stream. Remote output is not sent this way: it is
 * untrusted and belongs in the result, which applies the output limits.
 */
import type { ProgressContext } from './file-tools.ts';

export const EXEC_PROGRESS_INTERVAL_MS = 1000;

export async function withExecProgress<T>(ctx: ProgressContext, timeoutSeconds: number, work: Promise<T>): Promise<T> {
  const token = ctx.mcpReq._meta?.progressToken;
  if (token === undefined) return work;
  const started = Date.now();
  let sending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    const elapsed = Math.min(timeoutSeconds, Math.floor((Date.now() - started) / 1000));
    const notification = {
      method: 'notifications/progress' as const,
      params: { progressToken: token, progress: elapsed, total: timeoutSeconds, message: `running for ${elapsed} s` },
    };
    sending = sending.then(() => ctx.mcpReq.notify(notification)).catch(() => undefined);
  }, EXEC_PROGRESS_INTERVAL_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
    // The result must not overtake the last notification: a client drops progress after the result.
    await sending;
  }
}
