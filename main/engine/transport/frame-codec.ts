// Frames on a DeskGrid connection: [u32 payload length][u32 header length][header JSON][body].
// Lengths are big-endian. The decoder checks the announced length against the limit before it
// buffers a byte of the payload, so an oversized or hostile frame costs nothing to refuse. The
// first frame of a connection (the hello, sent before anyone is proven) has a limit of its own,
// a few KiB, so that a stranger cannot make a node hold megabytes for it. Every header must be a
// JSON object with a string `t`: anything else is refused here, before a handler sees it.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

const PREFIX_BYTES = 8;
/** The largest first frame (the hello) a connection accepts; a real hello is about 500 bytes. */
export const MAX_HELLO_FRAME_BYTES = 8 * 1024;

/** A header as the decoder lets it through: an object with a string type; its fields still need checking. */
export type FrameHeader = { t: string } & Record<string, unknown>;

export interface Frame {
  /** Always a FrameHeader (the decoder refuses anything else); typed loosely for the many readers that pick fields. */
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

/**
 * Payloads this large are copied into a buffer of their own as their chunks arrive, while the
 * chunk is still in the cache, instead of being kept as hundreds of TLS-record-sized chunks and
 * joined at the end.
 */
const ASSEMBLE_BYTES = 256 * 1024;

/** Reassembles frames from stream chunks; throws a Protocol error on a malformed or oversized one. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected: { payload: number; header: number } | null = null;
  /** A large payload being filled in place (see ASSEMBLE_BYTES). */
  private assembly: { into: Buffer; filled: number; header: number } | null = null;
  private firstFrame = true;
  /** Bytes pushed so far: a peer that stalls mid-frame is told from one that is merely slow by this. */
  received = 0;

  /**
   * @param maxFrameBytes the limit for every frame
   * @param maxFirstFrameBytes a lower limit for the connection's first frame (the hello), if any
   */
  constructor(
    private readonly maxFrameBytes: number,
    private readonly maxFirstFrameBytes = maxFrameBytes,
  ) {}

  /** True while part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    // The prefix is consumed as soon as it is read: a frame whose payload has not come yet is
    // pending in `expected` (or `assembly`) with nothing buffered.
    return this.buffered > 0 || this.expected !== null || this.assembly !== null;
  }

  push(chunk: Buffer): Frame[] {
    this.received += chunk.length;
    const frames: Frame[] = [];
    let rest: Buffer | null = chunk;
    while (rest !== null && rest.length > 0) {
      if (this.assembly !== null) {
        rest = this.assemble(rest, frames);
        continue;
      }
      this.chunks.push(rest);
      this.buffered += rest.length;
      rest = null;
      this.takeFrames(frames);
    }
    return frames;
  }

  /** Takes every whole frame out of the buffered chunks, or starts assembling a large one. */
  private takeFrames(frames: Frame[]): void {
    for (;;) {
      if (this.expected === null) {
        if (this.buffered < PREFIX_BYTES) return;
        this.expected = this.readPrefix(this.take(PREFIX_BYTES));
      }
      const { payload, header } = this.expected;
      if (this.buffered < payload) {
        if (payload >= ASSEMBLE_BYTES) {
          const into = Buffer.allocUnsafe(payload);
          const filled = this.buffered === 0 ? 0 : this.take(this.buffered).copy(into);
          this.assembly = { into, filled, header };
          this.expected = null;
        }
        return;
      }
      this.expected = null;
      frames.push(frameOf(this.take(payload), header));
    }
  }

  /** Copies a chunk into the payload being assembled; returns what is left of it, or null. */
  private assemble(chunk: Buffer, frames: Frame[]): Buffer | null {
    const assembly = this.assembly as NonNullable<FrameDecoder['assembly']>;
    const used = chunk.copy(assembly.into, assembly.filled, 0, assembly.into.length - assembly.filled);
    assembly.filled += used;
    if (assembly.filled < assembly.into.length) return null;
    this.assembly = null;
    frames.push(frameOf(assembly.into, assembly.header));
    return chunk.subarray(used);
  }

  private readPrefix(prefix: Buffer): { payload: number; header: number } {
    const payload = prefix.readUInt32BE(0);
    const header = prefix.readUInt32BE(4);
    const limit = this.firstFrame
      ? Math.min(this.maxFirstFrameBytes, this.maxFrameBytes)
      : this.maxFrameBytes;
    if (payload + PREFIX_BYTES > limit) {
      throw new DeskGridError(
        ErrorCode.Protocol,
        `${this.firstFrame ? 'first frame (the hello)' : 'frame'} of ${payload + PREFIX_BYTES} bytes is over the limit of ${limit}`,
      );
    }
    if (header < 2 || header > payload) {
      throw new DeskGridError(ErrorCode.Protocol, 'malformed frame: bad header length');
    }
    this.firstFrame = false;
    return { payload, header };
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

/** A whole payload as a frame: its JSON header checked, its body a view of the rest. */
function frameOf(payload: Buffer, headerBytes: number): Frame {
  let header: unknown;
  try {
    header = JSON.parse(payload.subarray(0, headerBytes).toString('utf8'));
  } catch {
    throw new DeskGridError(ErrorCode.Protocol, 'malformed frame: header is not JSON');
  }
  if (!isFrameHeader(header)) {
    throw new DeskGridError(
      ErrorCode.Protocol,
      'malformed frame: the header is not a JSON object with a string field "t"',
    );
  }
  return { header, body: payload.subarray(headerBytes) };
}

function isFrameHeader(header: unknown): header is FrameHeader {
  return (
    typeof header === 'object' &&
    header !== null &&
    !Array.isArray(header) &&
    typeof (header as { t?: unknown }).t === 'string'
  );
}
