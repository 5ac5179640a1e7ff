// How a job's input, return value and provisional values travel between nodes: v8's
// serialization (what structured cloning keeps: Maps, Dates, typed arrays, cycles), except that
// the bytes of every large Buffer or Uint8Array stay out of it and travel after it as they are.
// v8.serialize copies a buffer's bytes into a buffer it grows by doubling, on fresh memory: on
// this project's machines that cost more per megabyte than TLS itself (3 ms/MB, against 0.1 for
// a copy into memory already in use). Out of band, a buffer is not copied on its way out and
// arrives as a view of the frame it came in (decoding copies nothing either).
//
// Layout: [u8 FORMAT][u32 v8 length][u32 count][u32 length x count][v8 bytes][buffer bytes...].
// A value without Buffers or typed arrays (most small ones) goes as plain v8 bytes instead, which
// start with 0xFF: decoding tells the two apart by the first byte (and so reads the bodies a node
// journaled before this format existed).

import { DefaultDeserializer, DefaultSerializer, deserialize } from 'node:v8';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

const FORMAT = 1;
/** Buffers smaller than this are copied into the v8 bytes: a part of their own costs more. */
const OUT_OF_BAND_BYTES = 64 * 1024;

const INLINE = 0;
const OUT_OF_BAND_BUFFER = 1;
const OUT_OF_BAND_BYTES_VIEW = 2;

/** A value encoded for the wire: its parts, sent back to back, and their total size. */
export interface EncodedValue {
  parts: Buffer[];
  bytes: number;
}

type HostObject = NodeJS.TypedArray | DataView;

class OutOfBandSerializer extends DefaultSerializer {
  readonly buffers: Buffer[] = [];
  /** Whether any Buffer or typed array was written (the bytes are then not plain v8). */
  wroteHostObject = false;

  _writeHostObject(view: HostObject): void {
    this.wroteHostObject = true;
    if (view instanceof Uint8Array && view.byteLength >= OUT_OF_BAND_BYTES) {
      this.writeUint32(Buffer.isBuffer(view) ? OUT_OF_BAND_BUFFER : OUT_OF_BAND_BYTES_VIEW);
      this.writeUint32(this.buffers.length);
      this.buffers.push(Buffer.from(view.buffer, view.byteOffset, view.byteLength));
      return;
    }
    this.writeUint32(INLINE);
    (
      DefaultSerializer.prototype as unknown as { _writeHostObject(view: HostObject): void }
    )._writeHostObject.call(this, view);
  }
}

class OutOfBandDeserializer extends DefaultDeserializer {
  constructor(
    head: Buffer,
    private readonly buffers: readonly Buffer[],
  ) {
    super(head);
  }

  _readHostObject(): unknown {
    const kind = this.readUint32();
    if (kind === INLINE) {
      return (
        DefaultDeserializer.prototype as unknown as { _readHostObject(): unknown }
      )._readHostObject.call(this);
    }
    const buffer = this.buffers[this.readUint32()];
    if (buffer === undefined || (kind !== OUT_OF_BAND_BUFFER && kind !== OUT_OF_BAND_BYTES_VIEW)) {
      throw new DeskGridError(ErrorCode.Protocol, 'malformed value: a buffer reference points nowhere');
    }
    return kind === OUT_OF_BAND_BUFFER
      ? buffer
      : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
}

/** Encodes a value; throws (as v8.serialize does) when it cannot be cloned. */
export function encodeValue(value: unknown): EncodedValue {
  const serializer = new OutOfBandSerializer();
  serializer.writeHeader();
  serializer.writeValue(value);
  const v8Bytes = serializer.releaseBuffer();
  if (!serializer.wroteHostObject) return { parts: [v8Bytes], bytes: v8Bytes.length };
  const { buffers } = serializer;
  const head = Buffer.allocUnsafe(9 + 4 * buffers.length);
  head.writeUInt8(FORMAT, 0);
  head.writeUInt32BE(v8Bytes.length, 1);
  head.writeUInt32BE(buffers.length, 5);
  let bytes = head.length + v8Bytes.length;
  for (const [at, buffer] of buffers.entries()) {
    head.writeUInt32BE(buffer.length, 9 + 4 * at);
    bytes += buffer.length;
  }
  return { parts: [head, v8Bytes, ...buffers], bytes };
}

/** The value, or null when it cannot be encoded (a function, a symbol…). */
export function encodeValueOrNull(value: unknown): EncodedValue | null {
  try {
    return encodeValue(value);
  } catch {
    return null;
  }
}

/** Decodes what encodeValue made (or plain v8 bytes); a large buffer comes back as a view of `bytes`. */
export function decodeValue(bytes: Buffer): unknown {
  if (bytes[0] !== FORMAT) return deserialize(bytes);
  const malformed = () => new DeskGridError(ErrorCode.Protocol, 'malformed value: its lengths do not add up');
  if (bytes.length < 9) throw malformed();
  const v8Length = bytes.readUInt32BE(1);
  const count = bytes.readUInt32BE(5);
  let offset = 9 + 4 * count;
  if (offset > bytes.length || v8Length > bytes.length - offset) throw malformed();
  const head = bytes.subarray(offset, offset + v8Length);
  offset += v8Length;
  const buffers: Buffer[] = [];
  for (let at = 0; at < count; at += 1) {
    const length = bytes.readUInt32BE(9 + 4 * at);
    if (length > bytes.length - offset) throw malformed();
    buffers.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  if (offset !== bytes.length) throw malformed();
  const deserializer = new OutOfBandDeserializer(head, buffers);
  deserializer.readHeader();
  return deserializer.readValue();
}
