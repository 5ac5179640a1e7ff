// What every engine integration test file sets up: one real two-core Cluster per file, in its
// own temporary home, plus the fixture computations and small helpers to gather and read results.

import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import {
  Cluster,
  type Batch,
  type JobLog,
  type JobProgress,
  type JobProvisional,
  type JobResult,
  type WorkerLauncher,
} from '../../main/engine/index.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/engine/', import.meta.url));

/** Absolute path of a computation in test/fixtures/engine/. */
export const fixture = (name: string): string => join(FIXTURES, name);

export interface SharedCluster {
  /** The cluster every test of the file submits to. */
  readonly cluster: Cluster;
  /** Its data folder (a real path: tests compare paths exactly, and tmpdir() is a symlink on macOS). */
  readonly home: string;
}

/**
 * Registers beforeAll/afterAll hooks that start a two-core cluster in a fresh home and destroy
 * it (and the home) afterwards; read the fields inside tests only. `launcher`: how workers start
 * (default: child processes).
 */
export function useCluster(name: string, options: { launcher?: WorkerLauncher } = {}): SharedCluster {
  let home = '';
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    home = realpathSync(mkdtempSync(join(tmpdir(), `deskgrid-engine-${name}-`)));
    cluster = await Cluster.start({ home, cores: 2, ...options });
  });
  afterAll(async () => {
    await cluster?.destroy();
    rmSync(home, { recursive: true, force: true });
  });
  return {
    get cluster() {
      if (cluster === undefined) throw new Error('the cluster starts in beforeAll: use it inside tests');
      return cluster;
    },
    get home() {
      return home;
    },
  };
}

/** Gathers the batch's results as they arrive. */
export function collect(batch: Batch): JobResult[] {
  const results: JobResult[] = [];
  batch.on('result', (result) => results.push(result));
  return results;
}

/** Gathers the batch's ctx events (progress, provisional values, log lines) as they arrive. */
export function collectEvents(batch: Batch): {
  progress: JobProgress[];
  provisional: JobProvisional[];
  logs: JobLog[];
} {
  const events = { progress: [] as JobProgress[], provisional: [] as JobProvisional[], logs: [] as JobLog[] };
  batch.on('progress', (event) => events.progress.push(event));
  batch.on('provisional', (event) => events.provisional.push(event));
  batch.on('log', (event) => events.logs.push(event));
  return events;
}

/** A copy of the results in index order. */
export function byIndex(results: readonly JobResult[]): JobResult[] {
  return [...results].sort((a, b) => a.index - b.index);
}

/** The lines of a results folder's results.jsonl, as written. */
export function resultLines(out: string): string[] {
  return readFileSync(join(out, 'results.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line !== '');
}

/** The results recorded in a results folder's results.jsonl. */
export function readResultsFile(out: string): JobResult[] {
  return resultLines(out).map((line) => JSON.parse(line) as JobResult);
}
