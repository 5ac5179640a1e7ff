// Opening a connection to another node as a submitter: TLS to its job port, the join-code proof
// both ways (PeerConnection), then the node's first message, its offer. One way in for every
// caller: the submitter's RemoteNode, and the LAN survey that checks nodes for `deskgrid nodes`
// and the doctor, so a check says exactly what a submitter would meet.

import { connect, type TLSSocket } from 'node:tls';
import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { fromNodeSchema, type Offer } from '../../../shared/wire-protocol.js';
import { PeerConnection, type LocalIdentity } from '../transport/peer-connection.js';

const CONNECT_TIMEOUT_MS = 5000;

export interface NodeAddress {
  host: string;
  port: number;
}

export interface DialOptions {
  address: NodeAddress;
  identity: LocalIdentity & { certPem: string; keyPem: string };
  proofKey: Buffer;
  maxFrameBytes: number;
  expectPeerId?: string;
  /** Bound on each step (TLS, hellos, offer). Default 5 s. */
  timeoutMs?: number;
}

export interface Dialled {
  connection: PeerConnection;
  offer: Offer;
  /** Messages that came in the same read as the offer (the node's `peers`), in order. */
  early: Array<[header: unknown, body: Buffer]>;
}

/**
 * Connects, proves membership both ways and waits for the node's offer. Rejects with a
 * DeskGridError: Connection (no answer), Auth/Identity (another cluster, another node), Version,
 * Protocol (no offer).
 */
export async function dialNode(options: DialOptions): Promise<Dialled> {
  const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS;
  const socket = await openTls(options.address, options.identity, timeoutMs);
  const connection = await PeerConnection.establish(socket, {
    role: 'submitter',
    identity: { id: options.identity.id, name: options.identity.name, version: options.identity.version },
    proofKey: options.proofKey,
    maxFrameBytes: options.maxFrameBytes,
    handshakeTimeoutMs: timeoutMs,
    ...(options.expectPeerId === undefined ? {} : { expectPeerId: options.expectPeerId }),
  });
  // Messages that follow the offer in the same read are kept for the caller, which starts
  // listening only once this promise has settled.
  const early: Dialled['early'] = [];
  const keep = (header: unknown, body: Buffer): void => {
    early.push([header, body]);
  };
  const offer = await new Promise<Offer>((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.destroy();
      reject(new DeskGridError(ErrorCode.Protocol, 'the node sent no offer'));
    }, timeoutMs);
    connection.once('message', (header) => {
      clearTimeout(timer);
      const parsed = v.safeParse(fromNodeSchema, header);
      if (parsed.success && parsed.output.t === 'offer') {
        connection.on('message', keep);
        resolve(parsed.output);
      } else {
        connection.destroy();
        reject(new DeskGridError(ErrorCode.Protocol, 'the node did not start with an offer'));
      }
    });
  });
  connection.off('message', keep);
  return { connection, offer, early };
}

function openTls(
  address: NodeAddress,
  identity: { certPem: string; keyPem: string },
  timeoutMs: number,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const { host, port } = address;
    const socket = connect({
      host,
      port,
      cert: identity.certPem,
      key: identity.keyPem,
      // Nodes have self-signed certificates: trust is decided after the handshake, by the
      // join-code proof and the certificate's id, not by a certificate authority.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      timeout: timeoutMs,
    });
    const fail = (error: Error) => {
      socket.destroy();
      reject(new DeskGridError(ErrorCode.Connection, `cannot reach ${host}:${port}: ${error.message}`));
    };
    socket.once('secureConnect', () => {
      socket.off('error', fail);
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once('error', fail);
    socket.once('timeout', () => fail(new Error('no answer (is a firewall in the way?)')));
  });
}
