// One node of the discovery bench: announces itself on one LAN interface and prints a JSON line
// (with Date.now()) when mDNS starts and whenever a node of its cluster comes up or goes down.
//   node discovery-node.js ADDRESS NODE-ID CLUSTER-ID

import { DEFAULT_NODE_PORT } from '../shared/peer-address.js';
import { WIRE_PROTOCOL_VERSION } from '../shared/wire-protocol.js';
import { LanPresence } from '../main/engine/discovery/lan-presence.js';

const [address = '', id = '', cluster = ''] = process.argv.slice(2);
const say = (event: string, peer?: string): void => {
  process.stdout.write(`${JSON.stringify({ event, peer, at: Date.now() })}\n`);
};
const presence = LanPresence.start({
  publish: true,
  interfaces: [address],
  self: {
    id,
    cluster,
    protocol: WIRE_PROTOCOL_VERSION,
    cores: 1,
    os: process.platform,
    name: `bench-${id.slice(0, 4)}`,
    version: 'bench',
    port: DEFAULT_NODE_PORT,
  },
});
presence.membership.on('up', (node) => say('up', node.id));
presence.membership.on('down', (node) => say('down', node.id));
say('started');
process.once('SIGTERM', () => void presence.stop().then(() => process.exit(0)));
