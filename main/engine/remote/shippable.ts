// What a computation looks like on another node, on the submitter's side: a JS/TS module becomes
// one bundled file with everything it imports; a program or a Python function travels with the
// folder it came in (or alone). A bundle is content-addressed (SHA-256 of its file set), made
// once per computation, and kept while batches of that computation may still send it.

import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Computation } from '../../../shared/worker-protocol.js';
import { bundleTypeScript } from '../computation/bundle-typescript.js';
import { PYTHON_SKIPPED_FOLDERS } from '../computation/python-computation.js';
import type { FileEntry } from '../../../shared/wire-protocol.js';
import { hashFileSources, listFolder } from './file-set.js';

/** A bundle (a computation and its dependency files) may not be larger than this. */
const BUNDLE_LIMIT_BYTES = 256 * 1024 * 1024;

export interface Shippable {
  hash: string;
  entry: string;
  files: FileEntry[];
  /** Each file's bytes: a compiled module in memory, the files of a folder on disk (streamed when sent). */
  sources: Array<string | Buffer>;
}

/** Bundles being sent to nodes, by computation id; each is dropped when its batches end. */
const shippableCache = new Map<string, Promise<Shippable>>();

/** Drops a computation's bundle: no running batch will send it again. */
export function forgetShippable(computationId: string): void {
  shippableCache.delete(computationId);
}

/** Bytes of the bundles held for sending now (for the owner's view of what is kept). */
export async function shippableBytes(): Promise<number> {
  let total = 0;
  for (const pending of shippableCache.values()) {
    const shipped = await pending.catch(() => null);
    for (const source of shipped?.sources ?? []) if (Buffer.isBuffer(source)) total += source.length;
  }
  return total;
}

/** The computation's bundle, made on first use. */
export function shippable(computation: Computation, cacheDir: string): Promise<Shippable> {
  let cached = shippableCache.get(computation.id);
  if (!cached) {
    cached = makeShippable(computation, cacheDir);
    shippableCache.set(computation.id, cached);
    cached.catch(() => shippableCache.delete(computation.id));
  }
  return cached;
}

async function makeShippable(computation: Computation, cacheDir: string): Promise<Shippable> {
  let files: FileEntry[];
  let sources: Array<string | Buffer>;
  let entry: string;
  if (computation.kind === 'module') {
    const bundle = Buffer.from((await bundleTypeScript(computation.entry, cacheDir)).contents);
    entry = 'main.mjs';
    files = [{ path: entry, size: bundle.length, mode: 0o644 }];
    sources = [bundle];
  } else if (computation.root !== undefined) {
    // A Python function's folder goes without its caches and virtual environments.
    const skip = computation.kind === 'python' ? PYTHON_SKIPPED_FOLDERS : undefined;
    const listing = await listFolder(computation.root, BUNDLE_LIMIT_BYTES, skip);
    files = listing.files;
    sources = listing.paths;
    entry = computation.entry
      .slice(computation.root.length + 1)
      .split(/[\\/]/)
      .join('/');
  } else {
    const info = await stat(computation.entry);
    entry = basename(computation.entry);
    files = [{ path: entry, size: info.size, mode: info.mode & 0o755 }];
    sources = [computation.entry];
  }
  return { hash: await hashFileSources(files, sources), entry, files, sources };
}
