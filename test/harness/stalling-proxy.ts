/**
 * A loopback TCP proxy that can go silent without closing: the half-open connection a NAT or a
 * dead middlebox leaves behind. `stall()` stops forwarding in both directions (reading pauses, so
 * bytes wait in kernel buffers and neither end sees an error, a FIN or a RST); `resume()` lets them
 * through again; `stop()` closes every socket and the listener.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface StallingProxy {
  /** Where clients connect (127.0.0.1). */
  port: number;
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  stall(): void;
  resume(): void;
  stop(): Promise<void>;
}

export async function startStallingProxy(targetPort: number): Promise<StallingProxy> {
  const sockets = new Set<Socket>();
  let stalled = false;
  let accepted = 0;
  /** Work held back while stalled: bytes read just before the stall, closes of one side. */
  let held: Array<() => void> = [];
  const whenFlowing = (work: () => void): void => {
    if (stalled) held.push(work);
    else work();
  };
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A reset on one side must not crash the test process.
    socket.on('error', () => socket.destroy());
    if (stalled) socket.pause();
  };
  /** Forward a → b by hand (not pipe(), whose drain handling would resume a paused side). */
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => whenFlowing(() => to.write(chunk)));
    // Even a close is not passed on while stalled: the other end must see nothing at all.
    from.once('close', () => whenFlowing(() => to.destroy()));
  };
  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = connect(targetPort, '127.0.0.1');
    track(client);
    track(upstream);
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => accepted,
    stall() {
      stalled = true;
      for (const socket of sockets) socket.pause();
    },
    resume() {
      stalled = false;
      for (const work of held.splice(0)) work();
      for (const socket of sockets) socket.resume();
    },
    async stop() {
      held = [];
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
