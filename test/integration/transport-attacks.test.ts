// Attacks on a serving node, on 127.0.0.1 only: a wrong join code, a client without a
// certificate, a man in the middle, replayed and reflected hellos, garbage, truncated, oversized
// and stalled frames, bundles and inputs that try to leave their folders, outputs that are
// symbolic links, results over the submitter's limit. Each attack must be refused, and after
// each one an honest submitter still gets correct results from the same node.

import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { serialize } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, DeskGridError, ErrorCode, type Batch, type JobResult } from '../../main/engine/index.js';
import { proofKey } from '../../main/engine/identity/cluster-key.js';
import { loadIdentity, type NodeIdentity } from '../../main/engine/identity/node-identity.js';
import { hashFileSet, type FileSet } from '../../main/engine/remote/file-set.js';
import { KEPT_DATABASE } from '../../main/engine/remote/kept-results.js';
import { FrameDecoder, encodeFrame, type Frame } from '../../main/engine/transport/frame-codec.js';
import { computeProof, exportKeyingMaterial } from '../../main/engine/transport/handshake.js';
import { PeerConnection, peerCertificateId } from '../../main/engine/transport/peer-connection.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { withoutSandbox } from '../support/served-node.js';
import { streamMessages, type WireMessage } from '../support/stream-frames.js';
import { until } from '../support/until.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  WIRE_MAGIC,
  WIRE_PROTOCOL_VERSION,
  type FileEntry,
} from '../../shared/wire-protocol.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/engine/', import.meta.url));
const CODE = generateJoinCode();
const OTHER_CODE = generateJoinCode();

let work = '';
let nodeHome = '';
let submitterHome = '';
let node: Cluster;
let port = 0;
/** The honest submitter's identity (the one its Cluster uses), an attacker's, a relay's. */
let honest: NodeIdentity;
let attacker: NodeIdentity;
let relayIdentity: NodeIdentity;

beforeAll(async () => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-attacks-')));
  nodeHome = join(work, 'node-home');
  submitterHome = join(work, 'submitter-home');
  honest = loadIdentity(submitterHome).identity;
  attacker = loadIdentity(join(work, 'attacker-home')).identity;
  relayIdentity = loadIdentity(join(work, 'relay-home')).identity;
  // Unconfined: the side-effect job must be able to leave its marker outside its folder.
  node = await withoutSandbox(() =>
    Cluster.start({
      home: nodeHome,
      cores: 1,
      secret: CODE,
      serve: { host: '127.0.0.1', port: 0, unconfinedJobs: 'accept' },
    }),
  );
  const address = node.address;
  if (address === null) throw new Error('the node does not serve');
  expect(address.host).toBe('127.0.0.1');
  port = address.port;
});

afterAll(async () => {
  await node.destroy();
  rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Helpers.

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function typeOf(header: unknown): unknown {
  return (header as { t?: unknown } | null)?.t;
}

/** Results in these headers: one per `result`, and each of a `results` (jobs that ended together). */
function resultCount(headers: readonly unknown[]): number {
  let count = 0;
  for (const header of headers) {
    if (typeOf(header) === 'result') count += 1;
    else if (typeOf(header) === 'results') count += (header as { results: unknown[] }).results.length;
  }
  return count;
}

function isReject(header: unknown, code?: string): boolean {
  return typeOf(header) === 'reject' && (code === undefined || (header as { code?: unknown }).code === code);
}

function collect(batch: Batch): JobResult[] {
  const results: JobResult[] = [];
  batch.on('result', (result) => results.push(result));
  return results;
}

function byIndex(results: readonly JobResult[]): JobResult[] {
  return [...results].sort((a, b) => a.index - b.index);
}

async function startSubmitter(
  peer = `127.0.0.1:${port}`,
  options: { secret?: string; maxFrameBytes?: number } = {},
): Promise<Cluster> {
  return Cluster.start({
    home: submitterHome,
    local: false,
    secret: options.secret ?? CODE,
    peers: [peer],
    ...(options.maxFrameBytes === undefined ? {} : { maxFrameBytes: options.maxFrameBytes }),
  });
}

/** An honest submitter still gets correct results from the node, computed there. */
async function expectNodeStillServes(): Promise<void> {
  const submitter = await startSubmitter();
  try {
    const batch = submitter.submit({ computation: join(FIXTURES, 'double.mjs'), inputs: [1, 2, 3, 21] });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 4, done: 4, ok: true });
    expect(byIndex(results).map((result) => result.value)).toEqual([2, 4, 6, 42]);
    for (const result of results) expect(result.node).toBe(node.nodeId);
  } finally {
    await submitter.close();
  }
}

async function startRejection(start: Promise<Cluster>): Promise<DeskGridError> {
  const outcome = await start.then(
    async (cluster) => {
      await cluster.destroy();
      return null;
    },
    (error: unknown) => error,
  );
  if (!(outcome instanceof DeskGridError))
    throw new Error(`expected a DeskGridError, got ${String(outcome)}`);
  return outcome;
}

