// Checks a cached bundle against its content address before it is used. Bundles are stored
// under their hash (cache/bundles/<hash>); confined jobs cannot write there, but an unconfined
// job (on a node whose owner accepted those), or anything else of the node's user, could. A
// bundle that no longer hashes to its name is removed, so the submitter is asked for it again.

import { rm } from 'node:fs/promises';
import { pathExists } from '../path-exists.js';
import { hashFileSet, readFolder } from './file-set.js';

/** Bundles are sent in one frame: none is larger than this. */
const MAX_BUNDLE_BYTES = 4 * 1024 * 1024 * 1024;

/** Whether the bundle is there and unchanged; a changed one is deleted. */
export async function bundleIntact(folder: string, hash: string): Promise<boolean> {
  if (!(await pathExists(folder))) return false;
  try {
    if (hashFileSet(await readFolder(folder, MAX_BUNDLE_BYTES)) === hash) return true;
  } catch {
    // a symbolic link or an unreadable file inside: changed, too
  }
  await rm(folder, { recursive: true, force: true });
  return false;
}
