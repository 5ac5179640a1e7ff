// The renderer's one way to the engine: window.deskgrid in the desktop app (the preload's
// bridge), else a client of `deskgrid node --ui` over HTTP and a WebSocket. Both implement the
// DeskGridApi of shared/ui-api.ts.

import * as v from 'valibot';
import {
  uiErrorSchema,
  uiEventSchema,
  type DeskGridApi,
  type UiCallName,
  type UiEvent,
  type UiInput,
  type UiOutput,
} from '../../../shared/ui-api.js';

declare global {
  interface Window {
    deskgrid?: DeskGridApi;
  }
}

/** A call the engine refused or could not answer; `message` is one plain sentence. */
export class UiCallError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'UiCallError';
  }
}

const TOKEN_KEY = 'deskgrid-token';
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 5000;

/** The token from the address (then taken out of it, so it is not shown or shared), or from this tab's storage. */
export function takeToken(location: Location, storage: Storage, history: History): string | null {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl !== null) {
    storage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return storage.getItem(TOKEN_KEY);
}

export class HttpApi implements DeskGridApi {
  private readonly listeners = new Set<(event: UiEvent) => void>();
  private socket: WebSocket | null = null;
  private retryMs = RECONNECT_MIN_MS;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** Connection state, for the UI to say when the node cannot be reached. */
  onConnection: (connected: boolean) => void = () => undefined;

  constructor(
    private readonly base: URL,
    private readonly token: string | null,
  ) {}

  async call<N extends UiCallName>(name: N, input: UiInput<N>): Promise<UiOutput<N>> {
    let response: Response;
    try {
      response = await fetch(new URL(`api/${name}`, this.base), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.token === null ? {} : { 'x-deskgrid-token': this.token }),
        },
        body: JSON.stringify(input),
      });
    } catch {
      throw new UiCallError(
        'the DeskGrid node does not answer: is deskgrid node --ui still running?',
        'DG_ERR_CONNECTION',
      );
    }
    const body: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      const parsed = v.safeParse(uiErrorSchema, body);
      if (parsed.success) throw new UiCallError(parsed.output.message, parsed.output.code);
      throw new UiCallError(
        response.status === 403
          ? 'this page has no valid access token: open the address deskgrid node --ui printed'
          : `the node answered with an error (HTTP ${response.status})`,
        'DG_ERR_CONNECTION',
      );
    }
    return body as UiOutput<N>;
  }

  subscribe(listener: (event: UiEvent) => void): () => void {
    this.listeners.add(listener);
    if (this.socket === null && this.retryTimer === null) this.connect();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.disconnect();
    };
  }

  private connect(): void {
    this.retryTimer = null;
    const url = new URL('api/events', this.base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this.token !== null) url.searchParams.set('token', this.token);
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.retryMs = RECONNECT_MIN_MS;
      this.onConnection(true);
    });
    socket.addEventListener('message', (message: MessageEvent<unknown>) => {
      if (typeof message.data !== 'string') return;
      let data: unknown;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      const parsed = v.safeParse(uiEventSchema, data);
      if (!parsed.success) return;
      for (const listener of this.listeners) listener(parsed.output);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.onConnection(false);
      if (this.listeners.size === 0) return;
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    });
  }

  private disconnect(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }
}

/** The API of this window: the desktop app's bridge when there is one. */
export function connectApi(): DeskGridApi {
  if (window.deskgrid !== undefined) return window.deskgrid;
  const token = takeToken(window.location, window.sessionStorage, window.history);
  return new HttpApi(new URL('./', window.location.href), token);
}

/** What the user reads of a failure: its sentence and, when the engine gave one, its DG_ERR_ code. */
export interface ShownError {
  message: string;
  code: string | null;
}

/** Anything a call threw, as shown: the code too, for the user to look up or report. */
export function shownError(error: unknown): ShownError {
  // Duck-typed: the desktop app's bridge throws its own error class, with the same fields.
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return {
    message: errorText(error),
    code: typeof code === 'string' && code.startsWith('DG_ERR_') ? code : null,
  };
}

/** The message of anything a call threw, as one sentence for the user. */
export function errorText(error: unknown): string {
  // An Error, or a plain { code, message }: the fields are read, whatever carried them.
  const said = (error as { message?: unknown } | null | undefined)?.message;
  const message = typeof said === 'string' ? said : String(error);
  // Electron wraps errors from the main process: "Error invoking remote method 'x': Error: ...".
  return message.replace(/^Error invoking remote method '[^']*': (?:\w*Error: )?/, '');
}