/** A TLS connection to `targetPort` on 127.0.0.1, with the given certificate or none. */
function rawTls(keys: NodeIdentity | null, targetPort = port): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: targetPort,
      ...(keys === null ? {} : { cert: keys.certPem, key: keys.keyPem }),
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

interface Observed {
  frames: Frame[];
  /** Resolves with the time the connection closed. */
  closed: Promise<number>;
  isClosed(): boolean;
}

/** Records every frame the other side sends, and when it closes. */
function observe(socket: Socket): Observed {
  const decoder = new FrameDecoder(DEFAULT_MAX_FRAME_BYTES);
  const frames: Frame[] = [];
  let closedAt: number | null = null;
  socket.on('data', (chunk: Buffer) => {
    try {
      frames.push(...decoder.push(chunk));
    } catch {
      // the node only sends frames; a broken one would show in the assertions
    }
  });
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => {
      closedAt = Date.now();
      resolve(closedAt);
    }),
  );
  return { frames, closed, isClosed: () => closedAt !== null };
}

async function closedWithin(observed: Observed, ms: number): Promise<number> {
  const timer = sleep(ms).then(() => null);
  const at = await Promise.race([observed.closed, timer]);
  if (at === null) throw new Error(`the node kept the connection open for more than ${ms} ms`);
  return at;
}

/** A hello for this socket, as `identity` would send it with `key`. */
function helloFor(
  socket: TLSSocket,
  identity: NodeIdentity,
  key: Buffer,
  role: 'submitter' | 'node' = 'submitter',
) {
  const receiverId = peerCertificateId(socket);
  if (receiverId === null) throw new Error('the node presented no certificate');
  return {
    t: 'hello',
    magic: WIRE_MAGIC,
    protocol: WIRE_PROTOCOL_VERSION,
    role,
    nodeId: identity.id,
    name: 'attacker',
    version: '0.1.0',
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    proof: computeProof({
      proofKey: key,
      role,
      keyingMaterial: exportKeyingMaterial(socket),
      senderId: identity.id,
      receiverId,
    }),
  };
}

function frameBytes(header: object, body?: Buffer | readonly Buffer[]): Buffer {
  return Buffer.concat(encodeFrame(header, body));
}

