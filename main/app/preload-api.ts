// What the preload puts in the window: `window.deskgrid`, the typed API of shared/ui-api.ts and
// nothing else (no ipcRenderer, no channel names the page could choose). Kept apart from the
// preload's entry so that tests can run it with stand-ins for contextBridge and ipcRenderer.

import { CALL_CHANNEL, EVENT_CHANNEL, SNAPSHOT_CHANNEL, type CallReply } from './ipc-channels.js';

export interface ContextBridgeLike {
  exposeInMainWorld(key: string, api: unknown): void;
}

export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

/**
 * A refused or failed call, as the renderer sees it: one sentence and a DeskGrid error code. A
 * plain object rather than an Error: contextBridge rebuilds an Error thrown across it from its
 * message alone (electron/electron#28346), so an Error's code would never reach the page.
 */
export interface DeskGridCallRefusal {
  readonly name: 'DeskGridCallError';
  readonly message: string;
  readonly code: string;
}

export interface BridgedApi {
  call(name: string, input: unknown): Promise<unknown>;
  subscribe(listener: (event: unknown) => void): () => void;
}

export function exposeDeskGridApi(
  contextBridge: ContextBridgeLike,
  ipcRenderer: IpcRendererLike,
): BridgedApi {
  const api: BridgedApi = {
    call: async (name, input) => {
      const reply = (await ipcRenderer.invoke(CALL_CHANNEL, name, input)) as CallReply;
      if (reply.ok) return reply.value;
      const refusal: DeskGridCallRefusal = {
        name: 'DeskGridCallError',
        message: reply.error.message,
        code: reply.error.code,
      };
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- see DeskGridCallRefusal
      return Promise.reject(refusal);
    },
    subscribe: (listener) => {
      let subscribed = true;
      // The IPC event (with its sender) stays here: the page gets the engine's event only.
      const forward = (_event: unknown, payload: unknown) => listener(payload);
      ipcRenderer.on(EVENT_CHANNEL, forward);
      // A new subscriber first gets the current state, as the browser's WebSocket does.
      void ipcRenderer.invoke(SNAPSHOT_CHANNEL).then(
        (events) => {
          if (subscribed && Array.isArray(events)) for (const event of events) listener(event);
        },
        () => undefined,
      );
      return () => {
        subscribed = false;
        ipcRenderer.removeListener(EVENT_CHANNEL, forward);
      };
    },
  };
  contextBridge.exposeInMainWorld('deskgrid', api);
  return api;
}
