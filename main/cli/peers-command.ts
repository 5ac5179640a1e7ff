// `deskgrid peers add|remove|list`: the nodes `deskgrid run` contacts by address, saved in the
// settings, for networks where multicast (and so discovery on the LAN) does not get through.
// Addresses are checked with the parser --peer uses and saved in one canonical form.

import { wantsHelp } from './options.js';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { DEFAULT_NODE_PORT } from '../../shared/peer-address.js';
import { defaultDataHome, canonicalPeer, loadSettings, saveSettings } from '../engine/entry/settings.js';

export const PEERS_USAGE = `usage: deskgrid peers add HOST[:PORT]
       deskgrid peers remove HOST[:PORT]
       deskgrid peers list

Saves the addresses of nodes that "deskgrid run" should use even when they cannot be found on
the LAN (the port defaults to ${DEFAULT_NODE_PORT}; NODE-ID@HOST:PORT pins the node's id).`;

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
  // A saved entry is removed as written, even one that no longer parses (edited by hand).
  const peer =
    action === 'remove' && saved.includes(address.trim()) ? address.trim() : canonicalPeer(address);
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
