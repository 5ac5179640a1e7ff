// The frame codec (main/engine/transport/frame-codec.ts): frames survive any chunking of the
// stream, an oversized announcement is refused from its 8-byte prefix alone (before a byte of
// the payload is buffered), and malformed prefixes or headers are Protocol errors.

import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import {
  FrameDecoder,
  encodeFrame,
  frameSize,
  type Frame,
} from '../../../main/engine/transport/frame-codec.js';

const LIMIT = 1024 * 1024;

function bytesOf(header: object, body?: Buffer | readonly Buffer[]): Buffer {
  return Buffer.concat(encodeFrame(header, body));
}

/** An 8-byte prefix announcing `payload` bytes of which `header` are the header. */
function prefix(payload: number, header: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt32BE(payload, 0);
  bytes.writeUInt32BE(header, 4);
  return bytes;
}

function expectProtocolError(action: () => unknown, message: RegExp): void {
  let thrown: unknown = null;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(DeskGridError);
  expect((thrown as DeskGridError).code).toBe(ErrorCode.Protocol);
  expect((thrown as DeskGridError).message).toMatch(message);
}

describe('encodeFrame and FrameDecoder', () => {
  it('round-trips a frame without a body', () => {
    const decoder = new FrameDecoder(LIMIT);
    const frames = decoder.push(bytesOf({ t: 'ping' }));
    expect(frames).toHaveLength(1);
    expect(frames[0]?.header).toEqual({ t: 'ping' });
    expect(frames[0]?.body.length).toBe(0);
    expect(decoder.midFrame).toBe(false);
  });

  it('round-trips a frame with a body given as one buffer or as several', () => {
    const decoder = new FrameDecoder(LIMIT);
    const body = Buffer.from([0, 1, 2, 255, 254]);
    const one = decoder.push(bytesOf({ t: 'file', size: 5 }, body));
    expect(one[0]?.header).toEqual({ t: 'file', size: 5 });
    expect(one[0]?.body).toEqual(body);
    const parts = [Buffer.from('abc'), Buffer.alloc(0), Buffer.from('defg')];
    const many = decoder.push(bytesOf({ t: 'run', jobs: [] }, parts));
    expect(many[0]?.body.toString()).toBe('abcdefg');
  });

  it('keeps unicode in headers intact and counts the prefix in frameSize', () => {
    const header = { t: 'log', line: 'héllo wörld ✓ 日本' };
    const body = Buffer.from('xyz');
    const bytes = bytesOf(header, body);
    expect(frameSize(header, body.length)).toBe(bytes.length);
    expect(bytes.readUInt32BE(0)).toBe(bytes.length - 8);
    expect(new FrameDecoder(LIMIT).push(bytes)[0]?.header).toEqual(header);
  });

  it('decodes many frames arriving in one chunk, in order', () => {
    const decoder = new FrameDecoder(LIMIT);
    const chunk = Buffer.concat(
      Array.from({ length: 50 }, (_, n) => bytesOf({ t: 'n', n }, Buffer.alloc(n % 7, n))),
    );
    const frames = decoder.push(chunk);
    expect(frames.map((frame) => (frame.header as { n: number }).n)).toEqual(
      Array.from({ length: 50 }, (_, n) => n),
    );
    for (const [n, frame] of frames.entries()) expect(frame.body).toEqual(Buffer.alloc(n % 7, n));
    expect(decoder.midFrame).toBe(false);
  });

  it('reassembles large frames among small ones, whatever the chunk boundaries', () => {
    const big = (seed: number, size: number) => {
      const body = Buffer.allocUnsafe(size);
      for (let i = 0; i < size; i += 1) body[i] = (i * 31 + seed) & 0xff;
      return body;
    };
    const sent = [
      { header: { t: 'small', n: 0 }, body: Buffer.from('before') },
      { header: { t: 'big', n: 1 }, body: big(1, 300 * 1024) },
      { header: { t: 'small', n: 2 }, body: Buffer.alloc(0) },
      { header: { t: 'big', n: 3 }, body: big(3, 700 * 1024 + 5) },
      { header: { t: 'big', n: 4 }, body: big(4, 256 * 1024) },
      { header: { t: 'small', n: 5 }, body: Buffer.from('after') },
    ];
    const stream = Buffer.concat(sent.map(({ header, body }) => bytesOf(header, body)));
    for (const chunkSize of [1000, 16 * 1024, 65_537, 300 * 1024, stream.length]) {
      const decoder = new FrameDecoder(LIMIT);
      const frames: Frame[] = [];
      for (let at = 0; at < stream.length; at += chunkSize) {
        frames.push(...decoder.push(stream.subarray(at, at + chunkSize)));
      }
      expect(frames.map((frame) => frame.header)).toEqual(sent.map(({ header }) => header));
      for (const [at, frame] of frames.entries())
        expect(frame.body.equals(sent[at]?.body as Buffer)).toBe(true);
      expect(decoder.midFrame).toBe(false);
      expect(decoder.received).toBe(stream.length);
    }
    // Half of a large payload in: the connection's stall watch must see a frame on its way.
    const halfway = new FrameDecoder(LIMIT);
    expect(halfway.push(bytesOf({ t: 'big' }, big(9, 400 * 1024)).subarray(0, 200 * 1024))).toEqual([]);
    expect(halfway.midFrame).toBe(true);
  });

  it('reassembles frames split byte by byte', () => {
    const decoder = new FrameDecoder(LIMIT);
    const stream = Buffer.concat([
      bytesOf({ t: 'a' }, Buffer.from('first body')),
      bytesOf({ t: 'b' }),
      bytesOf({ t: 'c' }, Buffer.from([9, 8, 7])),
    ]);
    const frames: Frame[] = [];
    for (let at = 0; at < stream.length; at += 1) {
      const got = decoder.push(stream.subarray(at, at + 1));
      frames.push(...got);
      // Between frames nothing is pending; inside one, something is.
      if (at < stream.length - 1 && got.length === 0) expect(decoder.midFrame).toBe(true);
    }
    expect(frames.map((frame) => frame.header)).toEqual([{ t: 'a' }, { t: 'b' }, { t: 'c' }]);
    expect(frames[0]?.body.toString()).toBe('first body');
    expect(frames[2]?.body).toEqual(Buffer.from([9, 8, 7]));
    expect(decoder.midFrame).toBe(false);
  });

  it('returns a frame as soon as it is complete when the next one starts in the same chunk', () => {
    const decoder = new FrameDecoder(LIMIT);
    const first = bytesOf({ t: 'a' }, Buffer.from('12345'));
    const second = bytesOf({ t: 'b' }, Buffer.from('67890'));
    const got = decoder.push(Buffer.concat([first, second.subarray(0, 11)]));
    expect(got.map((frame) => frame.header)).toEqual([{ t: 'a' }]);
    expect(decoder.midFrame).toBe(true);
    const rest = decoder.push(second.subarray(11));
    expect(rest.map((frame) => frame.header)).toEqual([{ t: 'b' }]);
    expect(rest[0]?.body.toString()).toBe('67890');
  });

  it('accepts a frame exactly at the limit and refuses one byte more', () => {
    const header = { t: 'x' };
    const size = frameSize(header, 100);
    expect(new FrameDecoder(size).push(bytesOf(header, Buffer.alloc(100)))).toHaveLength(1);
    expectProtocolError(
      () => new FrameDecoder(size - 1).push(bytesOf(header, Buffer.alloc(100))),
      /over the limit/,
    );
  });
});

