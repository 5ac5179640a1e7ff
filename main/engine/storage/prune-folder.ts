// Bounding a folder of cache entries (files or folders, one per name): entries unused for longer
// than the bound's age go, then the least recently used go until the folder fits its size. An
// entry's last use is its newest modification time (of a folder: of anything in it), which users
// of the cache refresh (`markUsed`); an entry in use, or used within the grace period, is never
// removed.

import { lstat, readdir, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';

export interface FolderBound {
  maxBytes: number;
  maxAgeMs: number;
  /** Entries used this recently stay whatever the bound: a use may be under way. */
  graceMs: number;
}

export interface FolderEntry {
  name: string;
  bytes: number;
  /** Last use (ms since the epoch): the entry's modification time. */
  usedAt: number;
}

export interface PruneOutcome {
  removed: FolderEntry[];
  kept: FolderEntry[];
}

/** Notes that a cache entry was just used, so that it is the last to go. Missing: nothing. */
export async function markUsed(path: string): Promise<void> {
  const now = new Date();
  try {
    await utimes(path, now, now);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The entries of `dir` with their size and last use; none when it does not exist. */
export async function folderEntries(dir: string): Promise<FolderEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const entries: FolderEntry[] = [];
  for (const name of names) {
    const measured = await measure(join(dir, name));
    if (measured !== null) entries.push({ name, ...measured });
  }
  return entries;
}

/**
 * Removes what is over the bound: first every entry older than its age, then the least recently
 * used until the rest fits. `inUse(name)` entries are never removed (nor counted as removable).
 */
export async function pruneFolder(
  dir: string,
  bound: FolderBound,
  inUse: (name: string) => boolean,
  now = Date.now(),
): Promise<PruneOutcome> {
  const entries = (await folderEntries(dir)).sort((a, b) => a.usedAt - b.usedAt);
  let total = entries.reduce((sum, entry) => sum + entry.bytes, 0);
  const removed: FolderEntry[] = [];
  const kept: FolderEntry[] = [];
  for (const entry of entries) {
    const age = now - entry.usedAt;
    const over = age > bound.maxAgeMs || total > bound.maxBytes;
    if (!over || age < bound.graceMs || inUse(entry.name)) {
      kept.push(entry);
      continue;
    }
    await rm(join(dir, entry.name), { recursive: true, force: true });
    total -= entry.bytes;
    removed.push(entry);
  }
  return { removed, kept };
}

/** Bytes under `path` and its last use; null when it vanished meanwhile. */
async function measure(path: string): Promise<{ bytes: number; usedAt: number } | null> {
  let info;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  if (!info.isDirectory()) return { bytes: info.size, usedAt: info.mtimeMs };
  let bytes = 0;
  // The newest of the folder (markUsed touches it) and what it holds (an upload being written).
  let usedAt = info.mtimeMs;
  let names: string[] = [];
  try {
    names = await readdir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const name of names) {
    const inner = await measure(join(path, name));
    if (inner === null) continue;
    bytes += inner.bytes;
    usedAt = Math.max(usedAt, inner.usedAt);
  }
  return { bytes, usedAt };
}
