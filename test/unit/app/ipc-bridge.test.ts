// The window's one way to the engine: the preload's window.deskgrid and the main process's IPC
// gateway, joined by stand-ins for contextBridge, ipcRenderer and ipcMain that pass messages as
// Electron does. The gateway answers only the app's own window, top frame and page, and only
// calls of the contract with valid input.

import * as v from 'valibot';
import { describe, expect, it, vi } from 'vitest';
import { isAppUrl } from '../../../main/app/app-origin.js';
import { CALL_CHANNEL, EVENT_CHANNEL, SNAPSHOT_CHANNEL } from '../../../main/app/ipc-channels.js';
import {
  appSender,
  registerGateway,
  type InvokeEvent,
  type IpcMainLike,
} from '../../../main/app/ipc-gateway.js';
import {
  exposeDeskGridApi,
  type BridgedApi,
  type DeskGridCallRefusal,
} from '../../../main/app/preload-api.js';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

const contract = {
  add: { input: v.object({ a: v.number(), b: v.number() }), output: v.number() },
  echo: { input: v.object({ text: v.pipe(v.string(), v.maxLength(5)) }), output: v.string() },
  fail: { input: v.object({ how: v.picklist(['deskgrid', 'bug']) }), output: v.never() },
};

const WINDOW = { webContents: { id: 7 } };
const APP_FRAME = { url: 'deskgrid://app/index.html', parent: null };

