/**
 * Child processes for tests: started in their own process group (so a wrangler and the workerd it
 * spawns stop together), output kept in a bounded buffer for error messages, stopped by PID.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const KEEP_OUTPUT_CHARS = 256 * 1024;

export interface Managed {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** How much has been printed so far; pass it to outputSince. */
  mark(): number;
  /** What was printed after `mark` (throws if the bounded buffer no longer holds all of it). */
  outputSince(mark: number): string;
  /** Resolves when a line matching `pattern` has been printed, rejects after `timeoutMs` or on exit. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** Signal the whole process group. */
  signal(name: NodeJS.Signals): void;
  /** SIGTERM the group, wait up to `graceMs`, then SIGKILL. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export function startManaged(command: string, args: string[], options: SpawnOptions): Managed {
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  let output = '';
  let printed = 0;
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    printed += text.length;
    output = (output + text).slice(-KEEP_OUTPUT_CHARS);
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let alive = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      alive = false;
      for (const listener of listeners) listener();
      resolve(code);
    });
  });
  const signalGroup = (name: NodeJS.Signals): void => {
    try {
      process.kill(-pid, name);
    } catch {
      // Already gone.
    }
  };
  return {
    child,
    pid,
    output: () => output,
    mark: () => printed,
    outputSince(mark) {
      const wanted = printed - mark;
      if (wanted > output.length) throw new Error(`only the last ${output.length} characters of output are kept; ${wanted} were asked for`);
      return wanted === 0 ? '' : output.slice(-wanted);
    },
    exited,
    signal: signalGroup,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(output);
          if (match) {
            cleanup();
            resolve(match[0]);
          } else if (!alive) {
            cleanup();
            reject(new Error(`${command} exited before printing ${pattern}:\n${output.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${command} did not print ${pattern} within ${timeoutMs} ms:\n${output.slice(-4000)}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (!alive) return;
      signalGroup('SIGTERM');
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs));
      if ((await Promise.race([exited, timer])) === 'timeout') {
        signalGroup('SIGKILL');
        await exited;
      }
      // The group may hold children (workerd) that outlive the leader by a moment.
      signalGroup('SIGKILL');
    },
  };
}
