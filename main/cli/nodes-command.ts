// `deskgrid nodes`: listens on the LAN (mDNS, without announcing itself) for a few seconds and
// lists every DeskGrid node it heard. Nodes that claim this cluster are then checked for real: a
// TLS connection to their job port that completes the join-code proof both ways, so "trusted"
// means "a submitter here could use it now". `surveyLan` is shared with `deskgrid doctor`.

import { randomBytes } from 'node:crypto';
import * as v from 'valibot';
import { platform } from 'node:os';
import { connect } from 'node:tls';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  WIRE_PROTOCOL_VERSION,
  offerSchema,
  type Offer,
} from '../../shared/wire-protocol.js';
import { discoveryAllowed } from '../engine/discovery/discovery-switch.js';
import { lanInterfaces, type LanInterface } from '../engine/discovery/interfaces.js';
import { LanPresence } from '../engine/discovery/lan-presence.js';
import type { NodeState, NodeView } from '../engine/discovery/membership.js';
import { clusterId, proofKey } from '../engine/identity/cluster-key.js';
import { loadIdentity, shortNodeId, type NodeIdentity } from '../engine/identity/node-identity.js';
import { defaultDataHome } from '../engine/paths.js';
import { resolveJoinCode } from '../engine/settings.js';
import { PeerConnection } from '../engine/transport/peer-connection.js';
import { readPackageVersion } from '../engine/version.js';
import { numberOption, parseCommandArgs, wantsHelp } from './options.js';
import { SECRET_OPTIONS, secretFromOptions } from './secret-input.js';

export const NODES_USAGE = `usage: deskgrid nodes [options]

Listens on the LAN for a few seconds and lists the DeskGrid nodes that answered.

options:
  --wait S          seconds to listen (default 2)
  --json            print one JSON array instead of a table
  --secret CODE     the cluster's join code (else DESKGRID_SECRET, else the one saved by deskgrid join)
  --interface IP    listen on the LAN interface with this address only (default: all)`;

/** What `deskgrid nodes` says of a node: membership's verdict, refined by the TLS check. */
export type ShownState = NodeState | 'unreachable' | 'unknown cluster';

export interface SurveyedNode extends Omit<NodeView, 'state'>, Omit<CheckOutcome, 'state'> {
  state: ShownState;
}

export interface SurveyOptions {
  /** IPv4 addresses of the LAN interfaces to listen on. */
  interfaces: readonly string[];
  waitMs: number;
  /** The canonical join code, or null: then no node can be judged and none is checked. */
  code: string | null;
  /** Data folder, for this computer's identity (the TLS check presents its certificate). */
  home: string;
  onError?: (error: Error) => void;
}

export const DEFAULT_WAIT_S = 2;
const MAX_WAIT_S = 600;
// A node on the same LAN answers a TLS handshake in about 10 ms; 2 s is generous yet keeps the
// command quick when a firewall silently drops the packets.
const CHECK_TIMEOUT_MS = 2000;
// Stands for "no cluster" in the listener's own (never announced) advertisement: a cluster id is
const UNCHECKED = { detail: null, runtimes: null, busyCores: null, clockSkewMs: null };

// 16 hex characters derived with HKDF, so no real cluster has this one.
const NO_CLUSTER = '0'.repeat(16);

