// A plain TCP relay between a submitter and a node on 127.0.0.1, for tests that cut a link in
// the middle of a transfer: `cut()` destroys every connection through it (as a pulled cable
// would end them), while it keeps listening, so the submitter's reconnection goes through.

import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpRelay {
  /** `127.0.0.1:PORT` of the relay, to give as the node's address. */
  readonly peer: string;
  /** Connections cut so far. */
  readonly cuts: number;
  cut(): void;
  close(): Promise<void>;
}

export async function startRelay(target: { host: string; port: number }): Promise<TcpRelay> {
  const open = new Set<Socket>();
  let cuts = 0;
  const server: Server = createServer((inbound) => {
    const outbound = connect(target.port, target.host);
    for (const socket of [inbound, outbound]) {
      open.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        open.delete(socket);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the relay has no port');
  return {
    peer: `127.0.0.1:${address.port}`,
    get cuts() {
      return cuts;
    },
    cut() {
      cuts += 1;
      for (const socket of open) socket.destroy();
    },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
