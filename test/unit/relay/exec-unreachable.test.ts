/**
 * A command for a host that never answers, with a timeout shorter than the connect deadline: the
 * error says the relay is still connecting, not that the host is busy. The "host" is a loopback
 * listener that accepts TCP and never speaks SSH (a blackhole for the handshake).
 */
import { testHostConfig } from '../../harness/host-config.ts';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostConfig } from '../../../relay/config.ts';
import { runExec } from '../../../relay/exec.ts';
import { HostPool } from '../../../relay/ssh-pool.ts';

let server: Server;
let port = 0;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  port = address.port;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function host(connectTimeoutMs: number): HostConfig {
  return testHostConfig({
    name: 'silent',
    address: '127.0.0.1',
    port,
    username: 'nobody',
    auth: { kind: 'password', password: 'unused' },
    maxConnections: 1,
    connectTimeoutMs,
  });
}

describe('a command for a host that does not answer', () => {
  it('says the relay is still connecting when the timeout passes first, never host_busy', async () => {
    const pool = new HostPool(host(30_000), { files: [], recordFile: '/dev/null' });
    try {
      const result = await runExec(
        pool.forCaller(undefined),
        { op: 'exec', host: 'silent', command: 'true', timeoutMs: 1_000, maxChars: 100 },
        () => undefined,
        new AbortController().signal,
      );
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.code).toBe('host_unreachable');
      expect(result.error.message).toMatch(/Still connecting to host "silent" \(127\.0\.0\.1:\d+\) after \d+ s/);
      expect(result.error.message).not.toMatch(/too many commands/i);
    } finally {
      pool.close();
    }
  });

  it('reports the connect failure itself once the connect deadline has passed', async () => {
    const pool = new HostPool(host(500), { files: [], recordFile: '/dev/null' });
    try {
      const result = await runExec(
        pool.forCaller(undefined),
        { op: 'exec', host: 'silent', command: 'true', timeoutMs: 3_000, maxChars: 100 },
        () => undefined,
        new AbortController().signal,
      );
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.code).toBe('host_unreachable');
    } finally {
      pool.close();
    }
  });
});
