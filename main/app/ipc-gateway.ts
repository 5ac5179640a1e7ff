// The main process's one door for the window: every call arrives on CALL_CHANNEL (and a new
// subscriber's request for the current state on SNAPSHOT_CHANNEL), and is answered
// only when it comes from the app's own window, from its top frame, showing the app's own page;
// its name must be one of the contract's and its input must match the contract's schema before
// the engine sees it. Generic over the contract so that tests run it with a small one.

import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { createLogger } from '../engine/entry/host.js';
import { CALL_CHANNEL, SNAPSHOT_CHANNEL, type CallReply } from './ipc-channels.js';

const log = createLogger('ipc');

export type CallContract = Record<string, { input: v.GenericSchema; output: v.GenericSchema }>;

/** The parts of Electron's IpcMainInvokeEvent the gateway reads. */
export interface InvokeEvent {
  sender: { id: number };
  senderFrame: { url: string; parent: unknown } | null;
}

export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEvent, ...args: unknown[]) => Promise<unknown>): void;
  removeHandler(channel: string): void;
}

export interface GatewayOptions<C extends CallContract> {
  ipcMain: IpcMainLike;
  contract: C;
  /** Whether the event comes from a window and page of this app (see `appSender`). */
  isTrusted: (event: InvokeEvent) => boolean;
  /** Runs a validated call; throws a DeskGridError to refuse it. */
  handle: (name: keyof C & string, input: v.InferOutput<C[keyof C]['input']>) => Promise<unknown>;
  /** The events that draw the current state, for a new subscriber. */
  snapshot: () => unknown[];
  /** Told of every refused sender (to log it). */
  onRefused?: (event: InvokeEvent, name: unknown) => void;
}

/** Registers the gateway; returns its removal. */
export function registerGateway<C extends CallContract>(options: GatewayOptions<C>): () => void {
  options.ipcMain.handle(CALL_CHANNEL, async (event, name, input): Promise<CallReply> => {
    if (!options.isTrusted(event)) {
      options.onRefused?.(event, name);
      return refusal(new DeskGridError(ErrorCode.Auth, 'this page may not use DeskGrid'));
    }
    if (typeof name !== 'string' || !Object.hasOwn(options.contract, name)) {
      return refusal(new DeskGridError(ErrorCode.Usage, `unknown call "${String(name)}"`));
    }
    const call = options.contract[name] as C[keyof C];
    const parsed = v.safeParse(call.input, input);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const where = issue.path?.map((item) => String(item.key)).join('.') ?? '';
      return refusal(
        new DeskGridError(
          ErrorCode.Usage,
          `invalid ${name} request${where === '' ? '' : ` (${where})`}: ${issue.message}`,
        ),
      );
    }
    try {
      return {
        ok: true,
        value: await options.handle(name, parsed.output),
      };
    } catch (error) {
      return refusal(error);
    }
  });
  options.ipcMain.handle(SNAPSHOT_CHANNEL, (event) => {
    if (options.isTrusted(event)) return Promise.resolve(options.snapshot());
    options.onRefused?.(event, SNAPSHOT_CHANNEL);
    return Promise.resolve([]);
  });
  return () => {
    options.ipcMain.removeHandler(CALL_CHANNEL);
    options.ipcMain.removeHandler(SNAPSHOT_CHANNEL);
  };
}

function refusal(error: unknown): CallReply {
  if (error instanceof DeskGridError)
    return { ok: false, error: { code: error.code, message: error.message } };
  // Anything else is a bug, not the user's doing: its details stay in the main process's log.
  log.error('a call failed', {
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  return {
    ok: false,
    error: { code: 'DG_ERR_INTERNAL', message: 'DeskGrid could not do that (an internal error)' },
  };
}

/**
 * The trust check for the app's window: the call comes from that window's web contents, from its
 * top frame (no iframe), and the frame shows a page of the app (`isAppUrl`), not one it was
 * navigated to.
 */
export function appSender(
  window: () => { webContents: { id: number } } | null,
  isAppUrl: (url: string) => boolean,
): (event: InvokeEvent) => boolean {
  return (event) => {
    const contents = window()?.webContents;
    const frame = event.senderFrame;
    return (
      contents !== undefined &&
      event.sender.id === contents.id &&
      frame !== null &&
      frame.parent === null &&
      isAppUrl(frame.url)
    );
  };
}
