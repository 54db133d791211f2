/**
 * The Durable Object call counts the Worker logs in test builds (MCP_REMOTE_EXEC_TEST_TOOLS=true;
 * worker/do-call-count.ts): one line per tool call, when it has its answer. Read by
 * test/e2e/critical-path.test.ts and bench/exec-latency.ts.
 */
import type { TestWorker } from './worker.ts';

/** Headers for a client whose calls the Worker should count (worker/do-call-count.ts COUNT_DO_CALLS_HEADER); only those are. */
export const COUNT_DO_CALLS: Record<string, string> = { 'x-mcp-remote-exec-count-do-calls': '1' };

/** The log line's message (worker/do-call-count.ts DO_CALLS_EVENT). */
const EVENT = 'durable object calls before the answer';

/** The counts the Worker logged for `tool` since `mark` (worker.process.mark()). */
export function loggedDoCalls(worker: TestWorker, mark: number, tool: string): number[] {
  const output = worker.process.output();
  const since = output.slice(Math.max(0, output.length - (worker.process.mark() - mark)));
  return since
    .split('\n')
    .filter((line) => line.includes(EVENT))
    .flatMap((line) => {
      try {
        const parsed: unknown = JSON.parse(line.slice(line.indexOf('{')));
        return typeof parsed === 'object' &&
          parsed !== null &&
          'tool' in parsed &&
          parsed.tool === tool &&
          'calls' in parsed &&
          typeof parsed.calls === 'number'
          ? [parsed.calls]
          : [];
      } catch {
        return [];
      }
    });
}

/** Wait (up to 10 s) until `count` lines for `tool` have been logged since `mark`; whatever is there then. */
export async function waitForDoCalls(worker: TestWorker, mark: number, tool: string, count: number): Promise<number[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const counts = loggedDoCalls(worker, mark, tool);
    if (counts.length >= count || performance.now() > deadline) return counts;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
