// The frame writer (main/engine/transport/frame-writer.ts) on a real TCP connection over
// loopback: every byte arrives in order whatever mix of large and small frames is queued, the
// socket is never handed more than one piece of at most PIECE_BYTES at a time (so Node's TLS
// layer never joins buffers into a fresh copy), small frames of one turn leave as one write, and
// end() closes only after everything queued has left.

import { createServer, connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameWriter, PIECE_BYTES } from '../../../main/engine/transport/frame-writer.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A connected pair; `received` resolves with all the bytes the far side got before the end. */
async function pair(): Promise<{ socket: Socket; received: Promise<Buffer> }> {
  let resolveReceived: (bytes: Buffer) => void = () => undefined;
  const received = new Promise<Buffer>((resolve) => {
    resolveReceived = resolve;
  });
  const server = createServer((far) => {
    const chunks: Buffer[] = [];
    far.on('data', (chunk: Buffer) => chunks.push(chunk));
    far.on('end', () => resolveReceived(Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const socket = connect(address.port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  cleanups.push(() => {
    socket.destroy();
    server.close();
  });
  return { socket, received };
}

/** Calls `seen` with every buffer handed to the socket's write(), before the socket takes it. */
function onWrite(socket: Socket, seen: (chunk: Buffer) => void): void {
  const write = socket.write.bind(socket);
  const intercepted = (chunk: Buffer): boolean => {
    seen(chunk);
    return write(chunk);
  };
  socket.write = intercepted;
}

/** Records the size of every buffer handed to the socket's write(). */
function recordWrites(socket: Socket): number[] {
  const sizes: number[] = [];
  onWrite(socket, (chunk) => sizes.push(chunk.length));
  return sizes;
}

describe('FrameWriter', () => {
  it('writes large and small frames in order, in pieces, and ends after the last', async () => {
    const { socket, received } = await pair();
    const sizes = recordWrites(socket);
    const writer = new FrameWriter(socket);
    const frames = [
      [Buffer.from('head-1'), randomBytes(3 * PIECE_BYTES + 123)],
      [Buffer.from('small')],
      [Buffer.from('head-2'), randomBytes(PIECE_BYTES)],
      [randomBytes(PIECE_BYTES - 1), Buffer.from('xy')],
    ];
    for (const frame of frames) writer.write(frame);
    writer.end();
    const bytes = await received;
    expect(bytes.equals(Buffer.concat(frames.flat()))).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(PIECE_BYTES);
    // 3 full pieces and the rest of the first large part, then the small parts around it.
    expect(sizes.filter((size) => size === PIECE_BYTES).length).toBeGreaterThanOrEqual(4);
  });

  it('joins the small frames of one turn into one write', async () => {
    const { socket, received } = await pair();
    const sizes = recordWrites(socket);
    const writer = new FrameWriter(socket);
    const frames = Array.from({ length: 500 }, (_, i) => [Buffer.from(`frame ${i};`)]);
    for (const frame of frames) writer.write(frame);
    writer.end();
    const bytes = await received;
    expect(bytes.toString()).toBe(frames.map(([part]) => part?.toString()).join(''));
    expect(sizes).toHaveLength(1);
  });

  it('waits for the socket to drain before the next piece', async () => {
    const { socket, received } = await pair();
    const sizes = recordWrites(socket);
    let handedWhileFull = 0;
    onWrite(socket, () => {
      if (socket.writableLength >= socket.writableHighWaterMark) handedWhileFull += 1;
    });
    const writer = new FrameWriter(socket);
    const big = randomBytes(8 * PIECE_BYTES);
    writer.write([big]);
    writer.end();
    expect((await received).equals(big)).toBe(true);
    expect(sizes.length).toBeGreaterThan(0);
    expect(handedWhileFull).toBe(0);
  });
});
