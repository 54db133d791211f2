/**
 * Test builds only (MCP_REMOTE_EXEC_TEST_TOOLS=true): counts the Durable Object calls of a request
 * that asks for it (COUNT_DO_CALLS_HEADER), so tests and bench/exec-latency.ts can see how many lie
 * on a tool call's critical path. Only requests that ask are counted and logged: the log line costs
 * a tool call real time under wrangler dev, and the benchmark times thousands of calls.
 *
 * The env's Durable Object namespaces are wrapped so that every method called on a stub (RPC or
 * fetch) adds one to the count of the request it runs in (AsyncLocalStorage: concurrent requests
 * never share a count). Both eras' calls are served in the Worker itself. When a tool has
 * its answer, the policed executor logs the count (reportDoCalls): what came before the answer is
 * the critical path; what runs after it under waitUntil is not.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { logEvent } from './log.ts';

/** A request carrying this header with the value 1 is counted (test builds only). */
export const COUNT_DO_CALLS_HEADER = 'x-mcp-remote-exec-count-do-calls';
/** The log line tests and the bench look for. */
export const DO_CALLS_EVENT = 'durable object calls before the answer';

interface Tally {
  calls: number;
}

const current = new AsyncLocalStorage<Tally>();

export function countingOn(env: Env): boolean {
  return env.MCP_REMOTE_EXEC_TEST_TOOLS === 'true';
}

/** Whether to count this request: a test build, and the request asks. */
export function countingRequested(env: Env, request: Request): boolean {
  return countingOn(env) && request.headers.get(COUNT_DO_CALLS_HEADER) === '1';
}

function isNamespace(value: unknown): value is DurableObjectNamespace {
  return typeof value === 'object' && value !== null && 'idFromName' in value && typeof value.idFromName === 'function';
}

function countingStub<T extends object>(stub: T): T {
  return new Proxy(stub, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      // id and name are data; `then` must stay absent so a stub is never taken for a promise.
      if (typeof value !== 'function' || property === 'then') return value;
      return (...args: unknown[]): unknown => {
        const tally = current.getStore();
        if (tally) tally.calls += 1;
        return Reflect.apply(value, target, args);
      };
    },
  });
}

function countingNamespace(namespace: DurableObjectNamespace): DurableObjectNamespace {
  return new Proxy(namespace, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'get' || property === 'getByName') {
        return (...args: unknown[]): unknown => {
          const stub: unknown = Reflect.apply(value, target, args);
          return typeof stub === 'object' && stub !== null ? countingStub(stub) : stub;
        };
      }
      return value.bind(target);
    },
  });
}

/** One counting env per env: the count lives in AsyncLocalStorage, so requests can share the wrapper. */
const wrappers = new WeakMap<Env, Env>();

/** `env` with every Durable Object namespace counting its stub calls. */
export function countingEnv(env: Env): Env {
  const known = wrappers.get(env);
  if (known) return known;
  const wrapped: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(env)) wrapped[key] = isNamespace(value) ? countingNamespace(value) : value;
  const counting = wrapped as unknown as Env;
  wrappers.set(env, counting);
  return counting;
}

/** Run `work` with a count of its own, starting at `start` (calls already made on its behalf). */
export function withDoCallCount<T>(start: number, work: () => T): T {
  return current.run({ calls: start }, work);
}

/**
 * Run `work` uncounted: for Durable Object calls made beside a tool call, never holding up its
 * answer (a 2025-era call's watch for a cancel), which are not on the critical path.
 */
export function besideCriticalPath<T>(work: () => T): T {
  // A tally of its own that nobody reports: the request's count is untouched.
  return current.run({ calls: 0 }, work);
}

/** The calls counted so far in this request, or null when nothing counts. */
export function doCallsSoFar(): number | null {
  return current.getStore()?.calls ?? null;
}

/** Log the count for a tool that has its answer now (test builds only; nothing when not counting). */
export function reportDoCalls(tool: string): void {
  const calls = doCallsSoFar();
  if (calls !== null) logEvent('info', DO_CALLS_EVENT, { tool, calls });
}
