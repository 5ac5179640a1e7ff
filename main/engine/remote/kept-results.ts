// The node's journal of other submitters' jobs (SQLite, in the node's data folder), so that a
// result survives its submitter: a job of a batch that asked for it is written down when it
// arrives and forgotten only when the submitter acknowledges its result. If the submitter
// vanishes, the node finishes the job and keeps the result here until the submitter comes back
// for it (`claim`), or until it expires. If the node itself dies, the jobs it had accepted are
// still written down on restart: it reports them lost, so the submitter runs them again.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../log.js';

const log = createLogger('kept-results');

export const KEPT_DATABASE = 'kept-results.db';
/** How long kept results wait for their submitter unless the node is told otherwise. */
export const DEFAULT_KEEP_DAYS = 7;
/** Disk the kept results may take unless the node is told otherwise. */
export const DEFAULT_KEEP_MB = 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface KeepLimits {
  days: number;
  megabytes: number;
}

/** One job of a submitter's batch, as the journal names it. */
export interface JobRef {
  submitter: string;
  batch: string;
  index: number;
  attempt: number;
}

export interface KeptRow extends JobRef {
  key: number;
  /** The result's JSON header (without its connection-specific id) and its body. */
  header: string;
  body: Buffer;
}

export interface ClaimAnswer {
  kept: KeptRow[];
  /** Jobs this node accepted in an earlier life (it was killed while they were to run). */
  lost: Array<{ index: number; reason: string }>;
}

type Statement = Database.Statement;

export class KeptResults {
  private readonly db: Database.Database;
  private readonly limitBytes: number;
  private readonly keepMs: number;
  private bytes = 0;
  /** Ids of (submitter, batch) pairs: the hot table stores small integer keys, not 64-char ids. */
  private readonly runIds = new Map<string, number>();
  private lastRun = { submitter: '', batch: '', id: -1 };
  private readonly acceptAll: (rows: JobRef[], at: number) => void;
  private readonly forgetAll: (rows: JobRef[]) => void;
  private readonly sql: Record<
    | 'findRun'
    | 'addRun'
    | 'accept'
    | 'forget'
    | 'keep'
    | 'lose'
    | 'kept'
    | 'lostOf'
    | 'dropLost'
    | 'handOver',
    Statement
  >;

