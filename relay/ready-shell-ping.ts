/**
 * The relay's side of a ready shell's handshake (host-stop.ts readyShellCommand): before a run is
 * written to a shell that was started ahead of it, the relay pings it and waits for its answer. A
 * ready shell that answers is alive, on a connection that is alive, and has read nothing of the
 * run; one that does not answer has run nothing, so the run can go elsewhere.
 */
import type { ClientChannel } from 'ssh2';
import { READY_ACK, READY_PING } from './host-stop.ts';

/**
 * - answered: the shell is waiting for its run;
 * - silent: no answer within the bound (the connection went silent);
 * - closed: the channel closed first (the shell or the connection ended);
 * - odd: it printed something else (a startup file that prints, a shell that is not POSIX):
 *   ready shells do not work on this host;
 * - cancelled: the caller gave up first.
 */
export type PingAnswer = 'answered' | 'silent' | 'closed' | 'odd' | 'cancelled';

/** Pings sent, for tests that check which runs were pinged. */
export const readyPings = { sent: 0 };

/** `onAnswered` runs as the answer is read, before anything else the channel delivers in the same read. */
export function pingReadyShell(channel: ClientChannel, timeoutMs: number, signal: AbortSignal, onAnswered?: () => void): Promise<PingAnswer> {
  return new Promise((resolve) => {
    let received = '';
    const done = (answer: PingAnswer): void => {
      clearTimeout(timer);
      channel.off('data', onData);
      channel.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      if (answer === 'answered') onAnswered?.();
      resolve(answer);
    };
    // The shell prints nothing more until its run is written, and the caller reads the channel in
    // the same turn as this resolves, so no output can come between this listener and the caller's.
    const onData = (chunk: Buffer): void => {
      received += chunk.toString('latin1');
      if (received === READY_ACK) done('answered');
      else if (!READY_ACK.startsWith(received)) done('odd');
    };
    const onClose = (): void => done('closed');
    const onAbort = (): void => done('cancelled');
    const timer = setTimeout(() => done('silent'), timeoutMs);
    if (signal.aborted) {
      done('cancelled');
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    channel.on('data', onData);
    channel.once('close', onClose);
    try {
      readyPings.sent += 1;
      channel.write(READY_PING);
    } catch {
      done('closed');
    }
  });
}
