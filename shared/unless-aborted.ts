/** What `unlessAborted` gives when the signal fired first. */
export const ABORTED: unique symbol = Symbol('aborted');

/**
 * Waits for `promise` unless `signal` aborts first. Unlike `Promise.race` against a promise that
 * settles on abort, it leaves nothing behind on the signal once `promise` settles: a loop that
 * waits this way thousands of times (a chunk at a time) does not pile up reactions, each keeping
 * its chunk reachable, for as long as the signal lives.
 */
export function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
