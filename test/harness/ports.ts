import { createServer, type Server, type Socket } from 'node:net';

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A test server listening on a free loopback port. `close()` ends its open connections too, so it never waits on a client. */
export interface LoopbackListener {
  port: number;
  /** The connections open now (a stalling proxy pauses them). */
  sockets: ReadonlySet<Socket>;
  close(): Promise<void>;
}

/** Listen on 127.0.0.1 on a free port, keeping track of the connections so they can be ended. */
export async function listenOnLoopback(server: Pick<Server, 'on' | 'once' | 'listen' | 'address' | 'close'>): Promise<LoopbackListener> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    sockets,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
