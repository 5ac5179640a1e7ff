// One authenticated connection between two DeskGrid nodes: mutual TLS 1.3, framed messages,
// and the hello exchange that proves both sides know the join code (handshake.ts). Until both
// hellos check out nothing else is read. Afterwards it keeps the connection honest: pings when
// quiet, closes an idle connection, and drops a peer that stalls in the middle of a frame.

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { TLSSocket } from 'node:tls';
import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import {
  WIRE_MAGIC,
  WIRE_PROTOCOL_VERSION,
  helloSchema,
  rejectSchema,
  type Hello,
} from '../../../shared/wire-protocol.js';
import { createLogger } from '../log.js';
import {
  FrameDecoder,
  MAX_HELLO_FRAME_BYTES,
  encodeFrame,
  type Frame,
  type FrameHeader,
} from './frame-codec.js';
import { FrameWriter } from './frame-writer.js';
import { computeProof, exportKeyingMaterial, verifyProof, type Role } from './handshake.js';

const log = createLogger('connection');

export interface LocalIdentity {
  id: string;
  name: string;
  version: string;
}

export interface ConnectionOptions {
  role: Role;
  identity: LocalIdentity;
  proofKey: Buffer;
  maxFrameBytes: number;
  /** Refuse the peer unless its certificate has this id (a pinned or discovered peer). */
  expectPeerId?: string;
  handshakeTimeoutMs?: number;
  pingIntervalMs?: number;
  /** No byte at all for this long: the connection is dead. */
  idleTimeoutMs?: number;
  /**
   * A frame is on its way and less than MIN_PROGRESS_BYTES of it came in this long: the peer
   * stalls. Progress, not any byte: a trickle of one byte a second would hold a 64 MiB buffer.
   */
  stallTimeoutMs?: number;
}

export interface ConnectionEvents {
  message: [header: unknown, body: Buffer];
  close: [error: DeskGridError | null];
}

// A node cut off (unplugged, asleep) sends no reset: only silence tells, so pings go every second
// and 3.5 silent seconds (checked twice a second) end the connection, which gets its jobs
// running elsewhere within 5 s.
/** Bytes a frame on its way must advance by per stall window (about 18 KB/s at the default 3.5 s). */
export const MIN_PROGRESS_BYTES = 64 * 1024;

const DEFAULTS = {
  handshakeTimeoutMs: 5000,
  pingIntervalMs: 1000,
  idleTimeoutMs: 3500,
  stallTimeoutMs: 3500,
};

/** SHA-256 of the peer's certificate: its node id. Empty when it presented none. */
export function peerCertificateId(socket: TLSSocket): string | null {
  const certificate = socket.getPeerCertificate(true);
  if (!certificate.raw) return null;
  return createHash('sha256').update(certificate.raw).digest('hex');
}

export class PeerConnection extends EventEmitter<ConnectionEvents> {
  private readonly decoder: FrameDecoder;
  private readonly writer: FrameWriter;
  private lastReceivedAt = Date.now();
  private lastSentAt = Date.now();
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private closeEmitted = false;
  /** Where a frame in progress stood when the current stall window began. */
  private progressMark: { at: number; received: number } | null = null;

  private constructor(
    readonly socket: TLSSocket,
    readonly peer: Hello,
    decoder: FrameDecoder,
    private readonly options: ConnectionOptions,
  ) {
    super();
    this.decoder = decoder;
    this.writer = new FrameWriter(socket);
    const pingIntervalMs = options.pingIntervalMs ?? DEFAULTS.pingIntervalMs;
    this.timer = setInterval(() => this.watch(), Math.min(pingIntervalMs, 500));
    this.timer.unref();
    // Small frames (one job, one result) must leave at once: Nagle's delay would cap a node at
    // a few hundred jobs a second.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error: Error) => this.finish(new DeskGridError(ErrorCode.Connection, error.message)));
    socket.on('close', () =>
      this.finish(this.closed ? null : new DeskGridError(ErrorCode.Connection, 'connection closed')),
    );
  }

