// The contract between DeskGrid nodes over the network (see docs/protocol.md for the prose).
// Every message is one frame: a JSON header validated by the schemas below, plus an optional
// binary body whose layout the header describes (values are v8-serialized; files are raw
// bytes, back to back, in the order the header lists them).
//
// A connection is mutual TLS 1.3. Each side's first frame is `hello`, carrying a proof that it
// knows the cluster's join code bound to this very TLS session; nothing else is accepted
// before both proofs check out.

import * as v from 'valibot';
import { plainText } from './display-text.js';
import { notSharingSchema } from './not-sharing.js';

export const WIRE_MAGIC = 'DESKGRID';
/**
 * 2: files, bundles and large results travel as chunked streams (see `chunk`); `results` groups small ones.
 * 3: large Buffers in values travel out of the v8 bytes (docs/protocol.md, Values); `load`, `run`
 *    jobs and the node's answers name a computation by `computation` (was `key`).
 */
export const WIRE_PROTOCOL_VERSION = 3;
/** Frames larger than this are refused before they are buffered (either side may announce less). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

const int = v.pipe(v.number(), v.integer());
const nonNegative = v.pipe(v.number(), v.integer(), v.minValue(0));
const sha256Hex = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
/** A name another node gives (its own, a peer's): shown to people, so stripped of control characters. */
const peerName = v.pipe(
  v.string(),
  v.maxLength(1024),
  v.transform((name) => plainText(name)),
);

/** A submitter's name for one of its batches, stable across its restarts. */
const batchKeySchema = v.pipe(v.string(), v.regex(/^[A-Za-z0-9-]{1,64}$/));

const jobErrorSchema = v.object({ code: v.string(), message: v.string(), stack: v.nullable(v.string()) });

/** A file inside a bundle or a job's outputs: a relative path with '/' separators. */
export const fileEntrySchema = v.object({ path: v.string(), size: nonNegative, mode: nonNegative });
export type FileEntry = v.InferOutput<typeof fileEntrySchema>;

export const helloSchema = v.object({
  t: v.literal('hello'),
  magic: v.string(),
  protocol: int,
  role: v.picklist(['submitter', 'node']),
  nodeId: sha256Hex,
  name: peerName,
  version: v.pipe(v.string(), v.maxLength(64)),
  maxFrameBytes: nonNegative,
  /** HMAC-SHA256 (hex) over the TLS session's exported keying material; see handshake.ts. */
  proof: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
});
export type Hello = v.InferOutput<typeof helloSchema>;

export const rejectSchema = v.object({ t: v.literal('reject'), code: v.string(), message: v.string() });

export const offerSchema = v.object({
  t: v.literal('offer'),
  cores: nonNegative,
  runtimes: v.array(v.string()),
  platform: peerName,
  arch: peerName,
  release: peerName,
  memoryMb: nonNegative,
  version: peerName,
  name: peerName,
  /** Cores running jobs right now. */
  busyCores: v.optional(nonNegative),
  /** The node's clock (ms since the epoch), so that submitters can tell a skewed one. */
  time: v.optional(v.number()),
  /**
   * Why the node runs none of this submitter's jobs now (cores 0, or every core busy with other
   * jobs), and until when if known; absent while it shares, and from older nodes.
   */
  notSharing: v.optional(notSharingSchema),
});
export type Offer = v.InferOutput<typeof offerSchema>;

const computationKindSchema = v.picklist(['module', 'program', 'python']);

/** The input of one remote job: a value (in the body) or a content-addressed file sent before. */
const remoteInputSchema = v.variant('kind', [
  v.object({ kind: v.literal('value'), bytes: nonNegative }),
  v.object({ kind: v.literal('file'), hash: sha256Hex, name: v.string() }),
]);

export const remoteJobSchema = v.object({
  id: int,
  /** The computation, as loaded on this connection with `load` (its id). */
  computation: v.string(),
  index: int,
  attempt: int,
  input: remoteInputSchema,
  timeoutMs: v.nullable(nonNegative),
  maxMemoryBytes: v.nullable(nonNegative),
});
export type RemoteJob = v.InferOutput<typeof remoteJobSchema>;

