// Large byte arrays in the messages between the engine and a worker travel on a lane of their
// own: a plain byte stream beside the message channel. Node's structured-clone channel copies a
// buffer several times on each side and moves it in small writes, each waking the other process:
// measured here, 5 MB each way took 50-70 ms, against 20-24 ms as raw bytes on a socket. A
// message that holds a Uint8Array (or Buffer) of BULK_BYTES or more, in plain objects and arrays
// a few levels deep, goes as an envelope naming where each was and its size; the bytes follow on
// the lane, in the order of the envelopes. Where no lane exists (Electron's utilityProcess has
// none) messages go whole, as before.

/** Byte arrays at least this large take the lane. */
export const BULK_BYTES = 256 * 1024;
/** One part's size is refused above this (a hostile worker must not make the engine reserve more). */
export const MAX_BULK_PART_BYTES = 2 ** 31 - 1;
/** A message is searched this many objects and arrays deep at most. */
const MAX_DEPTH = 6;
/** ... and through this many values at most, so that a message of many small jobs costs little. */
const MAX_VISITED = 4096;
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface BulkPartRef {
  /** Where the bytes were: keys and indexes from the message's top. */
  path: Array<string | number>;
  size: number;
  /** A Node Buffer (else a plain Uint8Array). */
  buffer: boolean;
}

/** What travels on the message channel instead of a message with lane parts. */
export interface BulkEnvelope {
  t: 'bulk';
  message: unknown;
  parts: BulkPartRef[];
}

export interface Lifted {
  envelope: BulkEnvelope;
  bytes: Uint8Array[];
}

/**
 * Takes the large byte arrays out of a message: an envelope for the channel and the bytes for
 * the lane; null when the message has none. The message itself is not changed.
 */
export function liftBulk(message: unknown, isBuffer: (bytes: Uint8Array) => boolean): Lifted | null {
  const found: Array<{ path: Array<string | number>; bytes: Uint8Array }> = [];
  let visited = 0;
  // Every message to and from a worker is searched: one path, grown and shrunk as it goes, and
  // copied only for what is found.
  const path: Array<string | number> = [];
  const visit = (value: unknown): void => {
    visited += 1;
    if (visited > MAX_VISITED || value === null || typeof value !== 'object') return;
    if (value instanceof Uint8Array) {
      if (value.byteLength >= BULK_BYTES) found.push({ path: path.slice(), bytes: value });
      return;
    }
    if (path.length >= MAX_DEPTH) return;
    if (Array.isArray(value)) {
      for (let index = 0; index < value.length; index += 1) {
        path.push(index);
        visit(value[index]);
        path.pop();
      }
    } else if (isPlainObject(value)) {
      for (const key of Object.keys(value)) {
        if (UNSAFE_KEYS.has(key)) continue;
        path.push(key);
        visit(value[key]);
        path.pop();
      }
    }
  };
  visit(message);
  if (found.length === 0 || found.some(({ path }) => path.length === 0)) return null;
  let skeleton = message;
  for (const { path } of found) skeleton = replaceAt(skeleton, path, null);
  return {
    envelope: {
      t: 'bulk',
      message: skeleton,
      parts: found.map(({ path, bytes }) => ({ path, size: bytes.byteLength, buffer: isBuffer(bytes) })),
    },
    bytes: found.map(({ bytes }) => bytes),
  };
}

/**
 * Puts a message back together on the receiving side: channel messages in, whole messages out,
 * in the order they were sent. An envelope waits for its parts to come on the lane (they may
 * come before or after it); messages behind it wait too.
 */
export class BulkReceiver {
  private readonly queue: Array<{ message: unknown; parts: BulkPartRef[]; filled: Uint8Array[] }> = [];
  /** Lane bytes that came before the envelope saying what they are. */
  private early: Uint8Array[] = [];
  private current: { into: Uint8Array; at: number } | null = null;

  constructor(
    private readonly deliver: (message: unknown) => void,
    private readonly alloc: (size: number, buffer: boolean) => Uint8Array,
  ) {}

