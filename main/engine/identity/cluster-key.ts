// What a node derives from its cluster's join code: a public cluster id, safe to announce on
// the network (mDNS TXT records), and a secret proof key for the handshake HMAC. Both come from
// HKDF-SHA256 with their own labels, so neither reveals the other or the code.

import { hkdfSync } from 'node:crypto';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { parseJoinCode } from '../../../shared/join-code.js';

// A fixed salt: the code is already uniformly random, the salt only separates DeskGrid's keys
// from anything else someone might derive from the same string.
const SALT = 'deskgrid join code v1';
const CLUSTER_ID_INFO = 'deskgrid cluster id v1';
const PROOF_KEY_INFO = 'deskgrid handshake proof key v1';

/** 16 hex characters naming the cluster in public; the same for every spelling of the code. */
export function clusterId(code: string): string {
  return derive(code, CLUSTER_ID_INFO, 8).toString('hex');
}

/** 32 secret bytes that peers use to prove to each other that they know the code. */
export function proofKey(code: string): Buffer {
  return derive(code, PROOF_KEY_INFO, 32);
}

function derive(code: string, info: string, length: number): Buffer {
  // Parsed again so that "k7qf 9xm2..." and "K7QF-9XM2-..." give the same keys.
  const parsed = parseJoinCode(code);
  if (!parsed.ok) throw new DeskGridError(ErrorCode.JoinCode, parsed.reason);
  return Buffer.from(hkdfSync('sha256', parsed.code, SALT, info, length));
}
