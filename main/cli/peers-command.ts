// `deskgrid peers add|remove|list`: the nodes `deskgrid run` contacts by address, saved in the
// settings, for networks where multicast (and so discovery on the LAN) does not get through.
// Addresses are checked with the parser --peer uses and saved in one canonical form.

import { wantsHelp } from './options.js';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { parsePeer } from '../engine/cluster.js';
import { defaultDataHome } from '../engine/paths.js';
import { loadSettings, saveSettings } from '../engine/settings.js';

export const DEFAULT_PEER_PORT = 7717;

export const PEERS_USAGE = `usage: deskgrid peers add HOST[:PORT]
       deskgrid peers remove HOST[:PORT]
       deskgrid peers list

Saves the addresses of nodes that "deskgrid run" should use even when they cannot be found on
the LAN (the port defaults to ${DEFAULT_PEER_PORT}; NODE-ID@HOST:PORT pins the node's id).`;

export function peersCommand(argv: string[]): number {
  if (wantsHelp(argv)) {
    process.stdout.write(`${PEERS_USAGE}\n`);
    return 0;
  }
  const [action, address, ...extra] = argv;
  const home = defaultDataHome();
  const saved = loadSettings(home).peers ?? [];
  if (action === 'list' && address === undefined) {
    process.stdout.write(saved.length === 0 ? 'no saved peers\n' : `${saved.join('\n')}\n`);
    return 0;
  }
  if ((action !== 'add' && action !== 'remove') || address === undefined || extra.length > 0) {
    throw new DeskGridError(ErrorCode.Usage, `expected add, remove or list\n${PEERS_USAGE}`);
  }
  const peer = canonicalPeer(address);
  if (action === 'add') {
    if (saved.includes(peer)) {
      process.stdout.write(`${peer} is saved already\n`);
      return 0;
    }
    saveSettings(home, { peers: [...saved, peer] });
    process.stdout.write(`saved peer ${peer}\n`);
    return 0;
  }
  if (!saved.includes(peer)) {
    process.stderr.write(`deskgrid: ${peer} is not a saved peer (deskgrid peers list shows them)\n`);
    return 1;
  }
  const rest = saved.filter((entry) => entry !== peer);
  // An empty list is dropped from the file rather than kept as [].
  saveSettings(home, { peers: rest.length === 0 ? undefined : rest });
  process.stdout.write(`removed peer ${peer}\n`);
  return 0;
}

/** HOST[:PORT] (or [v6][:PORT], either behind ID@) as "host:port", the port defaulted. */
export function canonicalPeer(text: string): string {
  const trimmed = text.trim();
  const at = /^[0-9a-f]{64}@/.test(trimmed) ? 65 : 0;
  const where = trimmed.slice(at);
  const portless = !where.includes(':') || (where.startsWith('[') && where.endsWith(']'));
  const { host, port, id } = parsePeer(portless ? `${trimmed}:${DEFAULT_PEER_PORT}` : trimmed);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return `${id === undefined ? '' : `${id}@`}${shownHost}:${port}`;
}