  /** A message from the channel; throws on an envelope that is malformed. */
  message(raw: unknown): void {
    if (!isEnvelope(raw)) {
      if (this.queue.length === 0) this.deliver(raw);
      else this.queue.push({ message: raw, parts: [], filled: [] });
      return;
    }
    checkEnvelope(raw);
    this.queue.push({ message: raw.message, parts: raw.parts, filled: [] });
    const early = this.early;
    this.early = [];
    for (const chunk of early) this.bytes(chunk);
    this.release();
  }

  /** Bytes from the lane. */
  bytes(chunk: Uint8Array): void {
    let rest = chunk;
    while (rest.byteLength > 0) {
      const waiting = this.queue.find((entry) => entry.filled.length < entry.parts.length);
      if (waiting === undefined) {
        this.early.push(rest);
        return;
      }
      const part = waiting.parts[waiting.filled.length] as BulkPartRef;
      this.current ??= { into: this.alloc(part.size, part.buffer), at: 0 };
      const take = Math.min(part.size - this.current.at, rest.byteLength);
      this.current.into.set(rest.subarray(0, take), this.current.at);
      this.current.at += take;
      rest = rest.subarray(take);
      if (this.current.at === part.size) {
        waiting.filled.push(this.current.into);
        this.current = null;
        this.release();
      }
    }
  }

  private release(): void {
    for (;;) {
      const head = this.queue[0];
      if (head === undefined || head.filled.length < head.parts.length) return;
      this.queue.shift();
      let message = head.message;
      for (const [at, part] of head.parts.entries()) message = replaceAt(message, part.path, head.filled[at]);
      this.deliver(message);
    }
  }
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A copy of `root` with the value at `path` replaced, copying only the objects along the path. */
function replaceAt(root: unknown, path: ReadonlyArray<string | number>, value: unknown): unknown {
  const [key, ...rest] = path;
  if (key === undefined) return value;
  if (Array.isArray(root)) {
    const copy: unknown[] = (root as unknown[]).slice();
    copy[key as number] = replaceAt(copy[key as number], rest, value);
    return copy;
  }
  const record = root as Record<string, unknown>;
  return { ...record, [key]: replaceAt(record[key], rest, value) };
}

function isEnvelope(raw: unknown): raw is BulkEnvelope {
  return typeof raw === 'object' && raw !== null && (raw as { t?: unknown }).t === 'bulk';
}

function checkEnvelope(envelope: BulkEnvelope): void {
  const ok =
    Array.isArray(envelope.parts) &&
    envelope.parts.length > 0 &&
    envelope.parts.every(
      (part) =>
        typeof part === 'object' &&
        part !== null &&
        Number.isInteger(part.size) &&
        part.size >= 0 &&
        part.size <= MAX_BULK_PART_BYTES &&
        typeof part.buffer === 'boolean' &&
        Array.isArray(part.path) &&
        part.path.length > 0 &&
        part.path.length <= MAX_DEPTH &&
        part.path.every(
          (key) =>
            (typeof key === 'string' && !UNSAFE_KEYS.has(key)) ||
            (typeof key === 'number' && Number.isInteger(key) && key >= 0),
        ),
    ) &&
    pathsLeadThroughPlainValues(envelope);
  if (!ok) throw new Error('malformed bulk envelope');
}

/** Each path must lead through objects and arrays of the message to a hole left for the part. */
function pathsLeadThroughPlainValues(envelope: BulkEnvelope): boolean {
  return envelope.parts.every((part) => {
    let at: unknown = envelope.message;
    for (const key of part.path.slice(0, -1)) {
      if (typeof at !== 'object' || at === null) return false;
      if (Array.isArray(at) ? typeof key !== 'number' || key >= at.length : !isPlainObject(at)) return false;
      at = (at as Record<string | number, unknown>)[key];
    }
    const last = part.path.at(-1) as string | number;
    return (
      typeof at === 'object' &&
      at !== null &&
      (Array.isArray(at) ? typeof last === 'number' && last < at.length : isPlainObject(at)) &&
      (at as Record<string | number, unknown>)[last] === null
    );
  });
}
