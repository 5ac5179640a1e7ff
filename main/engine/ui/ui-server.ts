// Serves the UI to a browser: the built renderer, the API calls (POST /api/<name>, JSON) and the
// event stream (WebSocket /api/events), on loopback by default, at a random port. Every API call
// and the event stream need the random token printed with the URL: in the X-DeskGrid-Token
// header (or, for the event stream, the query). Without it: 403. The page keeps the token in its
// tab's session storage, never in a cookie: browsers send cookies to every port of a host, so a
// cookie would hand the token to any other server on 127.0.0.1. The page and its assets are
// therefore served without the token; they are the same built files for everyone and hold no
// secret. The token is compared in constant time, and the Host header must name this server by
// address or as localhost, so that a web page elsewhere cannot reach the UI through DNS rebinding.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { isUiCallName, type UiEvent } from '../../../shared/ui-api.js';
import { createLogger } from '../log.js';
import type { UiService } from './ui-service.js';

const log = createLogger('ui-server');

/** Largest API request body: an upload chunk in base64 with room to spare. */
export const MAX_REQUEST_BYTES = 8 * 1024 * 1024;
/** A client that reads events slower than this much backlog is dropped (it reconnects). */
const MAX_SOCKET_BACKLOG = 16 * 1024 * 1024;

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

export interface UiServerOptions {
  service: UiService;
  /** The built renderer (dist/renderer). */
  rendererDir: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a random free port. */
  port?: number;
  /** Default: 32 random bytes, base64url. */
  token?: string;
}

export class UiServer {
  private readonly sockets = new Set<WebSocket>();
  private readonly tokenDigest: Buffer;

  private constructor(
    private readonly http: Server,
    private readonly events: WebSocketServer,
    private readonly options: UiServerOptions,
    readonly token: string,
    readonly host: string,
    readonly port: number,
  ) {
    this.tokenDigest = digest(token);
  }

