// The worker's end of the channel to the engine. The same worker code runs as a Node child
// process (messages over process.send) and as an Electron utility process (messages over
// process.parentPort); this is the only place that knows the difference. A child process also
// has the bulk lane (shared/bulk-lane.ts): large buffers come and go as raw bytes on a socket.

import { Socket } from 'node:net';
import { BulkReceiver, liftBulk } from '../shared/bulk-lane.js';

interface ParentPort {
  on(event: 'message', listener: (event: { data: unknown }) => void): void;
  postMessage(message: unknown): void;
}

export interface Endpoint {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Called when the engine's side goes away; the worker should stop its children and exit. */
  onClose(listener: () => void): void;
}

export function openEndpoint(): Endpoint {
  const parentPort = (process as NodeJS.Process & { parentPort?: ParentPort }).parentPort;
  if (parentPort) {
    return {
      send: (message) => parentPort.postMessage(message),
      onMessage: (listener) => parentPort.on('message', (event) => listener(event.data)),
      // Electron ends utility processes together with their parent.
      onClose: () => undefined,
    };
  }
  const send = process.send?.bind(process);
  if (!send) throw new Error('worker-service must be started with an IPC channel (fork or utilityProcess)');
  const lane = openLane();
  if (lane === null) {
    return {
      send: (message) => {
        send(message);
      },
      onMessage: (listener) => process.on('message', listener),
      onClose: (listener) => process.once('disconnect', listener),
    };
  }
  return {
    send: (message) => {
      const lifted = liftBulk(message, (bytes) => Buffer.isBuffer(bytes));
      if (lifted === null) {
        send(message);
        return;
      }
      send(lifted.envelope);
      for (const bytes of lifted.bytes) lane.write(bytes);
    },
    onMessage: (listener) => {
      const receiver = new BulkReceiver(listener, (size, buffer) =>
        buffer ? Buffer.allocUnsafe(size) : new Uint8Array(size),
      );
      lane.on('data', (chunk: Buffer) => receiver.bytes(chunk));
      process.on('message', (raw) => receiver.message(raw));
    },
    onClose: (listener) => process.once('disconnect', listener),
  };
}

/** The bulk lane the engine opened for this worker, if any (never for a job to find after). */
function openLane(): Socket | null {
  const fd = Number(process.env.DESKGRID_BULK_FD);
  delete process.env.DESKGRID_BULK_FD;
  if (!Number.isInteger(fd) || fd < 3) return null;
  const lane = new Socket({ fd, readable: true, writable: true });
  // The lane ends with the engine; the channel's 'disconnect' says so first.
  lane.on('error', () => undefined);
  // Like the channel, the lane does not keep an idle worker alive by itself.
  lane.unref();
  return lane;
}
