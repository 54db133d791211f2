/**
 * Small waiting helpers for tests: bounded polling, and whether a process still exists. Deadlines
 * are on the monotonic clock, which no adjustment of the wall clock can shorten or stretch. (The
 * ready-shell failure first blamed on a clock step was a process read mid-exec: see
 * sshd.ts waitForNoProcesses.)
 */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `check` every 25 ms until it holds; throw after `ms`, naming what was awaited. */
export async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Whether a process with this id exists (a zombie counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
