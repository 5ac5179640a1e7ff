// Raw TLS throughput between two hosts, the ceiling for DeskGrid's own data transfer:
//   node tls-throughput.js serve HOST PORT     (accepts one connection, discards what it reads)
//   node tls-throughput.js send HOST PORT MB   (prints {"mb_per_s": N} once the server has it all)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { loadIdentity } from '../main/engine/identity/node-identity.js';

const [mode, host = '127.0.0.1', portText = '0', megabytesText = '256'] = process.argv.slice(2);
const port = Number(portText);

if (mode === 'serve') {
  const home = mkdtempSync(join(tmpdir(), 'deskgrid-tls-'));
  const { certPem, keyPem } = loadIdentity(home).identity;
  rmSync(home, { recursive: true, force: true });
  const server = createServer({ cert: certPem, key: keyPem, minVersion: 'TLSv1.3' }, (socket) => {
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.on('end', () => {
      socket.end(String(received));
      server.close();
    });
  });
  server.listen(port, host, () => process.stdout.write('ready\n'));
} else if (mode === 'send') {
  const total = Number(megabytesText) * 1024 * 1024;
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const socket = connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, () => {
    const start = performance.now();
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    let reply = '';
    socket.on('data', (data: Buffer) => {
      reply += data.toString();
    });
    socket.on('end', () => {
      const seconds = (performance.now() - start) / 1000;
      process.stdout.write(`${JSON.stringify({ mb_per_s: Number(reply) / 1048576 / seconds })}\n`);
    });
    pump();
  });
} else {
  process.stderr.write('usage: tls-throughput.js serve HOST PORT | send HOST PORT MB\n');
  process.exitCode = 2;
}
