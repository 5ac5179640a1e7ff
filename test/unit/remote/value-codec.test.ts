// Values on the wire (main/engine/remote/value-codec.ts): everything v8 serialization keeps
// survives, a large Buffer or Uint8Array travels beside the v8 bytes without a copy either way,
// bodies in the older plain-v8 form (journaled before) still decode, and lengths that do not add
// up are Protocol errors, never a crash or a read past the body.

import { serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { decodeValue, encodeValue, encodeValueOrNull } from '../../../main/engine/remote/value-codec.js';

const BIG = 256 * 1024;

function roundTrip(value: unknown): unknown {
  return decodeValue(Buffer.concat(encodeValue(value).parts));
}

function protocolError(bytes: Buffer): DeskGridError {
  try {
    decodeValue(bytes);
  } catch (error) {
    return error as DeskGridError;
  }
  throw new Error('decodeValue accepted malformed bytes');
}

describe('value codec', () => {
  it('keeps what structured cloning keeps', () => {
    const value = {
      n: 42,
      text: 'héllo',
      when: new Date(1_700_000_000_000),
      map: new Map([['a', [1, 2, 3]]]),
      small: Buffer.from('tiny'),
      floats: new Float64Array([1.5, -2.25]),
      big: Buffer.alloc(BIG, 7),
      bytes: new Uint8Array(BIG).fill(9),
    };
    const back = roundTrip(value) as typeof value;
    expect(back.n).toBe(42);
    expect(back.text).toBe('héllo');
    expect(back.when.getTime()).toBe(1_700_000_000_000);
    expect(back.map.get('a')).toEqual([1, 2, 3]);
    expect(Buffer.isBuffer(back.small) && back.small.toString()).toBe('tiny');
    expect(back.floats).toBeInstanceOf(Float64Array);
    expect([...back.floats]).toEqual([1.5, -2.25]);
    expect(Buffer.isBuffer(back.big)).toBe(true);
    expect(back.big.equals(Buffer.alloc(BIG, 7))).toBe(true);
    expect(Buffer.isBuffer(back.bytes)).toBe(false);
    expect(back.bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(back.bytes).equals(Buffer.alloc(BIG, 9))).toBe(true);
    expect(roundTrip(null)).toBeNull();
    expect(roundTrip([undefined, 'x'])).toEqual([undefined, 'x']);
  });

  it('sends a large buffer as it is and decodes it as a view of the body', () => {
    const input = Buffer.alloc(BIG, 3);
    const shared = { a: input, again: input };
    const encoded = encodeValue(shared);
    // The buffer's own memory is one of the parts: nothing was copied to send it.
    expect(encoded.parts.some((part) => part.buffer === input.buffer && part.length === BIG)).toBe(true);
    expect(encoded.bytes).toBe(encoded.parts.reduce((sum, part) => sum + part.length, 0));
    expect(encoded.bytes).toBeLessThan(3 * BIG);
    const body = Buffer.concat(encoded.parts);
    const back = decodeValue(body) as { a: Buffer; again: Buffer };
    expect(back.a.buffer).toBe(body.buffer);
    expect(back.a).toBe(back.again);
    expect(back.a.equals(input)).toBe(true);
  });

  it('sends a value without buffers as plain v8 bytes', () => {
    const encoded = encodeValue({ n: 1, text: 'x', list: [1, 2] });
    expect(encoded.parts).toHaveLength(1);
    expect(encoded.parts[0]?.equals(serialize({ n: 1, text: 'x', list: [1, 2] }))).toBe(true);
    expect(roundTrip({ n: 1, text: 'x', list: [1, 2] })).toEqual({ n: 1, text: 'x', list: [1, 2] });
  });

  it('reads plain v8 bytes, as bodies journaled before this format', () => {
    expect(decodeValue(serialize({ old: Buffer.from('kept') }))).toEqual({ old: Buffer.from('kept') });
  });

  it('refuses lengths that do not add up', () => {
    const body = Buffer.concat(encodeValue({ big: Buffer.alloc(BIG, 1) }).parts);
    for (const bad of [
      body.subarray(0, body.length - 1),
      Buffer.concat([body, Buffer.from([0])]),
      body.subarray(0, 5),
      (() => {
        const copy = Buffer.from(body);
        copy.writeUInt32BE(0xffffffff, 5); // a count that would read far past the body
        return copy;
      })(),
    ]) {
      const error = protocolError(bad);
      expect(error).toBeInstanceOf(DeskGridError);
      expect(error.code).toBe(ErrorCode.Protocol);
    }
  });

  it('refuses a reference to a buffer that is not there', () => {
    const body = Buffer.concat(encodeValue({ big: Buffer.alloc(BIG, 1) }).parts);
    // The v8 bytes name buffer 0; announce no buffers and drop the one that followed.
    const forged = Buffer.from(body.subarray(0, body.length - BIG));
    forged.writeUInt32BE(0, 5);
    const v8Bytes = forged.subarray(13);
    const error = protocolError(Buffer.concat([forged.subarray(0, 9), v8Bytes]));
    expect(error.code).toBe(ErrorCode.Protocol);
    expect(error.message).toMatch(/points nowhere/);
  });

  it('gives null for a value that cannot be cloned', () => {
    expect(encodeValueOrNull({ f: () => 1 })).toBeNull();
    expect(() => encodeValue(Symbol('s'))).toThrow();
  });
});
