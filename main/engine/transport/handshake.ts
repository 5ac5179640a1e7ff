// The proof each side of a connection gives that it knows the cluster's join code, without
// sending it. Both ends of one TLS session export the same keying material (RFC 5705/8446);
// a relay in the middle holds two different sessions, so a proof made for one fails on the
// other. The proof also names both certificates and the sender's role, so it cannot be
// reflected back at its sender or moved to another pair of nodes.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

const EXPORTER_LABEL = 'EXPORTER-deskgrid-proof-v1';
const KEYING_MATERIAL_BYTES = 32;

export type Role = 'submitter' | 'node';

export interface ProofInput {
  proofKey: Buffer;
  /** Role of the side making the proof. */
  role: Role;
  keyingMaterial: Buffer;
  /** SHA-256 (hex) of the certificate of the side making the proof. */
  senderId: string;
  /** SHA-256 (hex) of the other side's certificate. */
  receiverId: string;
}

export function exportKeyingMaterial(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(KEYING_MATERIAL_BYTES, EXPORTER_LABEL, Buffer.alloc(0));
}

export function computeProof(input: ProofInput): string {
  return createHmac('sha256', input.proofKey)
    .update(`deskgrid-proof-v1\n${input.role}\n${input.senderId}\n${input.receiverId}\n`)
    .update(input.keyingMaterial)
    .digest('hex');
}

export function verifyProof(input: ProofInput, proof: string): boolean {
  const expected = Buffer.from(computeProof(input), 'hex');
  const given = Buffer.from(proof, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