describe('FrameDecoder refuses', () => {
  it('an oversized frame from its prefix alone, before the payload arrives', () => {
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    // 1 GB announced; only the 8-byte prefix is pushed.
    expectProtocolError(() => decoder.push(prefix(1024 * 1024 * 1024, 10)), /over the limit/);
  });

  it('the largest announcement a u32 can make', () => {
    expectProtocolError(() => new FrameDecoder(LIMIT).push(prefix(0xffff_ffff, 2)), /over the limit/);
  });

  it('a header length of 0 or 1', () => {
    expectProtocolError(() => new FrameDecoder(LIMIT).push(prefix(10, 0)), /bad header length/);
    expectProtocolError(() => new FrameDecoder(LIMIT).push(prefix(10, 1)), /bad header length/);
  });

  it('a header longer than the payload', () => {
    expectProtocolError(() => new FrameDecoder(LIMIT).push(prefix(10, 11)), /bad header length/);
    expectProtocolError(() => new FrameDecoder(LIMIT).push(prefix(0, 2)), /bad header length/);
  });

  it('a header that is not JSON', () => {
    const header = Buffer.from('{not json');
    const bytes = Buffer.concat([prefix(header.length, header.length), header]);
    expectProtocolError(() => new FrameDecoder(LIMIT).push(bytes), /not JSON/);
  });

  it('a header that is cut inside a multi-byte JSON value', () => {
    // The header length covers only part of the JSON text; the rest counts as body.
    const json = Buffer.from('{"t":"ping"}');
    const bytes = Buffer.concat([prefix(json.length, 5), json]);
    expectProtocolError(() => new FrameDecoder(LIMIT).push(bytes), /not JSON/);
  });
});

describe('FrameDecoder.midFrame', () => {
  it('is false when idle, true once part of a frame came, false again when it is complete', () => {
    const decoder = new FrameDecoder(LIMIT);
    const bytes = bytesOf({ t: 'file' }, Buffer.alloc(32, 1));
    expect(decoder.midFrame).toBe(false);
    decoder.push(bytes.subarray(0, 3));
    expect(decoder.midFrame).toBe(true);
    decoder.push(bytes.subarray(3, 20));
    expect(decoder.midFrame).toBe(true);
    expect(decoder.push(bytes.subarray(20))).toHaveLength(1);
    expect(decoder.midFrame).toBe(false);
  });

  it('is true after exactly the 8-byte prefix, while the payload has not come', () => {
    const decoder = new FrameDecoder(LIMIT);
    const bytes = bytesOf({ t: 'file' }, Buffer.alloc(32, 1));
    expect(decoder.push(bytes.subarray(0, 8))).toEqual([]);
    // A peer that stops right after announcing a frame is in the middle of a message.
    expect(decoder.midFrame).toBe(true);
    expect(decoder.push(bytes.subarray(8))).toHaveLength(1);
    expect(decoder.midFrame).toBe(false);
  });
});
