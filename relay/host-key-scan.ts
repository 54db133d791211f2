/**
 * Read the host key a server offers, without logging in: ssh2 hands the key to `hostVerifier`
 * before any authentication, and refusing it there ends the handshake. Used at start to tell the
 * operator about a key the relay would refuse, before the first call fails on it.
 */
import { Client } from 'ssh2';
import type { ServerHostKeyAlgorithm } from 'ssh2';

export interface KeyScanTarget {
  address: string;
  port: number;
  /** Sent in no message (the handshake ends before authentication), but ssh2 requires one. */
  username: string;
  /** In the order the real connection offers them, so the scan sees the key that connection would. */
  algorithms: ServerHostKeyAlgorithm[];
  timeoutMs: number;
}

/** The offered key's blob, or undefined when the host did not show one within `timeoutMs`. */
export function offeredHostKey(target: KeyScanTarget): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const client = new Client();
    let key: Buffer | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.destroy();
      resolve(key);
    };
    const timer = setTimeout(finish, target.timeoutMs);
    // Stays attached after finish: a late socket error must not become an uncaught exception.
    client.on('error', finish);
    client.on('close', finish);
    client.on('ready', finish);
    try {
      client.connect({
        host: target.address,
        port: target.port,
        username: target.username,
        readyTimeout: target.timeoutMs,
        algorithms: { serverHostKey: target.algorithms },
        hostVerifier: (blob: Buffer): boolean => {
          key = Buffer.from(blob);
          return false;
        },
      });
    } catch {
      finish();
    }
  });
}
