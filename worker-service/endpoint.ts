// The worker's end of the channel to the engine. The same worker code runs as a Node child
// process (messages over process.send) and as an Electron utility process (messages over
// process.parentPort); this is the only place that knows the difference.

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
  return {
    send: (message) => {
      send(message);
    },
    onMessage: (listener) => process.on('message', listener),
    onClose: (listener) => process.once('disconnect', listener),
  };
}