function fileSet(files: Record<string, string>): FileSet {
  const set: FileSet = { files: [], data: [] };
  for (const [path, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    set.files.push({ path, size: data.length, mode: 0o644 });
    set.data.push(data);
  }
  return set;
}

/** A module that leaves a file behind when it runs: the proof that a job ran. */
const SIDE_EFFECT_MODULE =
  "import { writeFileSync } from 'node:fs';\n" +
  "export default (path) => { writeFileSync(path, 'ran'); return 'ran'; };\n";

/** load + bundle + run of the side-effect module, as frames, for a raw connection. */
function sideEffectFrames(marker: string): Buffer {
  const set = fileSet({ 'main.mjs': SIDE_EFFECT_MODULE });
  const bundle = hashFileSet(set);
  const input = serialize(marker);
  return Buffer.concat([
    frameBytes({
      t: 'load',
      computation: 'side-effect',
      bundle,
      entry: 'main.mjs',
      kind: 'module',
      stdin: false,
    }),
    ...streamMessages({ t: 'bundle', bundle, files: set.files, stream: 1 }, Buffer.concat(set.data)).map(
      ([header, body]) => frameBytes(header, body),
    ),
    frameBytes(
      {
        t: 'run',
        jobs: [
          {
            id: 1,
            computation: 'side-effect',
            index: 0,
            attempt: 1,
            input: { kind: 'value', bytes: input.length },
            timeoutMs: null,
            maxMemoryBytes: null,
          },
        ],
      },
      input,
    ),
  ]);
}

interface RawSession {
  connection: PeerConnection;
  messages: Frame[];
  closed: Promise<DeskGridError | null>;
}

/** Asks the node to load a module from `bundle` and waits until it asks for the bundle's files. */
async function requestLoad(session: RawSession, bundle: string): Promise<void> {
  session.connection.send({
    t: 'load',
    computation: 'k',
    bundle,
    entry: 'main.mjs',
    kind: 'module',
    stdin: false,
  });
  await until(
    () => session.messages.some((message) => typeOf(message.header) === 'need-bundle'),
    'need-bundle',
    3000,
  );
}

/** A proven connection built by hand, as a malicious member of the cluster would hold. */
async function rawSession(identity: NodeIdentity = attacker): Promise<RawSession> {
  const socket = await rawTls(identity);
  const connection = await PeerConnection.establish(socket, {
    role: 'submitter',
    identity: { id: identity.id, name: 'attacker', version: '0.1.0' },
    proofKey: proofKey(CODE),
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  });
  const messages: Frame[] = [];
  connection.on('message', (header, body) => messages.push({ header, body }));
  const closed = new Promise<DeskGridError | null>((resolve) => connection.once('close', resolve));
  await until(() => messages.some((message) => typeOf(message.header) === 'offer'), 'the offer', 5000);
  return { connection, messages, closed };
}

/** A proven raw session with `source` loaded as computation `k` (sent as a bundle). */
async function loadedSession(source: string): Promise<RawSession> {
  const session = await rawSession();
  const set = fileSet({ 'main.mjs': source });
  const bundle = hashFileSet(set);
  await requestLoad(session, bundle);
  sendAll(
    session,
    streamMessages({ t: 'bundle', bundle, files: set.files, stream: 1 }, Buffer.concat(set.data)),
  );
  await until(() => session.messages.some((message) => typeOf(message.header) === 'loaded'), 'loaded', 5000);
  return session;
}

async function expectSessionRefused(session: RawSession, message: RegExp): Promise<void> {
  await Promise.race([
    session.closed,
    sleep(5000).then(() => {
      throw new Error('the node did not close the connection');
    }),
  ]);
  const reject = session.messages.find((frame) => isReject(frame.header));
  expect(reject?.header).toMatchObject({ t: 'reject', code: ErrorCode.Protocol });
  expect((reject?.header as { message: string }).message).toMatch(message);
}

function sendAll(session: RawSession, messages: WireMessage[]): void {
  for (const [header, body] of messages) session.connection.send(header, body);
}

/** Every path below `root`, '/'-separated. */
function tree(root: string): string[] {
  if (!existsSync(root)) return [];
  return (readdirSync(root, { recursive: true }) as string[]).map((path) => path.split('\\').join('/'));
}

interface Relay {
  port: number;
  /** Frame headers as they came from each side (before any rewriting). */
  fromSubmitter: unknown[];
  fromNode: unknown[];
  close(): Promise<void>;
}

/**
 * A man in the middle on 127.0.0.1 with its own certificate: it completes TLS with the
 * submitter, opens its own TLS connection to the node, and relays the decrypted streams.
 * With `rewriteIdsTo`, it also rewrites the id in each hello to its own, so that the ids match
 * the certificate each side sees and only the proofs can give it away.
 */
async function startRelay(identity: NodeIdentity, rewriteIdsTo: string | null): Promise<Relay> {
  const sockets = new Set<TLSSocket>();
  const fromSubmitter: unknown[] = [];
  const fromNode: unknown[] = [];
  const server = createTlsServer({
    cert: identity.certPem,
    key: identity.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  const pipe = (from: TLSSocket, to: TLSSocket, log: unknown[]) => {
    const decoder = new FrameDecoder(DEFAULT_MAX_FRAME_BYTES);
    from.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        from.destroy();
        to.destroy();
        return;
      }
      for (const frame of frames) log.push(frame.header);
      if (rewriteIdsTo === null) {
        to.write(chunk);
        return;
      }
      for (const frame of frames) {
        const header =
          typeOf(frame.header) === 'hello'
            ? { ...(frame.header as object), nodeId: rewriteIdsTo }
            : frame.header;
        for (const part of encodeFrame(header as object, frame.body)) to.write(part);
      }
    });
    from.on('end', () => to.end());
    from.on('close', () => setTimeout(() => to.destroy(), 1000).unref());
  };
  server.on('secureConnection', (client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.pause();
    const upstream = tlsConnect({
      host: '127.0.0.1',
      port,
      cert: identity.certPem,
      key: identity.keyPem,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    upstream.once('secureConnect', () => {
      pipe(client, upstream, fromSubmitter);
      pipe(upstream, client, fromNode);
      client.resume();
    });
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the relay has no port');
  return {
    port: address.port,
    fromSubmitter,
    fromNode,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------

describe('a serving node on 127.0.0.1', () => {
  it('serves an honest submitter', async () => {
    await expectNodeStillServes();
    expect(node.stats()).toMatchObject({ busyCores: 0, batches: 0 });
  });

  it('refuses a submitter with the wrong join code, and runs nothing for it', async () => {
    const error = await startRejection(startSubmitter(undefined, { secret: OTHER_CODE }));
    expect(error.code).toBe(ErrorCode.Auth);
    expect(error.message).toContain('wrong join code');
    expect(error.message).toContain(`127.0.0.1:${port}`);

    // The same with a client that sends its work right behind its hello, in one write, hoping
    // that the node reads it before it has checked the proof.
    const marker = join(work, 'wrong-code-ran.txt');
    const socket = await rawTls(attacker);
    const observed = observe(socket);
    socket.write(
      Buffer.concat([frameBytes(helloFor(socket, attacker, proofKey(OTHER_CODE))), sideEffectFrames(marker)]),
    );
    await closedWithin(observed, 3000);
    expect(observed.frames.map((frame) => typeOf(frame.header))).toEqual(['hello', 'reject']);
    expect(observed.frames[1]?.header).toMatchObject({ code: ErrorCode.Auth });
    expect((observed.frames[1]?.header as { message: string }).message).toContain('wrong join code');
    await sleep(300);
    expect(node.stats().busyCores).toBe(0);
    expect(node.stats().submitters).toBe(0);
    expect(existsSync(marker)).toBe(false);

    await expectNodeStillServes();
    expect(existsSync(marker)).toBe(false);
  });

  it('runs the same pipelined work for a client with the right code (the control for the test above)', async () => {
    const marker = join(work, 'right-code-ran.txt');
    const socket = await rawTls(attacker);
    const observed = observe(socket);
    socket.write(
      Buffer.concat([frameBytes(helloFor(socket, attacker, proofKey(CODE))), sideEffectFrames(marker)]),
    );
    await until(() => observed.frames.some((frame) => typeOf(frame.header) === 'result'), 'a result', 10_000);
    const types = observed.frames.map((frame) => typeOf(frame.header));
    expect(types.slice(0, 2)).toEqual(['hello', 'offer']);
    expect(types).toContain('loaded');
    expect(observed.frames.find((frame) => typeOf(frame.header) === 'result')?.header).toMatchObject({
      ok: true,
      status: 'done',
    });
    expect(existsSync(marker)).toBe(true);
    socket.end(frameBytes({ t: 'bye' }));
    await closedWithin(observed, 3000);
    await expectNodeStillServes();
  });

  it('refuses a TLS client that presents no certificate', async () => {
    const socket = await rawTls(null);
    const observed = observe(socket);
    // Whatever it sends, the node reads none of it.
    socket.write(frameBytes(helloFor(socket, attacker, proofKey(CODE))));
    await closedWithin(observed, 3000);
    for (const frame of observed.frames) expect(typeOf(frame.header)).toBe('reject');
    if (observed.frames[0]) expect(observed.frames[0].header).toMatchObject({ code: ErrorCode.Identity });
    expect(node.stats().submitters).toBe(0);
    await expectNodeStillServes();
  });

  it('refuses a client that is not TLS at all', async () => {
    const socket = netConnect({ host: '127.0.0.1', port });
    const observed = observe(socket);
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    await closedWithin(observed, 3000);
    expect(observed.frames).toEqual([]);
    await expectNodeStillServes();
  });

  describe('a man in the middle with its own certificate', () => {
    it('fails the proofs on both legs when it passes the ids along to match its certificate', async () => {
      const relay = await startRelay(relayIdentity, relayIdentity.id);
      try {
        const error = await startRejection(startSubmitter(`127.0.0.1:${relay.port}`));
        expect(error.code).toBe(ErrorCode.Auth);
        expect(error.message).toContain('wrong join code');
        // The node refused the relay's leg: the submitter's proof, forwarded, fails there.
        await until(() => relay.fromNode.some((header) => isReject(header)), "the node's refusal", 3000);
        expect(relay.fromNode.map(typeOf)).toEqual(['hello', 'reject']);
        expect(relay.fromNode[1]).toMatchObject({ code: ErrorCode.Auth });
        // And the submitter refused the node's proof, forwarded on its own leg.
        await until(
          () => relay.fromSubmitter.some((header) => isReject(header)),
          "the submitter's refusal",
          3000,
        );
        expect(relay.fromSubmitter.map(typeOf)).toEqual(['hello', 'reject']);
        expect(relay.fromSubmitter[0]).toMatchObject({ t: 'hello', nodeId: honest.id });
        expect(relay.fromSubmitter[1]).toMatchObject({ code: ErrorCode.Auth });
        expect(node.stats().submitters).toBe(0);
      } finally {
        await relay.close();
      }
      await expectNodeStillServes();
    });

    it('is caught by the certificate when it relays the hellos untouched', async () => {
      const relay = await startRelay(relayIdentity, null);
      try {
        const socket = await rawTls(honest, relay.port);
        const error = await PeerConnection.establish(socket, {
          role: 'submitter',
          identity: { id: honest.id, name: 'honest', version: '0.1.0' },
          proofKey: proofKey(CODE),
          maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
        }).then(
          () => null,
          (thrown: unknown) => thrown,
        );
        expect(error).toBeInstanceOf(DeskGridError);
        expect((error as DeskGridError).code).toBe(ErrorCode.Identity);
        await until(() => relay.fromNode.some((header) => isReject(header)), "the node's refusal", 3000);
        expect(relay.fromNode.find((header) => isReject(header))).toMatchObject({ code: ErrorCode.Identity });

        // The Cluster API does not use the node through it either.
        const refused = await startRejection(startSubmitter(`127.0.0.1:${relay.port}`));
        expect(refused.message).toMatch(/certificate/);
      } finally {
        await relay.close();
      }
      await expectNodeStillServes();
    });

    it('is caught as another node when the submitter pins the node id', async () => {
      const relay = await startRelay(relayIdentity, relayIdentity.id);
      try {
        const socket = await rawTls(honest, relay.port);
        const error = await PeerConnection.establish(socket, {
          role: 'submitter',
          identity: { id: honest.id, name: 'honest', version: '0.1.0' },
          proofKey: proofKey(CODE),
          maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
          expectPeerId: node.nodeId,
        }).then(
          () => null,
          (thrown: unknown) => thrown,
        );
        expect(error).toBeInstanceOf(DeskGridError);
        expect((error as DeskGridError).code).toBe(ErrorCode.Identity);
        expect((error as DeskGridError).message).toContain(node.nodeId.slice(0, 8));
      } finally {
        await relay.close();
      }
      await expectNodeStillServes();
    });
  });

  describe('a replayed or reflected handshake', () => {
    /** The honest submitter's hello bytes from a real, accepted connection to the node. */
    async function captureHonestHello(): Promise<Buffer> {
      const socket = await rawTls(honest);
      const written: Buffer[] = [];
      const write = socket.write.bind(socket);
      socket.write = (chunk: Buffer) => {
        written.push(Buffer.from(chunk));
        return write(chunk);
      };
      const connection = await PeerConnection.establish(socket, {
        role: 'submitter',
        identity: { id: honest.id, name: 'honest', version: '0.1.0' },
        proofKey: proofKey(CODE),
        maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      });
      const closed = new Promise<void>((resolve) => connection.once('close', () => resolve()));
      connection.close();
      await closed;
      const frames = new FrameDecoder(DEFAULT_MAX_FRAME_BYTES).push(Buffer.concat(written));
      expect(frames[0]?.header).toMatchObject({ t: 'hello', nodeId: honest.id, role: 'submitter' });
      return frameBytes(frames[0]?.header as object);
    }

    it('refuses a recorded hello replayed with another certificate', async () => {
      const hello = await captureHonestHello();
      const socket = await rawTls(attacker);
      const observed = observe(socket);
      socket.write(hello);
      await closedWithin(observed, 3000);
      const reject = observed.frames.find((frame) => isReject(frame.header));
      expect([ErrorCode.Identity, ErrorCode.Auth]).toContain((reject?.header as { code: string }).code);
      expect(node.stats().submitters).toBe(0);
      await expectNodeStillServes();
    });

    it('refuses a recorded hello replayed with the same certificate: the session differs', async () => {
      const hello = await captureHonestHello();
      const socket = await rawTls(honest);
      const observed = observe(socket);
      socket.write(hello);
      await closedWithin(observed, 3000);
      expect(observed.frames.map((frame) => typeOf(frame.header))).toEqual(['hello', 'reject']);
      expect(observed.frames[1]?.header).toMatchObject({ code: ErrorCode.Auth });
      expect(node.stats().submitters).toBe(0);
      await expectNodeStillServes();
    });

    it("refuses the node's own hello reflected back at it", async () => {
      const socket = await rawTls(attacker);
      const observed = observe(socket);
      await until(() => observed.frames.length > 0, "the node's hello", 3000);
      const nodeHello = observed.frames[0]?.header as object;
      expect(nodeHello).toMatchObject({ t: 'hello', role: 'node', nodeId: node.nodeId });
      socket.write(frameBytes(nodeHello));
      await closedWithin(observed, 3000);
      expect(observed.frames[1]?.header).toMatchObject({ t: 'reject', code: ErrorCode.Identity });

      // With the id changed to match the certificate, the proof still names the wrong sender.
      const second = await rawTls(attacker);
      const observedSecond = observe(second);
      await until(() => observedSecond.frames.length > 0, "the node's hello", 3000);
      second.write(frameBytes({ ...(observedSecond.frames[0]?.header as object), nodeId: attacker.id }));
      await closedWithin(observedSecond, 3000);
      expect(observedSecond.frames[1]?.header).toMatchObject({ t: 'reject', code: ErrorCode.Auth });
      await expectNodeStillServes();
    });
  });

  describe('broken frames before the handshake', () => {
    it('closes promptly on garbage after TLS', async () => {
      const socket = await rawTls(attacker);
      const observed = observe(socket);
      const sentAt = Date.now();
      socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const closedAt = await closedWithin(observed, 3000);
      expect(closedAt - sentAt).toBeLessThan(2000);
      expect(observed.frames.find((frame) => isReject(frame.header))?.header).toMatchObject({
        code: ErrorCode.Protocol,
      });
      await expectNodeStillServes();
    });

    it('closes promptly on a frame that is not JSON', async () => {
      const socket = await rawTls(attacker);
      const observed = observe(socket);
      const junk = Buffer.from('\u0000\u0001not json at all');
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32BE(junk.length, 0);
      prefix.writeUInt32BE(junk.length, 4);
      socket.write(Buffer.concat([prefix, junk]));
      await closedWithin(observed, 3000);
      expect(observed.frames.find((frame) => isReject(frame.header))?.header).toMatchObject({
        code: ErrorCode.Protocol,
      });
      await expectNodeStillServes();
    });

    it('drops a truncated frame followed by a close', async () => {
      const socket = await rawTls(attacker);
      const observed = observe(socket);
      const hello = frameBytes(helloFor(socket, attacker, proofKey(CODE)));
      const sentAt = Date.now();
      socket.end(hello.subarray(0, Math.floor(hello.length / 2)));
      const closedAt = await closedWithin(observed, 3000);
      expect(closedAt - sentAt).toBeLessThan(2000);
      expect(node.stats().submitters).toBe(0);
      await expectNodeStillServes();
    });

    it('refuses an oversized frame from its length prefix alone', async () => {
      const socket = await rawTls(attacker);
      const observed = observe(socket);
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32BE(1024 * 1024 * 1024, 0);
      prefix.writeUInt32BE(100, 4);
      const sentAt = Date.now();
      socket.write(prefix);
      const closedAt = await closedWithin(observed, 3000);
      expect(closedAt - sentAt).toBeLessThan(2000);
      const reject = observed.frames.find((frame) => isReject(frame.header))?.header;
      expect(reject).toMatchObject({ code: ErrorCode.Protocol });
      expect((reject as { message: string }).message).toMatch(/over the limit/);
      await expectNodeStillServes();
    });

    it(
      'drops a peer that stalls in the middle of its hello (handshake timeout)',
      { timeout: 15_000 },
      async () => {
        const socket = await rawTls(attacker);
        const observed = observe(socket);
        const prefix = Buffer.alloc(8);
        prefix.writeUInt32BE(1000, 0);
        prefix.writeUInt32BE(100, 4);
        const sentAt = Date.now();
        socket.write(Buffer.concat([prefix, Buffer.from('{"t":"hell')]));
        const closedAt = await closedWithin(observed, 9000);
        // The handshake has 5 s; the connection was made just before the write.
        expect(closedAt - sentAt).toBeGreaterThan(3500);
        expect(closedAt - sentAt).toBeLessThan(8000);
        expect(observed.frames.filter((frame) => isReject(frame.header))).toEqual([]);
        expect(node.stats().submitters).toBe(0);
        await expectNodeStillServes();
      },
    );
  });

  it('drops a proven peer that stalls in the middle of a message', { timeout: 20_000 }, async () => {
    // Built by hand (no PeerConnection on this side, so nothing answers the node's pings).
    const socket = await rawTls(attacker);
    const observed = observe(socket);
    socket.write(frameBytes(helloFor(socket, attacker, proofKey(CODE))));
    await until(() => observed.frames.some((frame) => typeOf(frame.header) === 'offer'), 'the offer', 5000);
    await until(() => node.stats().submitters === 1, 'the session', 3000);
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32BE(1000, 0);
    prefix.writeUInt32BE(100, 4);
    const sentAt = Date.now();
    socket.write(Buffer.concat([prefix, Buffer.from('{"t":"bund')]));
    const closedAt = await closedWithin(observed, 14_000);
    // 3.5 s without the rest of the frame; the node checks twice a second.
    expect(closedAt - sentAt).toBeGreaterThan(3000);
    expect(closedAt - sentAt).toBeLessThan(9000);
    await until(() => node.stats().submitters === 0, 'the session to end', 3000);
    await expectNodeStillServes();
  });

  describe('a member of the cluster sending files that try to leave their folder', () => {
    const ESCAPES = ['../escape.txt', '/abs.txt', 'a/../../x'];

    function nodeTreeEscapes(): string[] {
      // Anything named like an escaped file anywhere in the node's data folder or around it.
      const names = new Set(['escape.txt', 'abs.txt', 'x']);
      return [...tree(work), ...tree(join(nodeHome, 'cache'))]
        .filter((path) => names.has(path.split('/').at(-1) ?? ''))
        .concat(existsSync('/abs.txt') ? ['/abs.txt'] : []);
    }

    it.each(ESCAPES)('refuses a bundle naming %j and writes nothing', async (path) => {
      const existedBefore = existsSync('/abs.txt');
      expect(nodeTreeEscapes()).toEqual(existedBefore ? ['/abs.txt'] : []);
      const session = await rawSession();
      const data = Buffer.from('escaped!');
      const files: FileEntry[] = [
        { path: 'main.mjs', size: 0, mode: 0o644 },
        { path, size: data.length, mode: 0o644 },
      ];
      const bundle = hashFileSet({ files, data: [Buffer.alloc(0), data] });
      await requestLoad(session, bundle);
      sendAll(session, streamMessages({ t: 'bundle', bundle, files, stream: 1 }, data));
      await expectSessionRefused(session, /unsafe path/);
      expect(nodeTreeEscapes()).toEqual(existedBefore ? ['/abs.txt'] : []);
      expect(tree(join(nodeHome, 'cache', 'bundles'))).not.toContain(bundle);
      await expectNodeStillServes();
    });

    it('refuses a bundle whose content does not match its hash: the load fails, nothing is stored', async () => {
      const session = await rawSession();
      const set = fileSet({ 'main.mjs': 'export default () => "tampered";\n' });
      const claimed = hashFileSet(fileSet({ 'main.mjs': 'export default () => "original";\n' }));
      await requestLoad(session, claimed);
      sendAll(
        session,
        streamMessages(
          { t: 'bundle', bundle: claimed, files: set.files, stream: 1 },
          Buffer.concat(set.data),
        ),
      );
      const failed = await until(
        () => session.messages.find((message) => typeOf(message.header) === 'load-error'),
        'the load to fail',
      );
      expect(failed.header).toMatchObject({ error: { code: ErrorCode.Transfer } });
      expect((failed.header as { error: { message: string } }).error.message).toMatch(
        /do not match their hash/,
      );
      expect(existsSync(join(nodeHome, 'cache', 'bundles', claimed))).toBe(false);
      expect(tree(join(nodeHome, 'cache', 'bundles')).filter((path) => path.includes('.partial-'))).toEqual(
        [],
      );
      session.connection.close();
      await expectNodeStillServes();
    });

    it('detects an input file corrupted on the way (DG_ERR_TRANSFER), stores nothing, and stores it sent again intact', async () => {
      const session = await rawSession();
      const content = Buffer.alloc(3 * 1024 * 1024 + 5, 'a');
      const hash = createHash('sha256').update(content).digest('hex');
      // One byte of the second chunk flipped on the way; the sender's hashes describe the original.
      const corrupted = Buffer.from(content);
      corrupted[1024 * 1024 + 7] = 0x62;
      sendAll(
        session,
        streamMessages({ t: 'file', hash, size: content.length, stream: 1 }, corrupted, { sha256: hash }),
      );
      const stored = (stream: number) =>
        until(
          () =>
            session.messages.find(
              (message) =>
                typeOf(message.header) === 'stored' &&
                (message.header as { stream: number }).stream === stream,
            ),
          `the answer for stream ${stream}`,
        );
      expect((await stored(1)).header).toMatchObject({ error: { code: ErrorCode.Transfer } });
      const files = join(nodeHome, 'cache', 'files');
      expect(existsSync(join(files, hash))).toBe(false);
      await until(
        () => tree(files).every((path) => !path.includes('.partial-')),
        'the corrupted copy to be removed',
      );
      // A file whose bytes are not those its name (hash) promises is refused the same way.
      const other = Buffer.from('hello');
      sendAll(
        session,
        streamMessages({ t: 'file', hash: 'ab'.repeat(32), size: other.length, stream: 2 }, other),
      );
      expect((await stored(2)).header).toMatchObject({ error: { code: ErrorCode.Transfer } });
      expect(existsSync(join(files, 'ab'.repeat(32)))).toBe(false);
      // The session goes on: the same file sent again intact is stored.
      sendAll(session, streamMessages({ t: 'file', hash, size: content.length, stream: 3 }, content));
      expect((await stored(3)).header).toMatchObject({ error: null });
      expect(
        createHash('sha256')
          .update(readFileSync(join(files, hash)))
          .digest('hex'),
      ).toBe(hash);
      session.connection.close();
      await expectNodeStillServes();
    });

    it('refuses an input file name that leaves the job folder', async () => {
      const session = await loadedSession('export default (path) => path;\n');
      const content = Buffer.from('input');
      const hash = createHash('sha256').update(content).digest('hex');
      sendAll(session, streamMessages({ t: 'file', hash, size: content.length, stream: 1 }, content));
      await until(() => session.messages.some((message) => typeOf(message.header) === 'stored'), 'stored');
      session.connection.send({
        t: 'run',
        jobs: [
          {
            id: 1,
            computation: 'k',
            index: 0,
            attempt: 1,
            input: { kind: 'file', hash, name: '../escape.txt' },
            timeoutMs: null,
            maxMemoryBytes: null,
          },
        ],
      });
      await expectSessionRefused(session, /unsafe input file name/);
      expect(tree(join(nodeHome, 'jobs')).filter((path) => path.endsWith('escape.txt'))).toEqual([]);
      await expectNodeStillServes();
    });
  });

  describe('results', () => {
    it('fails a job whose output folder holds a symbolic link, and writes nothing for it', async () => {
      const program = join(work, 'link-output.sh');
      writeFileSync(
        program,
        [
          'if [ "$1" = "1" ]; then ln -s /etc/passwd "$DESKGRID_OUTPUT_DIR/link"; fi',
          'printf "kept %s\\n" "$1" > "$DESKGRID_OUTPUT_DIR/regular.txt"',
          'echo "{\\"n\\": $1}"',
          '',
        ].join('\n'),
      );
      const out = join(work, 'link-out');
      const submitter = await startSubmitter();
      try {
        const batch = submitter.submit({ computation: program, inputs: [0, 1, 2], out });
        const results = collect(batch);
        const summary = await batch.done;
        expect(summary).toMatchObject({ total: 3, done: 2, failed: 1 });
        const sorted = byIndex(results);
        expect(sorted.map((result) => result.status)).toEqual(['done', 'failed', 'done']);
        expect(sorted[0]?.value).toEqual({ n: 0 });
        expect(sorted[2]?.value).toEqual({ n: 2 });
        expect(sorted[1]?.error?.message).toMatch(/symbolic link/);
        expect(sorted[1]?.node).toBe(node.nodeId);
      } finally {
        await submitter.close();
      }
      const outputs = join(out, 'outputs');
      expect(existsSync(join(outputs, '1'))).toBe(false);
      expect(tree(out).filter((path) => path.endsWith('link'))).toEqual([]);
      expect(tree(outputs).sort()).toEqual(['0', '0/regular.txt', '2', '2/regular.txt']);
      await expectNodeStillServes();
    });

    it("fails a result over the submitter's frame limit with DG_ERR_TOO_LARGE, and the batch goes on", async () => {
      const module = join(work, 'big.mjs');
      writeFileSync(module, 'export default (n) => (n === 1 ? Buffer.alloc(2_000_000, 7) : n * 10);\n');
      const submitter = await startSubmitter(undefined, { maxFrameBytes: 1_000_000 });
      try {
        const batch = submitter.submit({ computation: module, inputs: [0, 1, 2, 3] });
        const results = collect(batch);
        const summary = await batch.done;
        expect(summary).toMatchObject({ total: 4, done: 3, failed: 1 });
        const sorted = byIndex(results);
        expect(sorted.map((result) => result.status)).toEqual(['done', 'failed', 'done', 'done']);
        expect(sorted.map((result) => result.value)).toEqual([0, null, 20, 30]);
        expect(sorted[1]?.error?.code).toBe(ErrorCode.TooLarge);
        expect(sorted[1]?.error?.message).toMatch(/over the limit of 1000000 bytes/);
        // Said by the worker, which measured the value before handing it to the node's process
        // (the node's own later check speaks of output files).
        expect(sorted[1]?.error?.message).toMatch(/^the result \(\d+ bytes\) is over/);
      } finally {
        await submitter.close();
      }
      await expectNodeStillServes();
    });
  });

  it(
    'drops a proven peer that trickles a frame a byte at a time (progress, not bytes)',
    { timeout: 30_000 },
    async () => {
      const socket = await rawTls(attacker);
      const observed = observe(socket);
      socket.write(frameBytes(helloFor(socket, attacker, proofKey(CODE))));
      await until(() => observed.frames.some((frame) => typeOf(frame.header) === 'offer'), 'the offer', 5000);
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32BE(1024 * 1024, 0);
      prefix.writeUInt32BE(100, 4);
      socket.write(prefix);
      // A byte every 200 ms, so that the connection is never idle: only the frame's
      // progress tells. Bounded: at most 100 bytes (20 s).
      for (let sent = 0; sent < 100 && !observed.isClosed(); sent++) {
        socket.write(Buffer.from('x'));
        await sleep(200);
      }
      expect(observed.isClosed()).toBe(true);
      await until(() => node.stats().submitters === 0, 'the session to end', 3000);
      await expectNodeStillServes();
    },
  );

  it('keeps unacknowledged results in its journal on disk, not in memory', { timeout: 30_000 }, async () => {
    const session = await loadedSession('export default (n) => "r".repeat(1000) + n;\n');
    const inputs = [0, 1, 2].map((n) => serialize(n));
    session.connection.send(
      {
        t: 'run',
        batch: 'journal-batch',
        jobs: inputs.map((input, n) => ({
          id: n + 1,
          computation: 'k',
          index: n,
          attempt: 1,
          input: { kind: 'value', bytes: input.length },
          timeoutMs: null,
          maxMemoryBytes: null,
        })),
      },
      inputs,
    );
    await until(
      () => resultCount(session.messages.map((message) => message.header)) === 3,
      'three results',
      10_000,
    );
    // Not acknowledged, and the connection is still open: the results wait in the journal.
    const journal = new Database(join(nodeHome, 'node', KEPT_DATABASE), { readonly: true });
    try {
      const rows = journal
        .prepare(
          'SELECT kept.idx AS idx, length(kept.body) AS bytes FROM kept JOIN runs ON runs.id = kept.run WHERE runs.batch = ?',
        )
        .all('journal-batch') as Array<{ idx: number; bytes: number }>;
      expect(rows.map((row) => row.idx).sort()).toEqual([0, 1, 2]);
      for (const row of rows) expect(row.bytes).toBeGreaterThan(1000);
      // Acknowledged: gone from the journal.
      session.connection.send({ t: 'ack', ids: [1, 2, 3], kept: [] });
      await until(
        () =>
          (
            journal
              .prepare(
                "SELECT COUNT(*) AS n FROM kept JOIN runs ON runs.id = kept.run WHERE runs.batch = 'journal-batch'",
              )
              .get() as { n: number }
          ).n === 0,
        'the journal to forget acknowledged results',
        5000,
      );
    } finally {
      journal.close();
      session.connection.close();
    }
    await expectNodeStillServes();
  });

  it('is idle and holds no sessions after all of this', async () => {
    await until(() => node.stats().submitters === 0, 'sessions to end', 3000);
    expect(node.stats()).toMatchObject({ busyCores: 0, batches: 0, submitters: 0 });
    // A session's folder is removed as it ends, asynchronously: gone soon, not necessarily yet.
    const sessionFolders = () => tree(join(nodeHome, 'jobs')).filter((path) => !path.includes('/'));
    await until(() => sessionFolders().length === 0, 'session folders to be removed', 3000);
    expect(sessionFolders()).toEqual([]);
  });
});
