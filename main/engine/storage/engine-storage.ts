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
  // Whether an entry of `dir` holds a computation in use.
  const usedIn = (dir: string) => (name: string) => {
    for (const entry of use.entries()) {
      if (!entry.startsWith(dir + sep)) continue;
      const first = entry.slice(dir.length + 1).split(sep)[0];
      if (first === name) return true;
    }
    return false;
  };
  // What other submitters sent belongs to the node serving them (one per data folder): a cluster
  // that does not serve cannot tell what that node's sessions use, so it leaves all of it.
  const serving = () => use.kept() !== null;
  const inBundles = usedIn(paths.bundles);
  keeper.add({ name: 'bundles', dir: paths.bundles, inUse: (name) => !serving() || inBundles(name) });
  // Input files are copied into each job's folder as it is queued: none is in use after that.
  keeper.add({ name: 'files', dir: paths.files, inUse: () => !serving() });
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
