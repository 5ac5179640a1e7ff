// `deskgrid nodes`: prints the engine's LAN survey (main/engine/doctor/lan-survey.ts) as a table
// or JSON: every DeskGrid node heard on the LAN for a few seconds, those that claim this cluster
// checked by dialling them as a submitter would.

import { DeskGridError, ErrorCode } from '../../shared/errors.js';
// Light entries rather than the engine's index: a quick command need not load the Cluster.
import {
  discoveryAllowed,
  lanInterfaces,
  type LanInterface,
  shortNodeId,
  surveyLan,
  type ShownState,
  type SurveyedNode,
} from '../engine/entry/doctor.js';
import { defaultDataHome, resolveJoinCode } from '../engine/entry/settings.js';
import { numberOption, parseCommandArgs, wantsHelp } from './options.js';
import { SECRET_OPTIONS, secretFromOptions } from './secret-input.js';

export const NODES_USAGE = `usage: deskgrid nodes [options]

Listens on the LAN for a few seconds and lists the DeskGrid nodes that answered.

options:
  --wait S          seconds to listen (default 2)
  --json            print one JSON array instead of a table
  --secret CODE     the cluster's join code (else DESKGRID_SECRET, else the one saved by deskgrid join)
  --interface IP    listen on the LAN interface with this address only (default: all)`;

export const DEFAULT_WAIT_S = 2;
const MAX_WAIT_S = 600;

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
