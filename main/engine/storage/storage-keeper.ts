// What a node or app keeps in its data folder, each part within a bound: the bundles and input
// files other submitters sent, the TypeScript this computer compiled, the UI's uploads. Prunes
// every hour (and once soon after start), says what each part holds for the owner's Settings, and
// clears on request what is safe to clear. Whoever owns a part says what of it is in use by a
// running batch: that is never removed. Results kept for absent submitters are reported here too,
// but they have their own bounds (kept-results.ts) and are not the owner's to clear.

import { folderEntries, pruneFolder, type FolderBound, type FolderEntry } from './prune-folder.js';

const MB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;
const FIRST_PRUNE_MS = 60 * 1000;

export type StorageAreaName = 'bundles' | 'files' | 'computations' | 'uploads';

/** The default bounds (README "What DeskGrid keeps"). */
export const STORAGE_LIMITS: Record<StorageAreaName, StorageLimit> = {
  bundles: { megabytes: 1024, days: 30 },
  files: { megabytes: 4096, days: 7 },
  computations: { megabytes: 256, days: 30 },
  uploads: { megabytes: 4096, days: 7 },
};
/** Whatever the bounds, what was used in the last hour stays: a use may be under way. */
const PRUNE_GRACE_MS = 60 * 60 * 1000;

export interface StorageLimit {
  megabytes: number;
  days: number;
}

export type StorageLimits = Partial<Record<StorageAreaName, Partial<StorageLimit>>>;

/**
 * What an owner's clear spares whatever its owner says of it: entries used in the last minutes.
 * Input files are in use between the submitter's "have you got these?" and its jobs, uploads
 * between their drop and their batch, a bundle between its arrival and its loading: no running
 * batch records those yet.
 */
const CLEAR_GRACE_MS = 10 * 60 * 1000;

export interface StorageArea {
  name: StorageAreaName;
  dir: string;
  /** True for an entry (by name) that a running batch, session or upload uses now. */
  inUse: (name: string) => boolean;
  /** Told of each entry removed, to forget what it knew of it. */
  removed?: (name: string) => void;
}

export interface AreaUsage {
  name: StorageAreaName | 'kept';
  bytes: number;
  entries: number;
  maxBytes: number;
  maxAgeMs: number;
  /** Entries a clear would leave, as they are in use. */
  inUseEntries: number;
  clearable: boolean;
}

export class StorageKeeper {
  private readonly areas = new Map<StorageAreaName, StorageArea>();
  private limits: Record<StorageAreaName, StorageLimit> = { ...STORAGE_LIMITS };
  private readonly reports: Array<() => AreaUsage | null> = [];
  private timers: NodeJS.Timeout[] = [];
  /** One prune or clear at a time: two would measure and remove the same entries. */
  private running: Promise<unknown> = Promise.resolve();

  /** Changes the bounds of some parts (the others keep theirs). */
  setLimits(limits: StorageLimits): void {
    for (const [name, limit] of Object.entries(limits) as Array<[StorageAreaName, Partial<StorageLimit>]>) {
      this.limits[name] = { ...this.limits[name], ...limit };
    }
  }

  /** Adds (or replaces) a part of the data folder to keep within its bound. */
  add(area: StorageArea): void {
    this.areas.set(area.name, area);
  }

  /** Adds a part that bounds itself and is only reported (results kept for absent submitters). */
  report(usage: () => AreaUsage | null): void {
    this.reports.push(usage);
  }

  /** Prunes soon, then every hour, while the process runs. */
  start(): void {
    const prune = () => void this.prune().catch(() => undefined);
    this.timers = [setTimeout(prune, FIRST_PRUNE_MS), setInterval(prune, PRUNE_INTERVAL_MS)];
    for (const timer of this.timers) timer.unref();
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
  }

  /** Brings every part within its bound; returns the bytes removed per part. */
  prune(now = Date.now()): Promise<Partial<Record<StorageAreaName, number>>> {
    return this.serial(async () => {
      const freed: Partial<Record<StorageAreaName, number>> = {};
      for (const area of this.areas.values()) {
        const outcome = await pruneFolder(area.dir, this.bound(area.name), area.inUse, now);
        freed[area.name] = forget(area, outcome.removed);
      }
      return freed;
    });
  }

  /** Removes everything of these parts that is not in use; returns the bytes freed. */
  clear(names: readonly StorageAreaName[]): Promise<number> {
    return this.serial(async () => {
      let freed = 0;
      for (const name of names) {
        const area = this.areas.get(name);
        if (area === undefined) continue;
        const everything = { maxBytes: 0, maxAgeMs: 0, graceMs: CLEAR_GRACE_MS };
        freed += forget(area, (await pruneFolder(area.dir, everything, area.inUse)).removed);
      }
      return freed;
    });
  }

  /** What each part holds now. */
  async usage(): Promise<AreaUsage[]> {
    const found: AreaUsage[] = [];
    for (const area of this.areas.values()) {
      const entries = await folderEntries(area.dir);
      found.push({
        name: area.name,
        bytes: entries.reduce((sum, entry) => sum + entry.bytes, 0),
        entries: entries.length,
        maxBytes: this.bound(area.name).maxBytes,
        maxAgeMs: this.bound(area.name).maxAgeMs,
        inUseEntries: entries.filter((entry) => area.inUse(entry.name)).length,
        clearable: true,
      });
    }
    for (const report of this.reports) {
      const usage = report();
      if (usage !== null) found.push(usage);
    }
    return found;
  }

  private bound(name: StorageAreaName): FolderBound {
    const limit = this.limits[name];
    return { maxBytes: limit.megabytes * MB, maxAgeMs: limit.days * DAY_MS, graceMs: PRUNE_GRACE_MS };
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.running.then(work, work);
    this.running = next.catch(() => undefined);
    return next;
  }
}

/** Tells the area's owner what went; the bytes freed. */
function forget(area: StorageArea, removed: FolderEntry[]): number {
  for (const entry of removed) area.removed?.(entry.name);
  return removed.reduce((sum, entry) => sum + entry.bytes, 0);
}
