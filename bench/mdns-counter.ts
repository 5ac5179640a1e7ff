// The office bench's ear on the LAN: a process on a host of its own that joins the mDNS group
// (224.0.0.251:5353) on its one LAN interface and counts every datagram it hears, per sender and
// per kind (query or response), sending nothing itself. The bridge floods multicast to every port
// (no snooping), so this is every mDNS packet any host sent. It refuses to run unless its only
// interfaces are `lo` and `lan0`: a namespace of the bench, never this machine's real network.
//   node mdns-counter.js ADDRESS
// Each line on stdin ("mark") gets one JSON line back: the counts so far, with Date.now().

import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { createInterface } from 'node:readline';

const MDNS_GROUP = '224.0.0.251';
const MDNS_PORT = 5353;

const [address = ''] = process.argv.slice(2);
const names = Object.keys(networkInterfaces()).sort();
if (names.join(',') !== 'lan0,lo') {
  process.stderr.write(
    `mdns-counter: refusing to listen outside a bench LAN (interfaces: ${names.join(', ')})\n`,
  );
  process.exit(2);
}

interface Counts {
  queries: number;
  responses: number;
  bytes: number;
}
const bySender: Record<string, Counts> = {};

const socket = createSocket({ type: 'udp4', reuseAddr: true });
socket.on('message', (packet, from) => {
  const counts = (bySender[from.address] ??= { queries: 0, responses: 0, bytes: 0 });
  // The QR bit of the DNS header's flags: set in responses.
  if (((packet[2] ?? 0) & 0x80) !== 0) counts.responses += 1;
  else counts.queries += 1;
  counts.bytes += packet.length;
});
socket.bind(MDNS_PORT, () => {
  socket.addMembership(MDNS_GROUP, address);
  process.stdout.write(`${JSON.stringify({ t: 'ready', at: Date.now() })}\n`);
});
createInterface({ input: process.stdin }).on('line', () => {
  process.stdout.write(`${JSON.stringify({ t: 'mark', at: Date.now(), bySender })}\n`);
});
process.stdin.once('end', () => socket.close());
