// A batch's results folder: results.jsonl for people and tools, batch.db (SQLite) as the source
// of truth that survives a crash. A result is committed to SQLite first and appended to
// results.jsonl after; on resume, results.jsonl is rewritten from SQLite in completion order,
// so a crash between the two steps can neither lose a line nor write one twice. The `idx`
// column is unique: a job is recorded once, whatever happens.
//
// Writes are grouped: results arriving in the same turn of the event loop, or while results pour
// in within a couple of ms (commit-pacer.ts), share one transaction.

import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { emptyStatusCounts, type FinalStatus, type JobResult } from '../../../shared/job.js';
import { toResultLine } from '../../../shared/result-line.js';
import { createLogger } from '../log.js';
import { CommitPacer } from './commit-pacer.js';
import { FolderLock } from './folder-lock.js';
import type { Requirements } from '../requirements.js';

const log = createLogger('store');

export const RESULTS_FILE = 'results.jsonl';
export const DATABASE_FILE = 'batch.db';
export const OUTPUTS_DIR = 'outputs';
/** Job folders in progress; the same file system as outputs/, so finished outputs move by rename. */
export const WORK_DIR = '.work';
/** Held by the one process that writes the folder (see folder-lock.ts). */
export const LOCK_FILE = 'batch.lock';
const SCHEMA_VERSION = '1';
/** SQLite's page cache per batch folder, in KiB. */
const PAGE_CACHE_KIB = 1024;

/** Everything needed to run a batch again from its folder. */
export interface BatchSpec {
  computation: string;
  program: boolean;
  stdin: boolean;
  dataset: string | null;
  split: string | null;
  range: string | null;
  /** Inputs came from an API iterable: only the program that made them can resume. */
  inputsFromApi: boolean;
  timeoutSeconds: number | null;
  retries: number;
  reentrant: boolean;
  maxMemoryMb: number | null;
  /** Size and modification time of the dataset file, to refuse resuming over a changed one. */
  datasetStamp: { size: number; mtimeMs: number } | null;
  /**
   * The batch's name on other nodes, under which they keep its results if this submitter
   * vanishes (absent in folders of older versions: their batch then claims nothing).
   */
  key?: string;
  priority?: number;
  requires?: Requirements;
  /** Python functions: the interpreter given with --python (absent: each node's own python3). */
  python?: string;
}

export type StatusCounts = Record<FinalStatus, number>;

interface Pending {
  result: JobResult;
  line: string;
  then: () => void;
}

