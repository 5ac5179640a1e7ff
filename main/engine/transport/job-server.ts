// The node's TLS job server. Every connection must present a certificate and prove the join
// code in its hello (peer-connection.ts) before the server reads anything else; a peer that
// fails is told why, logged, and dropped, and the server goes on serving the others. Before TLS
// starts, admission.ts decides whether this stranger may try at all (connections per address
// and in total, handshakes per second): a plain TCP server accepts, asks, and hands the socket
// to the TLS server or closes it.

import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer } from 'node:tls';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { createLogger } from '../log.js';
import { Admission, DEFAULT_ADMISSION_LIMITS, type AdmissionLimits } from './admission.js';
import { PeerConnection, type ConnectionOptions, type LocalIdentity } from './peer-connection.js';

const log = createLogger('job-server');

export interface JobServerOptions {
  host: string;
  port: number;
  identity: LocalIdentity & { certPem: string; keyPem: string };
  proofKey: Buffer;
  maxFrameBytes: number;
  /** A proven peer: the server's owner takes the connection from here. */
  accepted: (connection: PeerConnection) => void;
  /** A peer that failed the handshake (wrong join code, bad certificate, garbage). */
  refused?: (address: string, error: DeskGridError) => void;
  connectionOptions?: Partial<ConnectionOptions>;
  /** Limits on strangers (default DEFAULT_ADMISSION_LIMITS). */
  admission?: AdmissionLimits;
}

/** Refusals are logged at most this often (a flood would otherwise flood the log too). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export class JobServer {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static listen(options: JobServerOptions): Promise<JobServer> {
    const server = createServer({
      cert: options.identity.certPem,
      key: options.identity.keyPem,
      // Every peer shows a certificate; trust comes from the proof in its hello, checked next.
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      handshakeTimeout: 5000,
    });
    let jobServer: JobServer | null = null;
    const admission = new Admission(options.admission ?? DEFAULT_ADMISSION_LIMITS);
    // The TLS socket wraps the TCP one and shows the same remote address and port.
    const releases = new Map<string, () => void>();
    let refusals = { count: 0, loggedAt: 0 };
    const tcp = createTcpServer({ pauseOnConnect: false }, (raw) => {
      const admitted = admission.admit(raw.remoteAddress ?? '?');
      if (!admitted.ok) {
        raw.destroy();
        refusals.count += 1;
        const now = Date.now();
        if (now - refusals.loggedAt >= REFUSAL_LOG_INTERVAL_MS) {
          log.warn('connections refused before TLS', {
            address: raw.remoteAddress,
            reason: admitted.reason,
            refused: refusals.count,
          });
          refusals = { count: 0, loggedAt: now };
        }
        return;
      }
      const key = `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`;
      releases.set(key, admitted.release);
      jobServer?.sockets.add(raw);
      raw.on('error', () => undefined);
      raw.once('close', () => {
        admitted.release();
        releases.delete(key);
        jobServer?.sockets.delete(raw);
      });
      server.emit('connection', raw);
    });
    server.on('secureConnection', (socket) => {
      const address = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
      const release = releases.get(address);
      PeerConnection.establish(socket, {
        ...options.connectionOptions,
        role: 'node',
        identity: options.identity,
        proofKey: options.proofKey,
        maxFrameBytes: options.maxFrameBytes,
      }).then(
        (connection) => {
          // Proven: no longer a stranger.
          release?.();
          log.info('peer accepted', { address, peer: connection.peerId });
          options.accepted(connection);
        },
        (error: unknown) => {
          const refusal =
            error instanceof DeskGridError ? error : new DeskGridError(ErrorCode.Connection, String(error));
          log.warn('peer refused', { address, code: refusal.code, message: refusal.message });
          options.refused?.(address, refusal);
        },
      );
    });
    // Garbage or a failed TLS handshake: nothing to answer, nothing to keep.
    server.on('tlsClientError', (error, socket) => {
      log.warn('TLS handshake failed', { address: socket.remoteAddress, message: error.message });
      socket.destroy();
    });
    return new Promise((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(options.port, options.host, () => {
        tcp.off('error', reject);
        const address = tcp.address() as AddressInfo;
        jobServer = new JobServer(tcp, address.address, address.port);
        resolve(jobServer);
      });
    });
  }

  /** Stops accepting connections; the open ones stay, for their owners to close. */
  stopListening(): void {
    this.server.close();
  }

  /** Stops accepting connections and drops every open one now. */
  destroy(): void {
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
  }
}
