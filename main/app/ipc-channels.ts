// The two IPC channels between the window and the main process, and the shape of a call's reply.
// Imports nothing: the sandboxed preload bundles it.

/** ipcRenderer.invoke(CALL_CHANNEL, name, input) -> CallReply. */
export const CALL_CHANNEL = 'deskgrid:call';
/** webContents.send(EVENT_CHANNEL, event): the engine's pushed events. */
export const EVENT_CHANNEL = 'deskgrid:event';
/** ipcRenderer.invoke(SNAPSHOT_CHANNEL) -> the events that draw the current state (on subscribing). */
export const SNAPSHOT_CHANNEL = 'deskgrid:snapshot';

/**
 * A call's outcome as data: Electron passes only the message of an error thrown in a handler,
 * wrapped in its own words, so a refusal travels as a value with its DeskGrid error code.
 */
export type CallReply =
  { ok: true; value: unknown } | { ok: false; error: { code: string; message: string } };
