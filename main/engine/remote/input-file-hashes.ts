// Content addresses of input files on the submitter's side: a folder dataset's file travels by
// its SHA-256, so a node that holds it already is not sent it again. Hashing a large file costs
// a full read, so hashes are remembered (by path, size and mtime) in a bounded LRU.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** Input files' hashes, the least recently used first (a Map keeps insertion order). */
const fileHashes = new Map<string, { hash: string; size: number; mtimeMs: number }>();
/** About 200 bytes each: 50 000 stay under 10 MB, and cover a large folder dataset. */
const MAX_FILE_HASHES = 50_000;

/** SHA-256 of an input file, remembered while the file is unchanged. */
export async function fileHash(path: string): Promise<{ hash: string; size: number }> {
  const info = await stat(path);
  const known = fileHashes.get(path);
  fileHashes.delete(path);
  if (known && known.size === info.size && known.mtimeMs === info.mtimeMs) {
    fileHashes.set(path, known);
    return known;
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const entry = { hash: hash.digest('hex'), size: info.size, mtimeMs: info.mtimeMs };
  fileHashes.set(path, entry);
  // Forgetting a hash only costs reading the file again if it is sent once more.
  for (const oldest of fileHashes.keys()) {
    if (fileHashes.size <= MAX_FILE_HASHES) break;
    fileHashes.delete(oldest);
  }
  return entry;
}