class StandInIpcMain implements IpcMainLike {
  readonly handlers = new Map<string, (event: InvokeEvent, ...args: unknown[]) => Promise<unknown>>();
  handle(channel: string, listener: (event: InvokeEvent, ...args: unknown[]) => Promise<unknown>): void {
    if (this.handlers.has(channel)) throw new Error(`a second handler for ${channel}`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  /** What ipcRenderer.invoke does: the handler's value, or Electron's wrapped error. */
  async invoke(event: InvokeEvent, channel: string, ...args: unknown[]): Promise<unknown> {
    const handler = this.handlers.get(channel);
    if (!handler) throw new Error(`No handler registered for '${channel}'`);
    // Values cross as structured clones.
    return structuredClone(await handler(event, ...structuredClone(args)));
  }
}

function setUp(event: InvokeEvent = { sender: { id: 7 }, senderFrame: APP_FRAME }) {
  const ipcMain = new StandInIpcMain();
  const handled: Array<[string, unknown]> = [];
  const refused = vi.fn();
  const remove = registerGateway({
    ipcMain,
    contract,
    isTrusted: appSender(() => WINDOW, isAppUrl),
    onRefused: refused,
    snapshot: () => [{ type: 'state', n: 1 }],
    handle: async (name, input) => {
      handled.push([name, input]);
      await Promise.resolve();
      if (name === 'add') {
        const { a, b } = input as { a: number; b: number };
        return a + b;
      }
      if (name === 'echo') return (input as { text: string }).text;
      if ((input as { how: string }).how === 'deskgrid')
        throw new DeskGridError(ErrorCode.NotFound, 'no such batch');
      throw new TypeError('Cannot read properties of undefined');
    },
  });
  const exposed = new Map<string, unknown>();
  const listeners = new Set<(event: unknown, ...args: unknown[]) => void>();
  const api = exposeDeskGridApi(
    { exposeInMainWorld: (key, value) => exposed.set(key, value) },
    {
      invoke: (channel, ...args) => ipcMain.invoke(event, channel, ...args),
      on: (channel, listener) => (channel === EVENT_CHANNEL ? listeners.add(listener) : undefined),
      removeListener: (_channel, listener) => listeners.delete(listener),
    },
  );
  const push = (payload: unknown) => {
    for (const listener of listeners) listener({ senderId: 0, ports: [] }, payload);
  };
  return { ipcMain, api, exposed, handled, refused, remove, push, listeners };
}

/** The refusal a call rejects with: a plain object, which contextBridge copies whole (no Error). */
async function refusalOf(api: BridgedApi, name: string, input: unknown): Promise<DeskGridCallRefusal> {
  const error: unknown = await api.call(name, input).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  if (error === null || typeof error !== 'object' || error instanceof Error)
    throw new Error(`expected a plain refusal, got ${String(error)}`);
  expect(structuredClone(error)).toEqual(error);
  return error as DeskGridCallRefusal;
}

describe('the preload', () => {
  it('exposes window.deskgrid with call and subscribe only', () => {
    const { exposed } = setUp();
    expect([...exposed.keys()]).toEqual(['deskgrid']);
    expect(Object.keys(exposed.get('deskgrid') as object).sort()).toEqual(['call', 'subscribe']);
  });

  it('gives a subscriber the current state, then events without the IPC event, until it unsubscribes', async () => {
    const { api, push, listeners } = setUp();
    const seen: unknown[] = [];
    const unsubscribe = api.subscribe((event) => seen.push(event));
    await expect.poll(() => seen).toEqual([{ type: 'state', n: 1 }]);
    push({ type: 'warning', message: 'hello' });
    unsubscribe();
    push({ type: 'warning', message: 'not seen' });
    expect(seen).toEqual([
      { type: 'state', n: 1 },
      { type: 'warning', message: 'hello' },
    ]);
    expect(listeners.size).toBe(0);
  });

  it('gives a page that is not the app no state', async () => {
    const { ipcMain, refused } = setUp();
    const other = { sender: { id: 8 }, senderFrame: APP_FRAME };
    expect(await ipcMain.invoke(other, SNAPSHOT_CHANNEL)).toEqual([]);
    expect(refused).toHaveBeenCalledWith(other, SNAPSHOT_CHANNEL);
  });
});

describe('the IPC gateway', () => {
  it('answers valid calls from the app window', async () => {
    const { api, handled } = setUp();
    expect(await api.call('add', { a: 2, b: 3 })).toBe(5);
    expect(await api.call('echo', { text: 'hi' })).toBe('hi');
    expect(handled).toEqual([
      ['add', { a: 2, b: 3 }],
      ['echo', { text: 'hi' }],
    ]);
  });

  it.each([
    ['another window', { sender: { id: 8 }, senderFrame: APP_FRAME }],
    ['an iframe of the window', { sender: { id: 7 }, senderFrame: { url: APP_FRAME.url, parent: {} } }],
    [
      'a page it navigated to',
      { sender: { id: 7 }, senderFrame: { url: 'https://example.com/', parent: null } },
    ],
    ['a file page', { sender: { id: 7 }, senderFrame: { url: 'file:///tmp/x.html', parent: null } }],
    ['a frame that is gone', { sender: { id: 7 }, senderFrame: null }],
  ])('refuses calls from %s', async (_what, event: InvokeEvent) => {
    const { api, handled, refused } = setUp(event);
    const error = await refusalOf(api, 'add', { a: 1, b: 1 });
    expect(error).toMatchObject({ code: ErrorCode.Auth, message: 'this page may not use DeskGrid' });
    expect(handled).toEqual([]);
    expect(refused).toHaveBeenCalledOnce();
  });

  it.each(['nope', '__proto__', 'toString', 'constructor'])('refuses the unknown call "%s"', async (name) => {
    const { api, handled } = setUp();
    const error = await refusalOf(api, name, {});
    expect(error).toMatchObject({ code: ErrorCode.Usage, message: `unknown call "${name}"` });
    expect(handled).toEqual([]);
  });

  it.each([
    ['a missing field', 'add', { a: 1 }, 'invalid add request (b)'],
    ['a wrong type', 'add', { a: 1, b: '2' }, 'invalid add request (b)'],
    ['a text too long', 'echo', { text: 'too long' }, 'invalid echo request (text)'],
    ['no object at all', 'add', null, 'invalid add request:'],
  ])('refuses input with %s before the engine sees it', async (_what, name, input, message) => {
    const { api, handled } = setUp();
    const error = await refusalOf(api, name, input);
    expect(error.code).toBe(ErrorCode.Usage);
    expect(error.message.startsWith(message)).toBe(true);
    expect(handled).toEqual([]);
  });

  it("passes the engine's refusals on with their code, and hides internal errors", async () => {
    const { api } = setUp();
    expect(await refusalOf(api, 'fail', { how: 'deskgrid' })).toMatchObject({
      code: ErrorCode.NotFound,
      message: 'no such batch',
    });
    expect(await refusalOf(api, 'fail', { how: 'bug' })).toMatchObject({
      code: 'DG_ERR_INTERNAL',
      message: 'DeskGrid could not do that (an internal error)',
    });
  });

  it('is removed with the function it returns', () => {
    const { ipcMain, remove } = setUp();
    expect([...ipcMain.handlers.keys()]).toEqual([CALL_CHANNEL, SNAPSHOT_CHANNEL]);
    remove();
    expect(ipcMain.handlers.size).toBe(0);
  });
});
