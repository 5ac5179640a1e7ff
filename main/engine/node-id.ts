// This node's id, as results name it. Made once per data folder and kept there.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const NODE_ID_FILE = 'node-id';
const NODE_ID = /^[0-9a-f]{64}$/;

export function loadNodeId(home: string): string {
  const file = join(home, NODE_ID_FILE);
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (NODE_ID.test(id)) return id;
  } catch {
    // first start: make one below
  }
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const id = randomBytes(32).toString('hex');
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}
