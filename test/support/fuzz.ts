// Seeded random frames for the fuzz tests: a small PRNG (so a failure can be replayed from its
// seed), random JSON values, mutations of valid message headers (fields dropped, retyped, made
// huge or hostile), random bodies, and raw frame bytes for headers that are not objects.

import { serialize } from 'node:v8';
import { seededRandom } from '../../soak/schedule.js';

export type Random = () => number;

/** A valid `offer` header, a template for both sides' fuzzing. */
export const OFFER_TEMPLATE = {
  t: 'offer',
  cores: 1,
  runtimes: [],
  platform: 'linux',
  arch: 'x64',
  release: '6',
  memoryMb: 1,
  version: '1',
  name: 'n',
};

/** The soak's seeded generator (mulberry32), so a fuzz seed replays like a soak seed. */
export const seeded: (seed: number) => Random = seededRandom;

export function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

const STRINGS = [
  '',
  'k',
  '\u001b]0;owned\u0007\u001b[2J',
  '../../etc/passwd',
  'a'.repeat(300),
  '\u0000',
  'é😀',
];
const NUMBERS = [0, -1, 1, 1.5, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, 65536];

/** A random JSON value, nested at most `depth` deep. */
export function randomValue(random: Random, depth = 2): unknown {
  const kind = Math.floor(random() * (depth > 0 ? 7 : 5));
  switch (kind) {
    case 0:
      return null;
    case 1:
      return random() < 0.5;
    case 2:
      return pick(random, NUMBERS);
    case 3:
      return pick(random, STRINGS);
    case 4:
      return 'ab'.repeat(32);
    case 5:
      return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth - 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 4); i > 0; i--)
        object[pick(random, ['t', 'id', 'key', 'x'])] = randomValue(random, depth - 1);
      return object;
    }
  }
}

/** A valid header with one to three fields dropped, retyped or replaced by hostile values. */
export function mutate(random: Random, header: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(header);
  const keys = Object.keys(copy);
  for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
    const key = pick(random, keys);
    const action = random();
    if (action < 0.25) Reflect.deleteProperty(copy, key);
    else if (action < 0.9) copy[key] = randomValue(random);
    else copy[pick(random, ['extra', '__proto__', 'constructor'])] = randomValue(random);
  }
  return copy;
}

/** A body: empty, random bytes, or v8 data whole or cut short. */
export function randomBody(random: Random): Buffer {
  const choice = random();
  if (choice < 0.4) return Buffer.alloc(0);
  if (choice < 0.7)
    return Buffer.from(Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256)));
  const data = serialize(randomValue(random, 3));
  return random() < 0.5 ? data : data.subarray(0, Math.floor(random() * data.length));
}

/** One frame's bytes with any JSON header (object or not) and body. */
export function frameOf(header: unknown, body: Buffer = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header) ?? 'null');
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(json.length + body.length, 0);
  prefix.writeUInt32BE(json.length, 4);
  return Buffer.concat([prefix, json, body]);
}

/** A fuzzed frame: mostly a mutated template, sometimes a header that is no object at all. */
export function fuzzFrame(random: Random, templates: ReadonlyArray<Record<string, unknown>>): Buffer {
  const choice = random();
  if (choice < 0.08) return frameOf(randomValue(random), randomBody(random));
  const template = pick(random, templates);
  const header = choice < 0.2 ? template : mutate(random, template);
  return frameOf(header, randomBody(random));
}