  static async start(options: UiServerOptions): Promise<UiServer> {
    const token = options.token ?? randomBytes(32).toString('base64url');
    const http = createServer();
    const events = new WebSocketServer({ noServer: true, maxPayload: 1024 });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        http.off('error', reject);
        resolve();
      });
    });
    const address = http.address();
    if (address === null || typeof address === 'string') throw new Error('the UI server has no TCP address');
    const server = new UiServer(http, events, options, token, address.address, address.port);
    http.on('request', (request, response) => {
      server.onRequest(request, response).catch((error: unknown) => {
        log.error('UI request failed', { message: error instanceof Error ? error.message : String(error) });
        if (!response.headersSent)
          server.sendJson(response, 500, { code: 'DG_ERR_INTERNAL', message: 'internal error' });
        else response.destroy();
      });
    });
    http.on('upgrade', (request, socket: Socket, head) => server.onUpgrade(request, socket, head));
    options.service.on('event', server.broadcast);
    return server;
  }

  /** The address to open in a browser, token included. */
  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${host}:${this.port}/?token=${this.token}`;
  }

  async close(): Promise<void> {
    this.options.service.off('event', this.broadcast);
    for (const socket of this.sockets) socket.terminate();
    this.events.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private readonly broadcast = (event: UiEvent): void => {
    const text = JSON.stringify(event);
    for (const socket of this.sockets) {
      if (socket.bufferedAmount > MAX_SOCKET_BACKLOG) {
        socket.terminate();
        continue;
      }
      socket.send(text);
    }
  };

  private async onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://ui.invalid');
    if (!this.hostAllowed(request)) {
      this.sendText(response, 403, 'forbidden: open the address as deskgrid node --ui printed it');
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      if (!this.authorized(request)) {
        this.sendText(
          response,
          403,
          'forbidden: open the address with its token, as deskgrid node --ui printed it',
        );
        return;
      }
      await this.onApi(request, response, url.pathname.slice('/api/'.length));
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      this.sendText(response, 405, 'method not allowed');
      return;
    }
    await this.sendStatic(url.pathname, response, request.method === 'HEAD');
  }

  private async onApi(request: IncomingMessage, response: ServerResponse, name: string): Promise<void> {
    if (request.method !== 'POST') {
      this.sendJson(response, 405, { code: ErrorCode.Usage, message: 'API calls are POST requests' });
      return;
    }
    if (!isUiCallName(name)) {
      this.sendJson(response, 404, { code: ErrorCode.Usage, message: `unknown call "${name}"` });
      return;
    }
    // A form on another site cannot send JSON: this keeps cross-site requests out.
    if (!(request.headers['content-type'] ?? '').startsWith('application/json')) {
      this.sendJson(response, 415, { code: ErrorCode.Usage, message: 'API calls send JSON' });
      return;
    }
    const body = await readBody(request, MAX_REQUEST_BYTES);
    if (body === null) {
      this.sendJson(response, 413, {
        code: ErrorCode.TooLarge,
        message: `the request is larger than ${MAX_REQUEST_BYTES / 1024 / 1024} MB`,
      });
      return;
    }
    let input: unknown;
    try {
      input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      this.sendJson(response, 400, { code: ErrorCode.Usage, message: 'the request is not valid JSON' });
      return;
    }
    try {
      const output = await this.options.service.handle(name, input);
      this.sendJson(response, 200, output);
    } catch (error) {
      if (error instanceof DeskGridError) {
        this.sendJson(response, 400, { code: error.code, message: error.message });
        return;
      }
      log.error('UI call failed', {
        call: name,
        message: error instanceof Error ? error.message : String(error),
      });
      this.sendJson(response, 500, {
        code: 'DG_ERR_INTERNAL',
        message: `internal error in ${name}: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }

  private onUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://ui.invalid');
    const allowed =
      this.hostAllowed(request) &&
      this.originAllowed(request) &&
      (this.matches(url.searchParams.get('token')) || this.authorized(request));
    if (!allowed || url.pathname !== '/api/events') {
      socket.end(`HTTP/1.1 ${allowed ? '404 Not Found' : '403 Forbidden'}\r\nConnection: close\r\n\r\n`);
      return;
    }
    this.events.handleUpgrade(request, socket, head, (ws) => {
      this.sockets.add(ws);
      ws.on('close', () => this.sockets.delete(ws));
      ws.on('error', () => this.sockets.delete(ws));
      // The UI never sends anything on this socket.
      ws.on('message', () => ws.close(1003, 'this socket only sends'));
      for (const event of this.options.service.snapshot()) ws.send(JSON.stringify(event));
    });
  }

  private async sendStatic(pathname: string, response: ServerResponse, headOnly: boolean): Promise<void> {
    let relative: string;
    try {
      relative = decodeURIComponent(pathname);
    } catch {
      this.sendText(response, 400, 'bad path');
      return;
    }
    if (relative === '/' || relative === '') relative = '/index.html';
    const root = this.options.rendererDir;
    const file = normalize(join(root, relative));
    if (relative.includes('\0') || !file.startsWith(root.endsWith(sep) ? root : `${root}${sep}`)) {
      this.sendText(response, 404, 'not found');
      return;
    }
    let body: Buffer;
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
      body = await readFile(file);
    } catch {
      const missingUi = relative === '/index.html';
      this.sendText(
        response,
        404,
        missingUi ? 'the UI is not built: run npm run build in the DeskGrid folder' : 'not found',
      );
      return;
    }
    this.securityHeaders(response);
    response.setHeader('Content-Type', CONTENT_TYPES[extname(file)] ?? 'application/octet-stream');
    // Vite names assets by content hash; the page itself must never be stale.
    response.setHeader(
      'Cache-Control',
      relative.startsWith('/assets/') ? 'private, max-age=31536000, immutable' : 'no-store',
    );
    response.setHeader('Content-Length', body.length);
    response.writeHead(200);
    response.end(headOnly ? undefined : body);
  }

  private securityHeaders(response: ServerResponse): void {
    response.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('X-Frame-Options', 'DENY');
    // The token is in the page's address: never send it on.
    response.setHeader('Referrer-Policy', 'no-referrer');
    response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  }

  private sendJson(response: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    this.securityHeaders(response);
    response.setHeader('Cache-Control', 'no-store');
    response.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
    });
    response.end(text);
  }

  private sendText(response: ServerResponse, status: number, text: string): void {
    this.securityHeaders(response);
    response.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
    });
    response.end(text);
  }

  private authorized(request: IncomingMessage): boolean {
    const header = request.headers['x-deskgrid-token'];
    return typeof header === 'string' && this.matches(header);
  }

  private matches(candidate: string | null | undefined): boolean {
    if (candidate === null || candidate === undefined) return false;
    // Equal-length digests, so that neither the length nor the content leaks through timing.
    return timingSafeEqual(digest(candidate), this.tokenDigest);
  }

  private hostAllowed(request: IncomingMessage): boolean {
    const host = request.headers.host;
    if (host === undefined) return false;
    const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    return name === 'localhost' || isIP(name) !== 0;
  }

  private originAllowed(request: IncomingMessage): boolean {
    const origin = request.headers.origin;
    if (origin === undefined) return true;
    try {
      return new URL(origin).host === request.headers.host;
    } catch {
      return false;
    }
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The whole body, or null when it is larger than `limit` (the rest is not read). */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > limit) {
    request.resume();
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      if (!tooLarge) chunks.push(chunk);
    });
    request.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** The built renderer beside the compiled engine: dist/renderer. */
export function defaultRendererDir(): string {
  return fileURLToPath(new URL('../../../renderer/', import.meta.url));
}
