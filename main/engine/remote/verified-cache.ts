// Checks a cached bundle against its content address before it is used. Bundles are stored
// under their hash (cache/bundles/<hash>); confined jobs cannot write there, but an unconfined
// job (on a node whose owner accepted those), or anything else of the node's user, could. A
// bundle that no longer hashes to its name is removed, so the submitter is asked for it again.

import { rm } from 'node:fs/promises';
import { pathExists } from '../path-exists.js';
import { hashFileSources, listFolder } from './file-set.js';

/** No bundle is larger than this (submitters send at most 256 MiB). */
const MAX_BUNDLE_BYTES = 4 * 1024 * 1024 * 1024;

/** Whether the bundle is there and unchanged; a changed one is deleted. */
export async function bundleIntact(folder: string, hash: string): Promise<boolean> {
  if (!(await pathExists(folder))) return false;
  try {
    const listing = await listFolder(folder, MAX_BUNDLE_BYTES);
    // Hashed piece by piece from disk: a large bundle is never read into memory whole.
    if ((await hashFileSources(listing.files, listing.paths)) === hash) return true;
  } catch {
    // a symbolic link or an unreadable file inside: changed, too
  }
  await rm(folder, { recursive: true, force: true });
  return false;
}