/**
 * Chunked streams, both ways: files, bundles and large results travel as a message that opens a
 * stream (it names the stream's id, chosen by its sender, and its size), then `chunk`s of at most
 * 1 MiB in order, then `stream-end` with the SHA-256 of every byte; the receiver verifies it before
 * anything is used. The sender keeps at most 8 MiB unacknowledged per connection; the receiver
 * acknowledges what it wrote (`stream-ack`), so neither side holds a large file in memory and
 * other messages pass between the chunks. `stream-ack` and `stream-stop` name a stream of the
 * side that receives them; `chunk`, `stream-end` and `stream-abort` one of the side that sends.
 */
const streamId = nonNegative;
const streamMessages = [
  /** Bytes `offset`.. of the stream, in the body. */
  v.object({ t: v.literal('chunk'), stream: streamId, offset: nonNegative }),
  v.object({ t: v.literal('stream-end'), stream: streamId, bytes: nonNegative, sha256: sha256Hex }),
  /** The sender gives the stream up (a file it cannot read any more): drop what came of it. */
  v.object({ t: v.literal('stream-abort'), stream: streamId, reason: v.pipe(v.string(), v.maxLength(4096)) }),
  /** The receiver wrote this many bytes of the stream: room for more. */
  v.object({ t: v.literal('stream-ack'), stream: streamId, bytes: nonNegative }),
  /** The receiver wants no more of the stream (its job was cancelled, or it failed). */
  v.object({ t: v.literal('stream-stop'), stream: streamId }),
] as const;
export type StreamMessage = v.InferOutput<(typeof streamMessages)[number]>;
const streamTypes: ReadonlySet<string> = new Set(streamMessages.map((schema) => schema.entries.t.literal));

/** Whether a checked message belongs to a chunked stream (both directions have the same five). */
export function isStreamMessage<M extends { t: string }>(message: M): message is Extract<M, StreamMessage> {
  return streamTypes.has(message.t);
}

/** Stops one job of `run` wherever it is; nodes act on it on arrival, ahead of queued work. */
export const cancelMessageSchema = v.object({ t: v.literal('cancel'), id: int });

export const toNodeSchema = v.variant('t', [
  v.object({
    t: v.literal('load'),
    /** The computation's id, which `run` jobs and the node's answers name it by. */
    computation: v.string(),
    bundle: sha256Hex,
    /** Entry file inside the bundle. */
    entry: v.string(),
    kind: computationKindSchema,
    /** Programs: the node picks the interpreter from the entry's #! line or extension, on its own PATH. */
    stdin: v.boolean(),
    /** Python: the function called per job. */
    function: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$/), v.maxLength(200))),
    /** Python: the submitter's interpreter; a node that lacks it uses its own python3. */
    python: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(4096))), v.maxLength(16))),
  }),
  /** Opens a stream of the bundle's files, back to back. */
  v.object({ t: v.literal('bundle'), bundle: sha256Hex, files: v.array(fileEntrySchema), stream: streamId }),
  /** Which of these input files does the node lack? Answered by `files-missing` with the same `request`. */
  v.object({ t: v.literal('have-files'), request: nonNegative, hashes: v.array(sha256Hex) }),
  /** Opens a stream of one input file's bytes; the node answers `stored` once it is verified. */
  v.object({ t: v.literal('file'), hash: sha256Hex, size: nonNegative, stream: streamId }),
  /**
   * Jobs to run; the body holds the value inputs back to back, `bytes` each. `batch` names the
   * submitter's batch when the node should finish these jobs and keep their results should the
   * submitter vanish (see `claim`); null: drop them with the connection.
   */
  v.object({
    t: v.literal('run'),
    batch: v.optional(v.nullable(batchKeySchema), null),
    jobs: v.array(remoteJobSchema),
  }),
  cancelMessageSchema,
  /**
   * These results are durable at the submitter: `ids` of `result`s, `kept` keys of `kept`s. The
   * node holds every result of a `run` with a batch until it is acknowledged.
   */
  v.object({
    t: v.literal('ack'),
    ids: v.pipe(v.array(int), v.maxLength(100_000)),
    kept: v.pipe(v.array(int), v.maxLength(100_000)),
  }),
  /**
   * The submitter (same node id) asks for what the node kept or still runs of one of its batches
   * from an earlier connection: it answers with a `kept` per result, then `claimed`.
   */
  v.object({ t: v.literal('claim'), batch: batchKeySchema }),
  ...streamMessages,
  v.object({ t: v.literal('ping') }),
  v.object({ t: v.literal('pong') }),
  v.object({ t: v.literal('bye') }),
]);
export type ToNode = v.InferOutput<typeof toNodeSchema>;

