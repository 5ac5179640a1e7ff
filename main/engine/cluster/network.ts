// How this node joins its cluster: the join code turned into the proof key and cluster id every
// connection uses, and the peer addresses given and saved, parsed once. Read once at start;
// the roster and serving share the result.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { parseJoinCode } from '../../../shared/join-code.js';
import { formatPeerAddress, parsePeerAddress, type PeerAddress } from '../../../shared/peer-address.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../../../shared/wire-protocol.js';
import { clusterId, proofKey } from '../identity/cluster-key.js';
import type { NodeIdentity } from '../identity/node-identity.js';
import { readPackageVersion } from '../version.js';

/** What every connection with another node of the cluster needs. */
export interface Network {
  identity: NodeIdentity;
  proofKey: Buffer;
  clusterId: string;
  version: string;
  maxFrameBytes: number;
}

/**
 * The cluster this node works in, or null when it works alone (`needed` false). Without a join
 * code, or with one that does not parse, working with other nodes is an error the user must fix.
 */
export function networkOf(
  secret: string | undefined,
  maxFrameBytes: number | undefined,
  identity: NodeIdentity,
  needed: boolean,
): Network | null {
  if (!needed) return null;
  if (secret === undefined) {
    throw new DeskGridError(
      ErrorCode.JoinCode,
      'a join code is needed to work with other nodes: pass --secret, set DESKGRID_SECRET, or run deskgrid join',
    );
  }
  const parsed = parseJoinCode(secret);
  if (!parsed.ok) throw new DeskGridError(ErrorCode.JoinCode, parsed.reason);
  return {
    identity,
    proofKey: proofKey(parsed.code),
    clusterId: clusterId(parsed.code),
    version: readPackageVersion(),
    maxFrameBytes: maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
  };
}

/** The peers given and saved, each once; a saved one that does not parse is only a warning. */
export function peersOf(
  given: readonly string[],
  saved: readonly string[],
  warnings: string[],
): PeerAddress[] {
  const unique = new Map<string, PeerAddress>();
  for (const text of given) {
    const parsed = parsePeerAddress(text);
    if (!parsed.ok) throw new DeskGridError(ErrorCode.Usage, parsed.reason);
    unique.set(formatPeerAddress(parsed.peer), parsed.peer);
  }
  for (const text of saved) {
    const parsed = parsePeerAddress(text);
    if (parsed.ok) unique.set(formatPeerAddress(parsed.peer), parsed.peer);
    else warnings.push(`ignoring a saved peer: ${parsed.reason}`);
  }
  return [...unique.values()];
}
