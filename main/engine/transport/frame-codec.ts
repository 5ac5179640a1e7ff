// Frames on a DeskGrid connection: [u32 payload length][u32 header length][header JSON][body].
// Lengths are big-endian. The decoder checks the announced length against the limit before it
// buffers a byte of the payload, so an oversized or hostile frame costs nothing to refuse.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

const PREFIX_BYTES = 8;

export interface Frame {
  header: unknown;
  body: Buffer;
}

/** Encodes one frame as buffers to write back to back (the body is not copied). */
export function encodeFrame(header: object, body?: Buffer | readonly Buffer[]): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const parts = body === undefined ? [] : Buffer.isBuffer(body) ? [body] : [...body];
  const bodyBytes = parts.reduce((sum, part) => sum + part.length, 0);
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  prefix.writeUInt32BE(json.length + bodyBytes, 0);
  prefix.writeUInt32BE(json.length, 4);
  return [prefix, json, ...parts];
}

export function frameSize(header: object, bodyBytes: number): number {
  return PREFIX_BYTES + Buffer.byteLength(JSON.stringify(header)) + bodyBytes;
}

/** Reassembles frames from stream chunks; throws a Protocol error on a malformed or oversized one. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected: { payload: number; header: number } | null = null;

  constructor(private readonly maxFrameBytes: number) {}

  /** True while part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    // The prefix is consumed as soon as it is read: a frame whose payload has not come yet is
    // pending in `expected` with nothing buffered.
    return this.buffered > 0 || this.expected !== null;
  }

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.expected === null) {
        if (this.buffered < PREFIX_BYTES) break;
        const prefix = this.take(PREFIX_BYTES);
        const payload = prefix.readUInt32BE(0);
        const header = prefix.readUInt32BE(4);
        if (payload + PREFIX_BYTES > this.maxFrameBytes) {
          throw new DeskGridError(
            ErrorCode.Protocol,
            `frame of ${payload + PREFIX_BYTES} bytes is over the limit of ${this.maxFrameBytes}`,
          );
        }
        if (header < 2 || header > payload) {
          throw new DeskGridError(ErrorCode.Protocol, 'malformed frame: bad header length');
        }
        this.expected = { payload, header };
      }
      if (this.buffered < this.expected.payload) break;
      const payload = this.take(this.expected.payload);
      const headerBytes = this.expected.header;
      this.expected = null;
      let header: unknown;
      try {
        header = JSON.parse(payload.subarray(0, headerBytes).toString('utf8'));
      } catch {
        throw new DeskGridError(ErrorCode.Protocol, 'malformed frame: header is not JSON');
      }
      frames.push({ header, body: payload.subarray(headerBytes) });
    }
    return frames;
  }

  private take(bytes: number): Buffer {
    const joined =
      this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
    const taken = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return taken;
  }
}
