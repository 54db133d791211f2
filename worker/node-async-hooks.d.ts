/**
 * The one Node API the Worker uses (nodejs_compat), typed by hand because the Worker's type-check
 * has no Node types: AsyncLocalStorage, for the per-request Durable Object call count in test
 * builds (worker/do-call-count.ts).
 */
declare module 'node:async_hooks' {
  export class AsyncLocalStorage<T> {
    getStore(): T | undefined;
    run<R>(store: T, callback: () => R): R;
  }
}