  /**
   * Runs the hello exchange on a TLS socket that has finished its handshake. Resolves with the
   * connection once both sides are proven, or rejects (after telling the peer why) with Auth,
   * Version, Identity or Protocol errors.
   */
  static establish(socket: TLSSocket, options: ConnectionOptions): Promise<PeerConnection> {
    return new Promise((resolve, reject) => {
      // Before the peer is proven, its first frame (the hello) may be a few KiB at most.
      const decoder = new FrameDecoder(options.maxFrameBytes, MAX_HELLO_FRAME_BYTES);
      let settled = false;
      const fail = (error: DeskGridError, tell: boolean) => {
        if (settled) return;
        settled = true;
        cleanup();
        if (tell) {
          socket.end(Buffer.concat(encodeFrame({ t: 'reject', code: error.code, message: error.message })));
          setTimeout(() => socket.destroy(), 500).unref();
        } else {
          socket.destroy();
        }
        reject(error);
      };
      const timeout = setTimeout(
        () =>
          fail(
            new DeskGridError(ErrorCode.Protocol, 'the peer did not complete the handshake in time'),
            false,
          ),
        options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
      );
      const onError = (error: Error) => fail(new DeskGridError(ErrorCode.Connection, error.message), false);
      const onClose = () =>
        fail(
          new DeskGridError(ErrorCode.Connection, 'the peer closed the connection during the handshake'),
          false,
        );
      const onData = (chunk: Buffer) => {
        let frames;
        try {
          frames = decoder.push(chunk);
        } catch (error) {
          fail(error as DeskGridError, true);
          return;
        }
        const first = frames[0];
        if (!first) return;
        const checked = checkHello(first.header, socket, options);
        if (checked instanceof DeskGridError) {
          // Tell the peer why, unless it is the one refusing.
          fail(checked, !isReject(first.header));
          return;
        }
        settled = true;
        cleanup();
        // The owner listens once this promise settles, a microtask later, while the rest of this
        // read may arrive synchronously: hold every frame until then, or it would be lost.
        socket.pause();
        const connection = new PeerConnection(socket, checked, decoder, options);
        resolve(connection);
        setImmediate(() => {
          // Frames that came in the same read as the hello belong to the session.
          if (!connection.closed) connection.deliver(frames.slice(1));
          socket.resume();
        });
      };
      const cleanup = () => {
        clearTimeout(timeout);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);

      const peerId = peerCertificateId(socket);
      if (peerId === null) {
        fail(new DeskGridError(ErrorCode.Identity, 'the peer presented no certificate'), true);
        return;
      }
      const hello: Hello = {
        t: 'hello',
        magic: WIRE_MAGIC,
        protocol: WIRE_PROTOCOL_VERSION,
        role: options.role,
        nodeId: options.identity.id,
        name: options.identity.name,
        version: options.identity.version,
        maxFrameBytes: options.maxFrameBytes,
        proof: computeProof({
          proofKey: options.proofKey,
          role: options.role,
          keyingMaterial: exportKeyingMaterial(socket),
          senderId: options.identity.id,
          receiverId: peerId,
        }),
      };
      for (const part of encodeFrame(hello)) socket.write(part);
    });
  }

  get peerId(): string {
    return this.peer.nodeId;
  }

  /**
   * Sends one frame. Frames sent in the same tick leave together (one write, few TLS records):
   * a node answering many short jobs would otherwise pay a record and a syscall per result.
   * Large frames leave in pieces (frame-writer.ts).
   */
  send(header: object, body?: Buffer | readonly Buffer[]): void {
    if (this.closed) return;
    this.lastSentAt = Date.now();
    this.writer.write(encodeFrame(header, body));
  }

  /** Says goodbye and closes once what was sent is flushed. */
  close(): void {
    if (this.closed) return;
    this.send({ t: 'bye' });
    this.closed = true;
    this.writer.end();
    this.finish(null);
  }

  destroy(error?: DeskGridError): void {
    this.socket.destroy();
    this.finish(error ?? null);
  }

  /** Tells the peer why it is dropped, then closes; unlike destroy(), the reject is flushed first. */
  reject(error: DeskGridError): void {
    if (this.closed) return;
    this.send({ t: 'reject', code: error.code, message: error.message });
    this.closed = true;
    this.writer.end();
    setTimeout(() => this.socket.destroy(), 500).unref();
    this.finish(error);
  }

