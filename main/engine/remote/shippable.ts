// What a computation looks like on another node, on the submitter's side: a JS/TS module becomes
// one bundled file with everything it imports; a program or a Python function travels with the
// folder it came in (or alone). A bundle is content-addressed (SHA-256 of its file set), made
// once per computation, and kept while batches of that computation may still send it.

import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Computation } from '../../../shared/worker-protocol.js';
import { bundleTypeScript } from '../computation/bundle-typescript.js';
import { PYTHON_SKIPPED_FOLDERS } from '../computation/python-computation.js';
import { hashFileSet, readFolder, type FileSet } from './file-set.js';

/** A bundle (a computation and its dependency files) may not be larger than this. */
const BUNDLE_LIMIT_BYTES = 256 * 1024 * 1024;

export interface Shippable {
  hash: string;
  entry: string;
  set: FileSet;
}

/** Bundles being sent to nodes, by computation id; each is dropped when its batches end. */
const shippableCache = new Map<string, Promise<Shippable>>();

/** Drops a computation's bundle bytes (up to 256 MB): no running batch will send it again. */
export function forgetShippable(computationId: string): void {
  shippableCache.delete(computationId);
}

/** Bytes of the bundles held for sending now (for the owner's view of what is kept). */
export async function shippableBytes(): Promise<number> {
  let total = 0;
  for (const pending of shippableCache.values()) {
    const shipped = await pending.catch(() => null);
    for (const data of shipped?.set.data ?? []) total += data.length;
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
  let set: FileSet;
  let entry: string;
  if (computation.kind === 'module') {
    const bundle = await bundleTypeScript(computation.entry, cacheDir);
    entry = 'main.mjs';
    set = {
      files: [{ path: entry, size: bundle.contents.length, mode: 0o644 }],
      data: [Buffer.from(bundle.contents)],
    };
  } else if (computation.root !== undefined) {
    // A Python function's folder goes without its caches and virtual environments.
    const skip = computation.kind === 'python' ? PYTHON_SKIPPED_FOLDERS : undefined;
    set = await readFolder(computation.root, BUNDLE_LIMIT_BYTES, skip);
    entry = computation.entry
      .slice(computation.root.length + 1)
      .split(/[\\/]/)
      .join('/');
  } else {
    const bytes = await readFile(computation.entry);
    const info = await stat(computation.entry);
    entry = basename(computation.entry);
    set = { files: [{ path: entry, size: bytes.length, mode: info.mode & 0o755 }], data: [bytes] };
  }
  return { hash: hashFileSet(set), entry, set };
}
