// Draws DeskGrid's icons as PNG files in assets/icons/ (committed; run again after changing the
// drawing: `node build/make-icons.mjs`). The app icon is a blue rounded square holding a 3 x 3
// grid of cores; the tray icons are the same grid in one colour per state: idle (grey), working
// (green), paused (amber). electron-builder makes the .ico and .icns from icon.png.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '../assets/icons');

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An RGBA PNG of size x size from pixel(x, y) -> [r, g, b, a]. */
function png(size, pixel) {
  const rows = [];
  for (let y = 0; y < size; y += 1) {
    const row = Buffer.alloc(1 + size * 4);
    for (let x = 0; x < size; x += 1) row.set(pixel(x, y), 1 + x * 4);
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows), { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Whether (u, v) in [0, 1) falls on one of the 3 x 3 cells inside `margin`. */
function onGrid(u, v, margin) {
  const span = 1 - 2 * margin;
  const cell = (t) => {
    const inner = (t - margin) / span;
    if (inner < 0 || inner >= 1) return false;
    const within = (inner * 3) % 1;
    return within > 0.12 && within < 0.88;
  };
  return cell(u) && cell(v);
}

function roundedSquare(u, v, radius) {
  const dx = Math.max(radius - u, 0, u - (1 - radius));
  const dy = Math.max(radius - v, 0, v - (1 - radius));
  return dx * dx + dy * dy <= radius * radius;
}

function appIcon(size) {
  return png(size, (x, y) => {
    const u = (x + 0.5) / size;
    const v = (y + 0.5) / size;
    if (!roundedSquare(u, v, 0.2)) return [0, 0, 0, 0];
    return onGrid(u, v, 0.2) ? [255, 255, 255, 255] : [37, 99, 235, 255];
  });
}

function trayIcon(size, [r, g, b]) {
  return png(size, (x, y) =>
    onGrid((x + 0.5) / size, (y + 0.5) / size, 0.06) ? [r, g, b, 255] : [0, 0, 0, 0],
  );
}

const STATES = { idle: [128, 128, 128], working: [22, 163, 74], paused: [217, 119, 6] };

mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'icon.png'), appIcon(512));
for (const [state, colour] of Object.entries(STATES)) {
  writeFileSync(join(OUT, `tray-${state}.png`), trayIcon(16, colour));
  writeFileSync(join(OUT, `tray-${state}@2x.png`), trayIcon(32, colour));
}
