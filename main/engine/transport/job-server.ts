// The node's TLS job server. Every connection must present a certificate and prove the join
// code in its hello (peer-connection.ts) before the server reads anything else; a peer that
// fails is told why, logged, and dropped, and the server goes on serving the others.

import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { createLogger } from '../log.js';
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
}

export class JobServer {
  private readonly sockets = new Set<TLSSocket>();

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
    server.on('secureConnection', (socket) => {
      jobServer?.sockets.add(socket);
      socket.once('close', () => jobServer?.sockets.delete(socket));
      const address = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
      PeerConnection.establish(socket, {
        ...options.connectionOptions,
        role: 'node',
        identity: options.identity,
        proofKey: options.proofKey,
        maxFrameBytes: options.maxFrameBytes,
      }).then(
        (connection) => {
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
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        const address = server.address() as AddressInfo;
        jobServer = new JobServer(server, address.address, address.port);
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