export class BatchStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[number, string, string]>;
  private readonly resultsFd: number;
  private pending: Pending[] = [];
  private readonly pacer = new CommitPacer(() => this.flush());
  private closed = false;

  private constructor(
    readonly dir: string,
    db: Database.Database,
    readonly spec: BatchSpec,
    private readonly lock: FolderLock,
  ) {
    this.db = db;
    this.insert = db.prepare('INSERT OR IGNORE INTO results (idx, status, line) VALUES (?, ?, ?)');
    this.resultsFd = openSync(join(dir, RESULTS_FILE), 'a');
  }

  /** Starts a new batch folder; refuses one that already holds a batch. */
  static create(dir: string, spec: BatchSpec): BatchStore {
    mkdirSync(dir, { recursive: true });
    const lock = lockFolder(dir);
    return withLock(lock, () => {
      if (existsSync(join(dir, DATABASE_FILE))) {
        throw new DeskGridError(
          ErrorCode.Usage,
          `${dir} already holds a batch: resume it with --resume ${dir}, or choose another --out folder`,
        );
      }
      const db = openDatabase(dir);
      db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE results (seq INTEGER PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, status TEXT NOT NULL, line TEXT NOT NULL);
    `);
      const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      db.transaction(() => {
        put.run('schema', SCHEMA_VERSION);
        put.run('spec', JSON.stringify(spec));
        put.run('createdAt', String(Date.now()));
      })();
      closeSync(openSync(join(dir, RESULTS_FILE), 'w'));
      return new BatchStore(dir, db, spec, lock);
    });
  }

  /** Opens an existing batch folder to resume it; results.jsonl is rewritten from the database. */
  static open(dir: string): BatchStore {
    if (!existsSync(join(dir, DATABASE_FILE))) {
      throw new DeskGridError(ErrorCode.Resume, `${dir} holds no DeskGrid batch (no ${DATABASE_FILE})`);
    }
    // Before anything is read or rewritten: the holder may be writing the folder right now.
    const lock = lockFolder(dir);
    return withLock(lock, () => {
      let db: Database.Database;
      let spec: BatchSpec;
      try {
        db = openDatabase(dir);
        const meta = new Map(
          (db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map(
            (row) => [row.key, row.value],
          ),
        );
        if (meta.get('schema') !== SCHEMA_VERSION) {
          throw new Error(
            `it was written by another version of DeskGrid (schema ${meta.get('schema') ?? 'unknown'})`,
          );
        }
        spec = JSON.parse(meta.get('spec') ?? 'null') as BatchSpec;
      } catch (error) {
        throw new DeskGridError(
          ErrorCode.Resume,
          `cannot resume ${dir}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      rewriteResults(dir, db);
      return new BatchStore(dir, db, spec, lock);
    });
  }

  /** Indices of every job that already has a result. */
  recordedIndices(): Set<number> {
    const indices = new Set<number>();
    for (const row of this.db.prepare('SELECT idx FROM results').iterate() as Iterable<{ idx: number }>) {
      indices.add(row.idx);
    }
    return indices;
  }

  counts(): StatusCounts {
    const counts: StatusCounts = emptyStatusCounts();
    const rows = this.db.prepare('SELECT status, COUNT(*) AS n FROM results GROUP BY status').all() as Array<{
      status: FinalStatus;
      n: number;
    }>;
    for (const row of rows) counts[row.status] = row.n;
    return counts;
  }

  /** Records a result; `then` runs once it is durable and in results.jsonl. */
  record(result: JobResult, then: () => void): void {
    if (this.closed) throw new DeskGridError(ErrorCode.Closed, 'the batch store is closed');
    this.pending.push({ result, line: toResultLine(result), then });
    this.pacer.due();
  }

  /** Commits and appends everything recorded so far. */
  flush(): void {
    this.pacer.committed();
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const written: Pending[] = [];
    this.db.transaction(() => {
      for (const item of batch) {
        if (this.insert.run(item.result.index, item.result.status, item.line).changes === 1)
          written.push(item);
        else
          log.error('a job was recorded twice; the second result is dropped', { index: item.result.index });
      }
    })();
    if (written.length > 0) writeSync(this.resultsFd, `${written.map((item) => item.line).join('\n')}\n`);
    for (const item of written) item.then();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    closeSync(this.resultsFd);
    this.db.close();
    this.lock.release();
  }
}

function lockFolder(dir: string): FolderLock {
  return FolderLock.acquire(
    join(dir, LOCK_FILE),
    (holder) =>
      `the results folder ${dir} is in use by another DeskGrid process (${holder}): let it finish or stop it, then resume with --resume ${dir}`,
  );
}

/** Runs `open` holding `lock`, which is let go if `open` fails. */
function withLock<T>(lock: FolderLock, open: () => T): T {
  try {
    return open();
  } catch (error) {
    lock.release();
    throw error;
  }
}

function openDatabase(dir: string): Database.Database {
  const db = new Database(join(dir, DATABASE_FILE));
  // WAL with synchronous=NORMAL survives a killed process (the threat here) at a fraction of FULL's cost.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // better-sqlite3 builds SQLite with a 16 MB page cache, which a batch of 100 000 results fills
  // (16 MB of the submitter's memory, never given back). The table is only appended to and read
  // from start to end: its hot pages are the last leaves of its two B-trees.
  db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  return db;
}

function rewriteResults(dir: string, db: Database.Database): void {
  const target = join(dir, RESULTS_FILE);
  const temporary = `${target}.tmp`;
  const fd = openSync(temporary, 'w');
  try {
    let chunk: string[] = [];
    for (const row of db.prepare('SELECT line FROM results ORDER BY seq').iterate() as Iterable<{
      line: string;
    }>) {
      chunk.push(row.line);
      if (chunk.length === 1000) {
        writeSync(fd, `${chunk.join('\n')}\n`);
        chunk = [];
      }
    }
    if (chunk.length > 0) writeSync(fd, `${chunk.join('\n')}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, target);
}