  constructor(dataDir: string, limits: KeepLimits) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(dataDir, KEPT_DATABASE));
    this.db.pragma('journal_mode = WAL');
    // Durable against a killed process (the OS still writes the WAL), which is what a node dies of.
    this.db.pragma('synchronous = NORMAL');
    // `accepted` takes a row per job and loses it per acknowledgement: keyed by integers, without
    // a rowid, it costs a few microseconds a job. Results wait in `kept`, lost jobs in `lost`.
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY, submitter TEXT NOT NULL, batch TEXT NOT NULL, UNIQUE (submitter, batch)
      );
      CREATE TABLE IF NOT EXISTS accepted (
        run INTEGER NOT NULL, idx INTEGER NOT NULL, attempt INTEGER NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (run, idx, attempt)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS kept (
        key INTEGER PRIMARY KEY, run INTEGER NOT NULL, idx INTEGER NOT NULL, attempt INTEGER NOT NULL,
        header TEXT NOT NULL, body BLOB NOT NULL, bytes INTEGER NOT NULL, at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS kept_by_run ON kept (run);
      CREATE TABLE IF NOT EXISTS lost (
        run INTEGER NOT NULL, idx INTEGER NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS lost_by_run ON lost (run);
    `);
    this.limitBytes = limits.megabytes * 1024 * 1024;
    this.keepMs = limits.days * DAY_MS;
    this.sql = {
      findRun: this.db.prepare('SELECT id FROM runs WHERE submitter = ? AND batch = ?'),
      addRun: this.db.prepare('INSERT INTO runs (submitter, batch) VALUES (?, ?)'),
      accept: this.db.prepare('INSERT OR REPLACE INTO accepted (run, idx, attempt, at) VALUES (?, ?, ?, ?)'),
      forget: this.db.prepare('DELETE FROM accepted WHERE run = ? AND idx = ? AND attempt = ?'),
      keep: this.db.prepare(
        'INSERT INTO kept (run, idx, attempt, header, body, bytes, at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING key',
      ),
      lose: this.db.prepare('INSERT INTO lost (run, idx, reason, at) VALUES (?, ?, ?, ?)'),
      kept: this.db.prepare('SELECT key, idx, attempt, header, body FROM kept WHERE run = ? ORDER BY key'),
      lostOf: this.db.prepare('SELECT idx, reason FROM lost WHERE run = ?'),
      dropLost: this.db.prepare('DELETE FROM lost WHERE run = ?'),
      handOver: this.db.prepare(
        'DELETE FROM kept WHERE key = ? AND run IN (SELECT id FROM runs WHERE submitter = ?) RETURNING bytes',
      ),
    };
    this.acceptAll = this.db.transaction((rows: JobRef[], at: number) => {
      for (const row of rows) this.sql.accept.run(this.runId(row), row.index, row.attempt, at);
    });
    this.forgetAll = this.db.transaction((rows: JobRef[]) => {
      for (const row of rows) this.sql.forget.run(this.runId(row), row.index, row.attempt);
    });
    // Whatever was accepted by an earlier life of this node will never finish: it died with it.
    const lost = this.db.transaction(() => {
      const moved = this.db
        .prepare('INSERT INTO lost (run, idx, reason, at) SELECT run, idx, ?, ? FROM accepted')
        .run('the node restarted while the job was to run there', Date.now()).changes;
      this.db.exec('DELETE FROM accepted');
      return moved;
    })();
    const expired = this.expire();
    if (lost > 0 || expired > 0) log.info('journal opened', { lost, expired });
  }

  /** Forgets what waited longer than the limit for its submitter; returns how many. */
  expire(): number {
    if (!this.db.open) return 0;
    const before = Date.now() - this.keepMs;
    const expired = this.db.transaction(
      () =>
        this.db.prepare('DELETE FROM kept WHERE at < ?').run(before).changes +
        this.db.prepare('DELETE FROM lost WHERE at < ?').run(before).changes,
    )();
    this.bytes = (
      this.db.prepare('SELECT COALESCE(SUM(bytes), 0) AS total FROM kept').get() as { total: number }
    ).total;
    return expired;
  }

  /** Writes down jobs as they arrive. */
  accepted(rows: JobRef[]): void {
    if (rows.length > 0 && this.db.open) this.acceptAll(rows, Date.now());
  }

  /** The submitter has these results (or no longer wants the jobs). */
  forgotten(rows: JobRef[]): void {
    if (rows.length > 0 && this.db.open) this.forgetAll(rows);
  }

  /**
   * Keeps a finished job's result for a submitter that is not there to take it; returns its key.
   * Null when the limit on kept results leaves no room: the job is then reported lost instead.
   */
  keep(row: JobRef, header: string, body: Buffer): number | null {
    const key = this.hold(row, header, body);
    if (key === null) this.lost([row], this.noRoom());
    return key;
  }

  /**
   * Keeps a result sent to a connected submitter until it acknowledges it (`handedOver`), so
   * that unacknowledged results wait on disk, not in memory; should the submitter vanish, it is
   * already where `claim` finds it. Null when there is no room: the caller then reports the job
   * lost if the submitter vanishes before acknowledging (`noRoom()` says why).
   */
  hold(row: JobRef, header: string, body: Buffer): number | null {
    // A node being destroyed may still see results come in after its journal closed.
    if (!this.db.open) return null;
    const size = body.length + header.length;
    if (this.bytes + size > this.limitBytes) return null;
    const run = this.runId(row);
    const kept = this.db.transaction(() => {
      this.sql.forget.run(run, row.index, row.attempt);
      return this.sql.keep.get(run, row.index, row.attempt, header, body, size, Date.now()) as {
        key: number;
      };
    })();
    this.bytes += size;
    return kept.key;
  }

  /** Why a result was not kept: the limit on kept results. */
  noRoom(): string {
    const limit = Math.round(this.limitBytes / 1048576);
    return `its result did not fit in the ${limit} MB this node keeps for absent submitters`;
  }

  /** Jobs this node will not finish (it is shutting down with them still queued). */
  lost(rows: JobRef[], reason: string): void {
    if (rows.length === 0 || !this.db.open) return;
    const at = Date.now();
    this.db.transaction(() => {
      for (const row of rows) {
        const run = this.runId(row);
        this.sql.forget.run(run, row.index, row.attempt);
        this.sql.lose.run(run, row.index, reason, at);
      }
    })();
  }

  /** What this node holds of a submitter's batch: kept results and jobs it lost. */
  claim(submitter: string, batch: string): ClaimAnswer {
    const run = this.findRun(submitter, batch);
    if (run === null || !this.db.open) return { kept: [], lost: [] };
    const rows = this.sql.kept.all(run) as Array<{
      key: number;
      idx: number;
      attempt: number;
      header: string;
      body: Buffer;
    }>;
    const lost = this.db.transaction(() => {
      const found = this.sql.lostOf.all(run) as Array<{ idx: number; reason: string }>;
      // A lost job is reported once: the submitter runs it again.
      this.sql.dropLost.run(run);
      return found;
    })();
    return {
      kept: rows.map((row) => ({
        key: row.key,
        submitter,
        batch,
        index: row.idx,
        attempt: row.attempt,
        header: row.header,
        body: row.body,
      })),
      lost: lost.map((row) => ({ index: row.idx, reason: row.reason })),
    };
  }

  /** The submitter has the kept results with these keys. */
  handedOver(submitter: string, keys: number[]): void {
    if (!this.db.open) return;
    this.db.transaction(() => {
      for (const key of keys) {
        const removed = this.sql.handOver.get(key, submitter) as { bytes: number } | undefined;
        this.bytes -= removed?.bytes ?? 0;
      }
    })();
  }

  /** What is kept now and within what bounds, for the owner's Settings; null once closed. */
  usage(): { results: number; bytes: number; limitBytes: number; keepMs: number } | null {
    if (!this.db.open) return null;
    const { results } = this.db.prepare('SELECT COUNT(*) AS results FROM kept').get() as { results: number };
    return { results, bytes: this.bytes, limitBytes: this.limitBytes, keepMs: this.keepMs };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private findRun(submitter: string, batch: string): number | null {
    const name = `${submitter}\n${batch}`;
    const known = this.runIds.get(name);
    if (known !== undefined) return known;
    const found = this.sql.findRun.get(submitter, batch) as { id: number } | undefined;
    if (found) this.runIds.set(name, found.id);
    return found?.id ?? null;
  }

  private runId(row: JobRef): number {
    const last = this.lastRun;
    // Rows come in runs of the same batch: skip the lookup for the one before.
    if (row.submitter === last.submitter && row.batch === last.batch) return last.id;
    let id = this.findRun(row.submitter, row.batch);
    if (id === null) {
      id = Number(this.sql.addRun.run(row.submitter, row.batch).lastInsertRowid);
      this.runIds.set(`${row.submitter}\n${row.batch}`, id);
    }
    this.lastRun = { submitter: row.submitter, batch: row.batch, id };
    return id;
  }
}