  private receive(chunk: Buffer): void {
    this.lastReceivedAt = Date.now();
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      log.warn('dropping a peer that sent a bad frame', {
        peer: this.peerId,
        error: (error as Error).message,
      });
      this.reject(error as DeskGridError);
      return;
    }
    this.deliver(frames);
  }

  private deliver(frames: readonly Frame[]): void {
    for (const frame of frames) {
      if (this.closed) return;
      const type = (frame.header as FrameHeader).t;
      if (type === 'ping') this.send({ t: 'pong' });
      else if (type === 'pong') continue;
      else if (type === 'bye') {
        this.closed = true;
        this.writer.end();
        this.finish(null);
      } else this.emit('message', frame.header, frame.body);
    }
  }

  private watch(): void {
    const now = Date.now();
    const quietFor = now - this.lastReceivedAt;
    if (this.stalled(now)) {
      this.destroy(new DeskGridError(ErrorCode.Connection, 'the peer stalled in the middle of a message'));
      return;
    }
    if (quietFor > (this.options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs)) {
      this.destroy(
        new DeskGridError(
          ErrorCode.Connection,
          `no answer from the peer for ${Math.round(quietFor / 1000)} s`,
        ),
      );
      return;
    }
    if (now - this.lastSentAt >= (this.options.pingIntervalMs ?? DEFAULTS.pingIntervalMs))
      this.send({ t: 'ping' });
  }

  /** Whether a frame on its way advanced by less than MIN_PROGRESS_BYTES over a whole stall window. */
  private stalled(now: number): boolean {
    if (!this.decoder.midFrame) {
      this.progressMark = null;
      return false;
    }
    const received = this.decoder.received;
    if (this.progressMark === null) {
      this.progressMark = { at: now, received };
      return false;
    }
    if (now - this.progressMark.at < (this.options.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs)) return false;
    if (received - this.progressMark.received < MIN_PROGRESS_BYTES) return true;
    this.progressMark = { at: now, received };
    return false;
  }

  private finish(error: DeskGridError | null): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.closed = true;
    clearInterval(this.timer);
    this.emit('close', error);
  }
}

function isReject(header: unknown): boolean {
  return v.is(rejectSchema, header);
}

/** Checks the peer's hello: a reject, wrong magic or version, a certificate that is not the id it claims, a bad proof. */
function checkHello(header: unknown, socket: TLSSocket, options: ConnectionOptions): Hello | DeskGridError {
  const rejected = v.safeParse(rejectSchema, header);
  if (rejected.success) {
    const code = rejected.output.code === ErrorCode.Auth ? ErrorCode.Auth : ErrorCode.Protocol;
    return new DeskGridError(
      rejected.output.code === ErrorCode.Version ? ErrorCode.Version : code,
      `the peer refused the connection: ${rejected.output.message}`,
    );
  }
  const magic = (header as { magic?: unknown } | null)?.magic;
  if (magic !== WIRE_MAGIC)
    return new DeskGridError(ErrorCode.Protocol, 'the peer does not speak the DeskGrid protocol');
  const protocol = (header as { protocol?: unknown }).protocol;
  if (protocol !== WIRE_PROTOCOL_VERSION) {
    const version = (header as { version?: unknown }).version;
    return new DeskGridError(
      ErrorCode.Version,
      `protocol versions differ: this node speaks ${WIRE_PROTOCOL_VERSION}, the peer (DeskGrid ${String(version)}) speaks ${String(protocol)}; run the same DeskGrid version on both`,
    );
  }
  const parsed = v.safeParse(helloSchema, header);
  if (!parsed.success)
    return new DeskGridError(ErrorCode.Protocol, `malformed hello: ${v.summarize(parsed.issues)}`);
  const hello = parsed.output;
  const certificateId = peerCertificateId(socket);
  if (certificateId === null)
    return new DeskGridError(ErrorCode.Identity, 'the peer presented no certificate');
  if (hello.nodeId !== certificateId) {
    return new DeskGridError(ErrorCode.Identity, "the peer claims an id that is not its certificate's");
  }
  if (options.expectPeerId !== undefined && certificateId !== options.expectPeerId) {
    return new DeskGridError(
      ErrorCode.Identity,
      `expected node ${options.expectPeerId.slice(0, 8)} but found ${certificateId.slice(0, 8)}: its certificate changed`,
    );
  }
  const proofInput = {
    proofKey: options.proofKey,
    role: hello.role,
    keyingMaterial: exportKeyingMaterial(socket),
    senderId: hello.nodeId,
    receiverId: options.identity.id,
  };
  if (!verifyProof(proofInput, hello.proof)) {
    return new DeskGridError(
      ErrorCode.Auth,
      'wrong join code: the peer belongs to another cluster, or one of you mistyped it',
    );
  }
  return hello;
}
