// The bulk lane's message side (shared/bulk-lane.ts): large byte arrays are lifted out of a
// message without changing it, put back where they were on the other side whether their bytes
// come before or after the envelope and in any chunking, messages keep their order, and an
// envelope that points anywhere but at a hole left in the message is refused.

import { describe, expect, it } from 'vitest';
import { BULK_BYTES, BulkReceiver, liftBulk, type BulkEnvelope } from '../../shared/bulk-lane.js';

const isBuffer = (bytes: Uint8Array): boolean => Buffer.isBuffer(bytes);
const alloc = (size: number, buffer: boolean): Uint8Array =>
  buffer ? Buffer.allocUnsafe(size) : new Uint8Array(size);

function receiver(): { got: unknown[]; receiver: BulkReceiver } {
  const got: unknown[] = [];
  return { got, receiver: new BulkReceiver((message) => got.push(message), alloc) };
}

/** Feeds the lane bytes in chunks of `size`. */
function feed(into: BulkReceiver, bytes: readonly Uint8Array[], size: number): void {
  const all = Buffer.concat(bytes);
  for (let at = 0; at < all.length; at += size) into.bytes(all.subarray(at, at + size));
}

describe('bulk lane', () => {
  const big = Buffer.alloc(BULK_BYTES, 1);
  const bytes = new Uint8Array(BULK_BYTES + 7).fill(2);
  const message = {
    t: 'runs',
    runs: [
      { id: 1, input: big },
      { id: 2, input: 'small' },
      { id: 3, input: { nested: [bytes], tiny: Buffer.from('x') } },
    ],
  };

  it('lifts large byte arrays out of a message without changing it', () => {
    const lifted = liftBulk(message, isBuffer);
    expect(lifted?.envelope.parts).toEqual([
      { path: ['runs', 0, 'input'], size: BULK_BYTES, buffer: true },
      { path: ['runs', 2, 'input', 'nested', 0], size: BULK_BYTES + 7, buffer: false },
    ]);
    expect(lifted?.bytes[0]).toBe(big);
    expect(message.runs[0]?.input).toBe(big);
    expect(liftBulk({ t: 'runs', runs: [{ input: Buffer.alloc(10) }] }, isBuffer)).toBeNull();
  });

  it('puts them back, bytes before or after the envelope, in any chunks, in order', () => {
    const lifted = liftBulk(message, isBuffer);
    if (lifted === null) throw new Error('nothing lifted');
    for (const [early, chunk] of [
      [false, 1000],
      [true, 65_536],
      [false, 10 * BULK_BYTES],
    ] as const) {
      const { got, receiver: into } = receiver();
      if (early) feed(into, lifted.bytes, chunk);
      into.message(lifted.envelope);
      into.message({ t: 'after' });
      if (!early) {
        expect(got).toEqual([]);
        feed(into, lifted.bytes, chunk);
      }
      expect(got).toHaveLength(2);
      const back = got[0] as typeof message;
      expect(Buffer.isBuffer(back.runs[0]?.input)).toBe(true);
      expect((back.runs[0]?.input as Buffer).equals(big)).toBe(true);
      expect(back.runs[1]?.input).toBe('small');
      const nested = (back.runs[2]?.input as { nested: Uint8Array[]; tiny: Buffer }).nested[0];
      expect(Buffer.isBuffer(nested)).toBe(false);
      expect(Buffer.from(nested as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
      expect(got[1]).toEqual({ t: 'after' });
    }
  });

  it('refuses an envelope that points anywhere but at a hole in its message', () => {
    const envelope = (parts: unknown, inner: unknown = { value: null }): BulkEnvelope =>
      ({ t: 'bulk', message: inner, parts }) as BulkEnvelope;
    for (const bad of [
      envelope([{ path: ['__proto__'], size: 1, buffer: true }]),
      envelope([{ path: ['value', 'constructor'], size: 1, buffer: true }]),
      envelope([{ path: ['value'], size: -1, buffer: true }]),
      envelope([{ path: ['value'], size: 2 ** 40, buffer: true }]),
      envelope([{ path: [], size: 1, buffer: true }]),
      envelope([{ path: ['elsewhere'], size: 1, buffer: true }]),
      envelope([{ path: ['value'], size: 1, buffer: true }], { value: 'taken' }),
      envelope('parts'),
      envelope([]),
    ]) {
      expect(() => receiver().receiver.message(bad)).toThrow(/malformed bulk envelope/);
    }
  });
});
