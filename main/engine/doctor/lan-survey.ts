// The LAN survey behind `deskgrid nodes`, the doctor and the UI's checks: listens on the LAN
// (mDNS, without announcing itself) for a while, then checks the nodes that claim this cluster
// for real, by dialling them as a submitter would (dial-node.ts: TLS, the join-code proof both
// ways, the offer), so "trusted" means "a submitter here could use it now".

import { randomBytes } from 'node:crypto';
import { platform } from 'node:os';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, WIRE_PROTOCOL_VERSION } from '../../../shared/wire-protocol.js';
import { LanPresence } from '../discovery/lan-presence.js';
import type { NodeState, NodeView } from '../discovery/membership.js';
import { clusterId, proofKey } from '../identity/cluster-key.js';
import { loadIdentity, type NodeIdentity } from '../identity/node-identity.js';
import { dialNode } from '../remote/dial-node.js';
import { readPackageVersion } from '../version.js';

/** What the survey says of a node: membership's verdict, refined by the check. */
export type ShownState = NodeState | 'unreachable' | 'unknown cluster';

export interface NodeCheck {
  state: ShownState;
  /** Why the check failed (unreachable, or the proof failed); null otherwise. */
  detail: string | null;
  /** From the node's offer (trusted nodes only). */
  runtimes: string[] | null;
  busyCores: number | null;
  /** The node's clock minus ours. */
  clockSkewMs: number | null;
}

export interface SurveyedNode extends Omit<NodeView, 'state'>, Omit<NodeCheck, 'state'> {
  state: ShownState;
}

export interface SurveyOptions {
  /** IPv4 addresses of the LAN interfaces to listen on. */
  interfaces: readonly string[];
  waitMs: number;
  /** The canonical join code, or null: then no node can be judged and none is checked. */
  code: string | null;
  /** Data folder, for this computer's identity (the check presents its certificate). */
  home: string;
  onError?: (error: Error) => void;
}

// A node on the same LAN answers a TLS handshake in about 10 ms; 2 s is generous yet keeps a
// survey quick when a firewall silently drops the packets.
const CHECK_TIMEOUT_MS = 2000;
const UNCHECKED = { detail: null, runtimes: null, busyCores: null, clockSkewMs: null };
// Stands for "no cluster" in the listener's own (never announced) advertisement: a cluster id is
// 16 hex characters derived with HKDF, so no real cluster has this one.
const NO_CLUSTER = '0'.repeat(16);

/** Listens for `waitMs`, then checks the nodes that claim this cluster; the freshest first. */
export async function surveyLan(options: SurveyOptions): Promise<SurveyedNode[]> {
  const presence = LanPresence.start({
    publish: false,
    interfaces: options.interfaces,
    self: {
      // A random id: this listener is not a node, and the node sharing this data folder (if one
      // runs here) must not be filtered out as "ourselves".
      id: randomBytes(32).toString('hex'),
      cluster: options.code === null ? NO_CLUSTER : clusterId(options.code),
      protocol: WIRE_PROTOCOL_VERSION,
      cores: 0,
      os: platform(),
      name: 'deskgrid nodes',
      version: readPackageVersion(),
      port: 1,
    },
    ...(options.onError === undefined ? {} : { onError: options.onError }),
  });
  let views: NodeView[];
  try {
    await new Promise((resolve) => setTimeout(resolve, options.waitMs));
    views = presence.membership.list();
  } finally {
    // Nothing was published, so there is no goodbye to send.
    presence.destroy();
  }
  const code = options.code;
  if (code === null) {
    return views.map((view) => ({
      ...view,
      state: view.state === 'offline' ? 'offline' : 'unknown cluster',
      ...UNCHECKED,
    }));
  }
  let identity: NodeIdentity | null = null;
  const key = proofKey(code);
  return Promise.all(
    views.map(async (view): Promise<SurveyedNode> => {
      const address = view.addresses[0];
      if (view.state !== 'trusted' || address === undefined) return { ...view, ...UNCHECKED };
      // Loaded only when needed: the first use makes a key pair in the data folder.
      identity ??= loadIdentity(options.home).identity;
      return { ...view, ...(await checkNode({ host: address, port: view.port }, view.id, identity, key)) };
    }),
  );
}

/** Dials a node as a submitter would, then hangs up politely. Never rejects. */
async function checkNode(
  address: { host: string; port: number },
  expectPeerId: string,
  identity: NodeIdentity,
  key: Buffer,
): Promise<NodeCheck> {
  const where = `${address.host}:${address.port}`;
  const dialled = dialNode({
    address,
    identity: { ...identity, version: readPackageVersion() },
    proofKey: key,
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    expectPeerId,
    timeoutMs: CHECK_TIMEOUT_MS,
  });
  // One bound for the whole check (TLS, hellos, offer), as a user waits for all of it.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), CHECK_TIMEOUT_MS);
  });
  try {
    const outcome = await Promise.race([dialled, late]);
    if (outcome === null) {
      // A connection that completes after all is hung up at once.
      dialled.then(({ connection }) => connection.close()).catch(() => undefined);
      return {
        ...UNCHECKED,
        state: 'unreachable',
        detail: `${where} did not answer within ${CHECK_TIMEOUT_MS / 1000} s`,
      };
    }
    const { connection, offer } = outcome;
    // A goodbye, so that the node does not log a broken connection.
    connection.close();
    return {
      state: 'trusted',
      detail: null,
      runtimes: offer.runtimes,
      busyCores: offer.busyCores ?? null,
      // Half the round trip is unknown; at LAN latency it is far below what matters here.
      clockSkewMs: offer.time === undefined ? null : offer.time - Date.now(),
    };
  } catch (error) {
    const code = error instanceof DeskGridError ? error.code : ErrorCode.Connection;
    const message = error instanceof Error ? error.message : String(error);
    if (code === ErrorCode.Auth || code === ErrorCode.Identity) {
      return { ...UNCHECKED, state: 'other cluster', detail: message };
    }
    if (code === ErrorCode.Version) return { ...UNCHECKED, state: 'version mismatch', detail: message };
    // A connection error names the address already; a stalled handshake does not.
    return {
      ...UNCHECKED,
      state: 'unreachable',
      detail: message.includes(where) ? message : `${where}: ${message}`,
    };
  } finally {
    clearTimeout(timer);
  }
}
