// The frame decoder fed thousands of random and mutated byte streams (seeded, so a failure can
// be replayed): it either returns frames whose headers are objects with a string type, or throws
// a Protocol DeskGridError; it never throws anything else and never hands over a bad header.

import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { FrameDecoder, MAX_HELLO_FRAME_BYTES } from '../../../main/engine/transport/frame-codec.js';
import { OFFER_TEMPLATE, frameOf, fuzzFrame, pick, randomValue, seeded } from '../../support/fuzz.js';

const TEMPLATES = [
  {
    t: 'hello',
    magic: 'DESKGRID',
    protocol: 1,
    role: 'node',
    nodeId: 'ab'.repeat(32),
    name: 'n',
    version: '1',
    maxFrameBytes: 1000,
    proof: 'cd'.repeat(32),
  },
  OFFER_TEMPLATE,
  { t: 'run', batch: null, jobs: [] },
  { t: 'ping' },
];

describe('FrameDecoder under fuzzing', () => {
  it('returns typed headers or throws a Protocol error, for 5000 seeded streams', () => {
    const random = seeded(16);
    let frames = 0;
    let refused = 0;
    for (let round = 0; round < 5000; round++) {
      const decoder = new FrameDecoder(64 * 1024, round % 2 === 0 ? MAX_HELLO_FRAME_BYTES : 64 * 1024);
      const parts: Buffer[] = [];
      for (let n = 1 + Math.floor(random() * 4); n > 0; n--) {
        const kind = random();
        if (kind < 0.7) parts.push(fuzzFrame(random, TEMPLATES));
        else if (kind < 0.85) parts.push(frameOf(pick(random, [null, [], 7, 'x', true, { t: 5 }, {}])));
        else
          parts.push(
            Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256))),
          );
      }
      const stream = Buffer.concat(parts);
      // Flip a few bytes now and then, then feed it in random chunks.
      if (random() < 0.3)
        for (let flips = Math.floor(random() * 4); flips > 0 && stream.length > 0; flips--)
          stream[Math.floor(random() * stream.length)] = Math.floor(random() * 256);
      try {
        for (let at = 0; at < stream.length;) {
          const size = 1 + Math.floor(random() * 64);
          for (const frame of decoder.push(stream.subarray(at, at + size))) {
            frames += 1;
            expect(typeof frame.header).toBe('object');
            expect(frame.header).not.toBeNull();
            expect(Array.isArray(frame.header)).toBe(false);
            expect(typeof (frame.header as { t?: unknown }).t).toBe('string');
          }
          at += size;
        }
      } catch (error) {
        if (!(error instanceof DeskGridError)) throw error;
        expect(error.code).toBe(ErrorCode.Protocol);
        refused += 1;
      }
    }
    // Both outcomes happened many times: the fuzzing reached past the first check.
    expect(frames).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
    expect(randomValue(seeded(1))).toEqual(randomValue(seeded(1)));
  });

  it('refuses a header that is JSON null, an array, a number or lacks a string type', () => {
    for (const header of [null, [], 77, 'x', { t: 5 }, {}]) {
      const decoder = new FrameDecoder(1024);
      expect(() => decoder.push(frameOf(header))).toThrow(/not a JSON object with a string field "t"/);
    }
  });

  it('refuses a first frame over the hello limit from its prefix alone', () => {
    const decoder = new FrameDecoder(64 * 1024 * 1024, MAX_HELLO_FRAME_BYTES);
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32BE(60 * 1024 * 1024, 0);
    prefix.writeUInt32BE(100, 4);
    expect(() => decoder.push(prefix)).toThrow(/first frame \(the hello\) of .* is over the limit of 8192/);
  });
});