const resultFields = {
  ok: v.boolean(),
  /** How the job ended, when the node decided (timeout, memory, crash). */
  status: v.picklist(['done', 'failed', 'timeout', 'cancelled']),
  error: v.nullable(jobErrorSchema),
  stdout: v.string(),
  stderr: v.string(),
  exitCode: v.nullable(int),
  startedAt: v.nullable(v.number()),
  endedAt: v.number(),
  cpuMs: v.number(),
  /** v8-serialized value, first in the body. */
  valueBytes: nonNegative,
  /** Output files, after the value in the body. */
  outputs: v.array(fileEntrySchema),
};

export const remoteResultSchema = v.object({
  t: v.literal('result'),
  id: int,
  ...resultFields,
  /** A large result: its body (value, then output files) comes as this stream, not in this frame. */
  stream: v.optional(streamId),
});
export type RemoteResult = v.InferOutput<typeof remoteResultSchema>;

/**
 * Results of jobs that ended together, in one message: each as a `result` would carry it, their
 * bodies back to back in the same order (each `valueBytes` plus its outputs' sizes long).
 */
export const remoteResultsSchema = v.object({
  t: v.literal('results'),
  results: v.pipe(v.array(remoteResultSchema), v.minLength(1), v.maxLength(100_000)),
});

/**
 * A result the node kept for a batch of an earlier connection (the submitter vanished, or the
 * link broke), or of a job it still ran from one. `key` is what the submitter acknowledges.
 */
export const keptResultSchema = v.object({
  t: v.literal('kept'),
  key: int,
  batch: batchKeySchema,
  index: int,
  attempt: int,
  ...resultFields,
});
export type KeptResult = v.InferOutput<typeof keptResultSchema>;

const sharedPeerSchema = v.object({
  id: sha256Hex,
  name: peerName,
  host: v.pipe(v.string(), v.maxLength(255)),
  port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)),
});
export type SharedPeer = v.InferOutput<typeof sharedPeerSchema>;

export const fromNodeSchema = v.variant('t', [
  offerSchema,
  v.object({ t: v.literal('need-bundle'), computation: v.string(), bundle: sha256Hex }),
  v.object({ t: v.literal('loaded'), computation: v.string() }),
  v.object({ t: v.literal('load-error'), computation: v.string(), error: jobErrorSchema }),
  v.object({ t: v.literal('files-missing'), request: nonNegative, hashes: v.array(sha256Hex) }),
  /** The input file of the submitter's stream is stored and verified (error null), or why not. */
  v.object({ t: v.literal('stored'), stream: streamId, error: v.nullable(jobErrorSchema) }),
  remoteResultSchema,
  remoteResultsSchema,
  keptResultSchema,
  /**
   * The answer to `claim`, after its `kept` results: jobs of the batch still running here (their
   * results come as `kept`), and jobs this node lost (it restarted while they ran): run those again.
   */
  v.object({
    t: v.literal('claimed'),
    batch: batchKeySchema,
    running: v.pipe(v.array(int), v.maxLength(1_000_000)),
    lost: v.pipe(v.array(v.object({ index: int, reason: v.string() })), v.maxLength(1_000_000)),
  }),
  /** A job given back untried (the node is shutting down or lost it): run it elsewhere. */
  v.object({ t: v.literal('returned'), id: int, reason: v.string() }),
  v.object({ t: v.literal('progress'), id: int, fraction: v.number(), note: v.nullable(v.string()) }),
  /** v8-serialized value in the body. */
  v.object({ t: v.literal('provisional'), id: int }),
  v.object({ t: v.literal('log'), id: int, line: v.string() }),
  /**
   * Other nodes of the cluster this node knows (from its LAN view), for submitters whose network
   * drops multicast: they connect to each, pinned to its id, and still ask each for its proof.
   */
  v.object({ t: v.literal('peers'), nodes: v.pipe(v.array(sharedPeerSchema), v.maxLength(256)) }),
  ...streamMessages,
  v.object({ t: v.literal('ping') }),
  v.object({ t: v.literal('pong') }),
  v.object({ t: v.literal('bye') }),
]);
export type FromNode = v.InferOutput<typeof fromNodeSchema>;

/** Whether a relative path from the network stays inside the folder it is written to. */
export function isSafeRelativePath(path: string): boolean {
  if (path === '' || path.length > 4096 || path.includes('\0') || path.includes('\\')) return false;
  if (path.startsWith('/') || /^[a-zA-Z]:/.test(path)) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}
