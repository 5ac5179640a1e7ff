// The parts of the data folder a Cluster keeps within bounds (storage-keeper.ts), and what of each
// its running work uses: the bundles its submitters' sessions load from, the compiled TypeScript
// of its running batches; and the results it keeps for absent submitters, reported only.

import { sep } from 'node:path';
import { dataPaths } from '../paths.js';
import type { KeptResults } from '../remote/kept-results.js';
import { StorageKeeper } from './storage-keeper.js';

export interface EngineUse {
  /** Entry files of the computations loaded now (sessions' bundles, running batches' modules). */
  entries(): Iterable<string>;
  kept(): KeptResults | null;
}

export function engineStorage(home: string, use: EngineUse): StorageKeeper {
  const paths = dataPaths(home);
  const keeper = new StorageKeeper();
  // The name of the entry of `dir` that holds `path`, if any.
  const usedIn = (dir: string) => (name: string) => {
    for (const entry of use.entries()) {
      if (!entry.startsWith(dir + sep)) continue;
      const first = entry.slice(dir.length + 1).split(sep)[0];
      if (first === name) return true;
    }
    return false;
  };
  keeper.add({ name: 'bundles', dir: paths.bundles, inUse: usedIn(paths.bundles) });
  // Input files are copied into each job's folder as it is queued: none is in use after that.
  keeper.add({ name: 'files', dir: paths.files, inUse: () => false });
  keeper.add({
    name: 'computations',
    dir: paths.computationCache,
    inUse: usedIn(paths.computationCache),
  });
  keeper.report(() => {
    const usage = use.kept()?.usage();
    if (!usage) return null;
    return {
      name: 'kept',
      bytes: usage.bytes,
      entries: usage.results,
      maxBytes: usage.limitBytes,
      maxAgeMs: usage.keepMs,
      inUseEntries: usage.results,
      clearable: false,
    };
  });
  return keeper;
}
