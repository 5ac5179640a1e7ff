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

export class KeptResults {
  private readonly db: Database.Database;
  private readonly limitBytes: number;
  private readonly accept: (rows: JobRef[]) => void;
  private readonly forget: (rows: JobRef[]) => void;
  private readonly keepStatement: Database.Statement<
    [string, Buffer, number, number, string, string, number, number]
  >;
  private bytes: number;
  private readonly keepMs: number;

  constructor(dataDir: string, limits: KeepLimits) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(dataDir, KEPT_DATABASE));
    this.db.pragma('journal_mode = WAL');
    // Durable against a killed process (the OS still writes the WAL), which is what a node dies of.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS jobs (
        key INTEGER PRIMARY KEY,
        submitter TEXT NOT NULL, batch TEXT NOT NULL, idx INTEGER NOT NULL, attempt INTEGER NOT NULL,
        state TEXT NOT NULL, header TEXT, body BLOB, bytes INTEGER NOT NULL DEFAULT 0,
        reason TEXT, at INTEGER NOT NULL,
        UNIQUE (submitter, batch, idx, attempt)
      );
      CREATE INDEX IF NOT EXISTS jobs_by_batch ON jobs (submitter, batch);
    `);
    this.limitBytes = limits.megabytes * 1024 * 1024;
    const now = Date.now();
    // Whatever was accepted by an earlier life of this node will never finish: it died with it.
    const lost = this.db
      .prepare("UPDATE jobs SET state = 'lost', reason = ?, at = ? WHERE state = 'accepted'")
      .run('the node restarted while the job was to run there', now).changes;
    this.keepMs = limits.days * DAY_MS;
    this.bytes = 0;
    const expired = this.expire();
    if (lost > 0 || expired > 0) log.info('journal opened', { lost, expired });

    const insert = this.db.prepare(
      "INSERT OR REPLACE INTO jobs (submitter, batch, idx, attempt, state, at) VALUES (?, ?, ?, ?, 'accepted', ?)",
    );
    const remove = this.db.prepare(
      'DELETE FROM jobs WHERE submitter = ? AND batch = ? AND idx = ? AND attempt = ? RETURNING bytes',
    );
    this.accept = this.db.transaction((rows: JobRef[]) => {
      const at = Date.now();
      for (const row of rows) insert.run(row.submitter, row.batch, row.index, row.attempt, at);
    });
    this.forget = this.db.transaction((rows: JobRef[]) => {
      for (const row of rows) {
        const removed = remove.get(row.submitter, row.batch, row.index, row.attempt) as
          { bytes: number } | undefined;
        this.bytes -= removed?.bytes ?? 0;
      }
    });
    this.keepStatement = this.db.prepare(
      "UPDATE jobs SET state = 'done', header = ?, body = ?, bytes = ?, at = ? WHERE submitter = ? AND batch = ? AND idx = ? AND attempt = ? RETURNING key",
    );
  }

  /** Forgets what waited longer than the limit for its submitter; returns how many. */
  expire(): number {
    if (!this.db.open) return 0;
    const expired = this.db.prepare('DELETE FROM jobs WHERE at < ?').run(Date.now() - this.keepMs).changes;
    this.bytes = (
      this.db.prepare('SELECT COALESCE(SUM(bytes), 0) AS total FROM jobs').get() as { total: number }
    ).total;
    return expired;
  }

  /** Writes down jobs as they arrive. */
  accepted(rows: JobRef[]): void {
    if (rows.length > 0 && this.db.open) this.accept(rows);
  }

  /** The submitter has these results (or no longer wants the jobs). */
  forgotten(rows: JobRef[]): void {
    if (rows.length > 0 && this.db.open) this.forget(rows);
  }

  /**
   * Keeps a finished job's result for a submitter that is not there to take it; returns its key.
   * Null when the limit on kept results leaves no room: the job is then reported lost instead
   * (or when the job was forgotten meanwhile).
   */
  keep(row: JobRef, header: string, body: Buffer): number | null {
    // A node being destroyed may still see results come in after its journal closed.
    if (!this.db.open) return null;
    const size = body.length + header.length;
    if (this.bytes + size > this.limitBytes) {
      const limit = Math.round(this.limitBytes / 1048576);
      this.lost([row], `its result did not fit in the ${limit} MB this node keeps for absent submitters`);
      return null;
    }
    const kept = this.keepStatement.get(
      header,
      body,
      size,
      Date.now(),
      row.submitter,
      row.batch,
      row.index,
      row.attempt,
    ) as { key: number } | undefined;
    if (kept === undefined) return null;
    this.bytes += size;
    return kept.key;
  }

  /** Jobs this node will not finish (it is shutting down with them still queued). */
  lost(rows: JobRef[], reason: string): void {
    if (!this.db.open) return;
    const mark = this.db.prepare(
      "UPDATE jobs SET state = 'lost', reason = ?, at = ? WHERE submitter = ? AND batch = ? AND idx = ? AND attempt = ?",
    );
    const at = Date.now();
    this.db.transaction(() => {
      for (const row of rows) mark.run(reason, at, row.submitter, row.batch, row.index, row.attempt);
    })();
  }

  /** What this node holds of a submitter's batch: kept results and jobs it lost. */
  claim(submitter: string, batch: string): ClaimAnswer {
    const rows = this.db
      .prepare(
        "SELECT key, idx, attempt, state, header, body, reason FROM jobs WHERE submitter = ? AND batch = ? AND state != 'accepted' ORDER BY key",
      )
      .all(submitter, batch) as Array<{
      key: number;
      idx: number;
      attempt: number;
      state: string;
      header: string | null;
      body: Buffer | null;
      reason: string | null;
    }>;
    const answer: ClaimAnswer = { kept: [], lost: [] };
    const lostKeys: number[] = [];
    for (const row of rows) {
      if (row.state === 'done' && row.header !== null) {
        answer.kept.push({
          key: row.key,
          submitter,
          batch,
          index: row.idx,
          attempt: row.attempt,
          header: row.header,
          body: row.body ?? Buffer.alloc(0),
        });
      } else {
        answer.lost.push({ index: row.idx, reason: row.reason ?? 'the node lost the job' });
        lostKeys.push(row.key);
      }
    }
    // A lost job is reported once: the submitter runs it again.
    const remove = this.db.prepare('DELETE FROM jobs WHERE key = ?');
    this.db.transaction(() => {
      for (const key of lostKeys) remove.run(key);
    })();
    return answer;
  }

  /** The submitter has the kept results with these keys. */
  handedOver(submitter: string, keys: number[]): void {
    if (!this.db.open) return;
    const remove = this.db.prepare('DELETE FROM jobs WHERE key = ? AND submitter = ? RETURNING bytes');
    this.db.transaction(() => {
      for (const key of keys) {
        const removed = remove.get(key, submitter) as { bytes: number } | undefined;
        this.bytes -= removed?.bytes ?? 0;
      }
    })();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
