// The UI's HTTP and WebSocket server on loopback: nothing without the token (page, assets, API,
// events), the Content-Security-Policy on what it serves, no file outside the renderer folder,
// request size limits, and calls and events that follow the contract.

import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CONTENT_SECURITY_POLICY, MAX_REQUEST_BYTES, UiServer } from '../../main/engine/ui/ui-server.js';
import { UiService } from '../../main/engine/ui/ui-service.js';
import { useCluster } from '../support/engine-cluster.js';

const shared = useCluster('ui-server');
let folder = '';
let service: UiService;
let server: UiServer;
let base = '';

beforeAll(async () => {
  folder = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-ui-server-')));
  const renderer = join(folder, 'renderer');
  mkdirSync(join(renderer, 'assets'), { recursive: true });
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>DeskGrid</title>');
  writeFileSync(join(renderer, 'assets', 'app.js'), 'console.log(1);');
  writeFileSync(join(folder, 'secret.txt'), 'not for the browser');
  service = new UiService({ cluster: shared.cluster, home: shared.home });
  server = await UiServer.start({ service, rendererDir: renderer });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server.close();
  service.close();
  rmSync(folder, { recursive: true, force: true });
});

/** A raw request: fetch would normalize `..` out of the path. */
function raw(
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const json = { 'content-type': 'application/json' };

function openSocket(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ socket: WebSocket; first: unknown } | { refused: number }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { headers });
    socket.once('unexpected-response', (_request, response) =>
      resolve({ refused: response.statusCode ?? 0 }),
    );
    socket.once('message', (data: Buffer) => resolve({ socket, first: JSON.parse(data.toString()) }));
    socket.once('error', () => resolve({ refused: -1 }));
  });
}

describe('UiServer', () => {
  it('listens on loopback and prints a URL with a long random token', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`${base}/?token=${server.token}`);
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('answers no call and streams no event without the right token', async () => {
    const call = await raw('/api/getNodes', { method: 'POST', headers: json, body: '{}' });
    expect(call.status).toBe(403);
    const wrongHeader = await raw('/api/getNodes', {
      method: 'POST',
      headers: { ...json, 'x-deskgrid-token': 'guess' },
      body: '{}',
    });
    expect(wrongHeader.status).toBe(403);
    expect(await openSocket(`ws://127.0.0.1:${server.port}/api/events`)).toEqual({ refused: 403 });
    expect(await openSocket(`ws://127.0.0.1:${server.port}/api/events?token=guess`)).toEqual({
      refused: 403,
    });
  });

  it('never puts the token in a cookie, which the browser would send to every port of 127.0.0.1', async () => {
    for (const path of ['/', `/?token=${server.token}`, '/assets/app.js']) {
      const answer = await raw(path);
      expect(answer.status, path).toBe(200);
      expect(answer.headers['set-cookie'], path).toBeUndefined();
    }
    // A cookie named as the old one opens nothing.
    const headers = { ...json, cookie: `deskgrid-token-${server.port}=${server.token}` };
    expect((await raw('/api/getNodes', { method: 'POST', headers, body: '{}' })).status).toBe(403);
  });

  it('serves the page and its assets (no secret in them) under a strict CSP', async () => {
    const page = await raw('/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>DeskGrid</title>');
    expect(page.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.body).not.toContain(server.token);
    const asset = await raw('/assets/app.js');
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toContain('text/javascript');
  });

  it('serves no file outside the renderer folder', async () => {
    const headers = { 'x-deskgrid-token': server.token };
    for (const path of [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/..%2fsecret.txt',
      '/%00',
    ]) {
      const answer = await raw(path, { headers });
      expect(answer.status, path).toBe(404);
      expect(answer.body).not.toContain('not for the browser');
    }
  });

  it('refuses a Host that is not an address of this server (DNS rebinding)', async () => {
    const answer = await raw(`/?token=${server.token}`, { headers: { host: 'attacker.example:80' } });
    expect(answer.status).toBe(403);
  });

  it('answers calls with the contract and errors in words', async () => {
    const headers = { ...json, 'x-deskgrid-token': server.token };
    const nodes = await raw('/api/getNodes', { method: 'POST', headers, body: '{}' });
    expect(nodes.status).toBe(200);
    const body = JSON.parse(nodes.body) as { nodes: { id: string; state: string }[] };
    expect(body.nodes[0]).toMatchObject({ id: shared.cluster.nodeId, state: 'this computer' });

    const bad = await raw('/api/getResults', { method: 'POST', headers, body: '{"batchId":"x"}' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({
      code: 'DG_ERR_USAGE',
      message: expect.stringContaining('getResults'),
    });
    expect((await raw('/api/noSuchCall', { method: 'POST', headers, body: '{}' })).status).toBe(404);
    expect((await raw('/api/getNodes', { method: 'POST', headers, body: '{not json' })).status).toBe(400);
    // A cross-site form cannot send JSON.
    const form = await raw('/api/getNodes', {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-deskgrid-token': server.token },
      body: '{}',
    });
    expect(form.status).toBe(415);
  });

  it('refuses an oversized request without reading it whole', async () => {
    const headers = { ...json, 'x-deskgrid-token': server.token };
    const big = Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x20);
    const answer = await raw('/api/uploadChunk', { method: 'POST', headers, body: big });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'DG_ERR_TOO_LARGE' });
  });

  it('streams events to a socket with the token, starting with the nodes', async () => {
    const opened = await openSocket(`ws://127.0.0.1:${server.port}/api/events?token=${server.token}`);
    if (!('socket' in opened)) throw new Error(`refused: ${opened.refused}`);
    try {
      expect(opened.first).toMatchObject({ type: 'nodes' });
      const next = new Promise<unknown>((resolve) =>
        opened.socket.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()))),
      );
      shared.cluster.emit('warning', 'a test warning');
      expect(await next).toEqual({ type: 'warning', message: 'a test warning' });
    } finally {
      opened.socket.close();
    }
    // A page on another origin cannot open it, even with the token (a leaked cookie).
    const foreign = await openSocket(`ws://127.0.0.1:${server.port}/api/events?token=${server.token}`, {
      origin: 'http://attacker.example',
    });
    expect(foreign).toEqual({ refused: 403 });
  });
});