export async function nodesCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${NODES_USAGE}\n`);
    return 0;
  }
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      wait: { type: 'string' },
      json: { type: 'boolean', default: false },
      ...SECRET_OPTIONS,
      interface: { type: 'string' },
    },
    NODES_USAGE,
  );
  if (positionals.length > 0) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `unexpected argument "${positionals.join(' ')}"\n${NODES_USAGE}`,
    );
  }
  const waitS = waitOption(values.wait);
  if (!discoveryAllowed()) {
    throw new DeskGridError(
      ErrorCode.Usage,
      'LAN discovery is turned off here (DESKGRID_DISCOVERY=off): nodes cannot be listed',
    );
  }
  const home = defaultDataHome();
  const joinCode = resolveJoinCode({ flag: secretFromOptions(values, 'nodes'), home });
  const interfaces = chosenInterfaces(values.interface);
  if (joinCode === null) {
    process.stderr.write(
      'deskgrid: no join code, so nodes cannot be told apart by cluster: pass --secret CODE ' +
        '(or set DESKGRID_SECRET, or run deskgrid join CODE)\n',
    );
  }
  // On stderr, so that --json output stays one JSON document.
  process.stderr.write(
    `listening on ${interfaces.map((i) => `${i.name} (${i.address})`).join(', ')} for ${waitS} s...\n`,
  );
  const nodes = await surveyLan({
    interfaces: interfaces.map((i) => i.address),
    waitMs: waitS * 1000,
    code: joinCode?.code ?? null,
    home,
    onError: (error) => process.stderr.write(`deskgrid: warning: LAN discovery: ${error.message}\n`),
  });
  const now = Date.now();
  if (values.json) {
    process.stdout.write(`${JSON.stringify(nodes.map((node) => asJson(node, now)))}\n`);
    if (nodes.length === 0) process.stderr.write('no nodes found: run "deskgrid doctor" to see why\n');
    return 0;
  }
  if (nodes.length === 0) {
    process.stdout.write('no nodes found: run "deskgrid doctor" to see why\n');
    return 0;
  }
  process.stdout.write(table(nodes, now));
  return 0;
}

/** `--wait` in seconds; usage error when it is not a number in range. */
export function waitOption(text: string | undefined, fallback = DEFAULT_WAIT_S): number {
  const wait = numberOption('--wait', text, { min: 0, integer: false, inclusive: true }) ?? fallback;
  if (wait > MAX_WAIT_S) {
    throw new DeskGridError(ErrorCode.Usage, `--wait is at most ${MAX_WAIT_S} seconds, not ${wait}`);
  }
  return wait;
}

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
      const outcome = await checkNode(address, view.port, view.id, identity, key);
      return { ...view, ...outcome };
    }),
  );
}

interface CheckOutcome {
  state: ShownState;
  /** Why the TLS check failed (unreachable, or the proof failed); null otherwise. */
  detail: string | null;
  /** From the node's offer (trusted nodes only). */
  runtimes: string[] | null;
  busyCores: number | null;
  /** The node's clock minus ours. */
  clockSkewMs: number | null;
}

/**
 * Connects to a node's job port and runs the hello exchange as a submitter would, then hangs up.
 * Never rejects: the outcome is the node's state as this check found it.
 */
function checkNode(
  host: string,
  port: number,
  expectPeerId: string,
  identity: NodeIdentity,
  key: Buffer,
): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    let done = false;
    const socket = connect({
      host,
      port,
      cert: identity.certPem,
      key: identity.keyPem,
      // Trust comes from the join-code proof and the pinned id, as for any peer (remote-node.ts).
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    const finish = (state: ShownState, detail: string | null, keepSocket = false, offer?: Offer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!keepSocket) socket.destroy();
      resolve({
        state,
        detail,
        runtimes: offer?.runtimes ?? null,
        busyCores: offer?.busyCores ?? null,
        // Half the round trip is unknown; at LAN latency it is far below what matters here.
        clockSkewMs: offer?.time === undefined ? null : offer.time - Date.now(),
      });
    };
    const timer = setTimeout(
      () => finish('unreachable', `${host}:${port} did not answer within ${CHECK_TIMEOUT_MS / 1000} s`),
      CHECK_TIMEOUT_MS,
    );
    // Not `once`: an error after the first would otherwise have no listener and crash the process.
    socket.on('error', (error: Error) => finish('unreachable', `${host}:${port}: ${error.message}`));
    socket.once('secureConnect', () => {
      PeerConnection.establish(socket, {
        role: 'submitter',
        identity: { id: identity.id, name: identity.name, version: readPackageVersion() },
        proofKey: key,
        maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
        expectPeerId,
        handshakeTimeoutMs: CHECK_TIMEOUT_MS,
      }).then(
        (connection) => {
          // The node's first message is its offer: runtimes, busy cores, its clock.
          connection.once('message', (header) => {
            const parsed = v.safeParse(offerSchema, header);
            // A polite goodbye, so that the node does not log a broken connection.
            connection.close();
            finish('trusted', null, true, parsed.success ? parsed.output : undefined);
          });
        },
        (error: unknown) => {
          const code = error instanceof DeskGridError ? error.code : ErrorCode.Connection;
          const message = error instanceof Error ? error.message : String(error);
          if (code === ErrorCode.Auth || code === ErrorCode.Identity) finish('other cluster', message);
          else if (code === ErrorCode.Version) finish('version mismatch', message);
          else finish('unreachable', `${host}:${port}: ${message}`);
        },
      );
    });
  });
}

/** The usable LAN interfaces, or the one named; a usage error when there is none. */
function chosenInterfaces(address: string | undefined): LanInterface[] {
  const usable = lanInterfaces();
  if (address !== undefined) {
    const chosen = usable.filter((candidate) => candidate.address === address);
    if (chosen.length === 0) {
      throw new DeskGridError(
        ErrorCode.Usage,
        `${address} is not the address of a usable LAN interface of this computer (run deskgrid doctor to see why)`,
      );
    }
    return chosen;
  }
  if (usable.length === 0) {
    throw new DeskGridError(
      ErrorCode.Usage,
      'no LAN interface to listen on: this computer has only loopback, link-local or non-multicast ' +
        'interfaces, or none is up (run deskgrid doctor for details)',
    );
  }
  return usable;
}

/** One node in `deskgrid nodes --json`: the command's output contract. */
export interface ListedNode {
  id: string;
  shortId: string;
  name: string;
  addresses: string[];
  port: number;
  os: string;
  cores: number;
  version: string;
  protocol: number;
  cluster: string;
  state: ShownState;
  detail: string | null;
  runtimes: string[] | null;
  busyCores: number | null;
  clockSkewMs: number | null;
  lastSeenSecondsAgo: number;
}

function asJson(node: SurveyedNode, now: number): ListedNode {
  return {
    id: node.id,
    shortId: shortNodeId(node.id),
    name: node.name,
    addresses: node.addresses,
    port: node.port,
    os: node.os,
    cores: node.cores,
    version: node.version,
    protocol: node.protocol,
    cluster: node.cluster,
    state: node.state,
    detail: node.detail,
    runtimes: node.runtimes,
    busyCores: node.busyCores,
    clockSkewMs: node.clockSkewMs,
    lastSeenSecondsAgo: Math.max(0, Math.round((now - node.lastSeen) / 100) / 10),
  };
}

function table(nodes: readonly SurveyedNode[], now: number): string {
  const rows = [
    ['ID', 'NAME', 'ADDRESSES', 'OS', 'CORES', 'BUSY', 'RUNTIMES', 'VERSION', 'STATE', 'LAST SEEN'],
    ...nodes.map((node) => [
      shortNodeId(node.id),
      node.name,
      node.addresses.map((address) => `${address}:${node.port}`).join(', ') || '-',
      node.os,
      String(node.cores),
      node.busyCores === null ? '-' : String(node.busyCores),
      node.runtimes?.join(',') ?? '-',
      node.version,
      node.state,
      `${Math.max(0, Math.round((now - node.lastSeen) / 1000))} s ago`,
    ]),
  ];
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  const lines = rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  '),
  );
  const details = nodes
    .filter((node) => node.detail !== null)
    .map((node) => `${shortNodeId(node.id)} ${node.state}: ${node.detail ?? ''}`);
  return `${[...lines, ...(details.length > 0 ? ['', ...details] : [])].join('\n')}\n`;
}
