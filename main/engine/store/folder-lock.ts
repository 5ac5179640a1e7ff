// One process at a time in a folder DeskGrid writes to: a batch's results folder (two writers
// of one batch.db and results.jsonl stalled each other forever) and a node's data folder (two
// nodes with one identity). The lock is a small JSON file naming its holder: pid, host, when it
// took the folder, and what tells a live holder from a dead one (the process's start time and
// the machine's boot id, so that a reused pid or a reboot is not mistaken for the holder).
//
// Taking it is atomic: the record is written whole to a file of our own, then hard-linked to
// the lock's name, which fails if the name exists. A lock whose holder is provably gone (a dead
// pid on this host, a process started at another time, another boot of this host, or a lock on
// another host not refreshed for STALE_AFTER_MS) is taken over; any other is refused with a
// DG_ERR_LOCKED naming the holder. The holder refreshes the file's time every REFRESH_MS, and
// removes the file on release, on process exit (Ctrl-C, errors), never later than that.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { createLogger } from '../log.js';

const log = createLogger('folder-lock');

/** How often a holder shows it is alive by touching its lock file. */
const REFRESH_MS = 30_000;
/** A lock of another host untouched this long belongs to a process or machine that is gone. */
export const STALE_AFTER_MS = 10 * 60_000;

/** How long an unreadable lock may be one being written (without hard links) before it is stale. */
const UNREADABLE_GRACE_MS = 5000;

const HolderSchema = v.object({
  pid: v.pipe(v.number(), v.integer()),
  host: v.string(),
  startedAt: v.number(),
  /** The process's start time as the system counts it (Linux: clock ticks since boot), or null. */
  processStart: v.nullable(v.string()),
  /** The machine's boot id (Linux), or null. */
  bootId: v.nullable(v.string()),
  /** What the holder does there ("serving on port 7717"), for the message. */
  note: v.optional(v.string()),
});

export type LockHolder = v.InferOutput<typeof HolderSchema>;

/** Locks this process holds, removed when it exits however it exits (short of SIGKILL). */
const held = new Set<FolderLock>();
let exitHookInstalled = false;

export class FolderLock {
  private readonly timer: NodeJS.Timeout;
  private released = false;

  private constructor(
    readonly file: string,
    private readonly record: string,
  ) {
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.timer.unref();
    held.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const lock of held) lock.release();
      });
    }
  }

  /**
   * Takes the lock `file`, or throws DG_ERR_LOCKED when a living process holds it, with the
   * message `refusal` makes of its holder's description.
   */
  static acquire(file: string, refusal: (holder: string) => string, note?: string): FolderLock {
    const me: LockHolder = {
      pid: process.pid,
      host: hostname(),
      startedAt: Date.now(),
      processStart: processStartOf(process.pid),
      bootId: bootId(),
      ...(note === undefined ? {} : { note }),
    };
    const record = `${JSON.stringify(me)}\n`;
    const mine = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    const fd = openSync(mine, 'wx', 0o644);
    try {
      writeSync(fd, record);
    } finally {
      closeSync(fd);
    }
    try {
      // A stale lock taken over can be lost to another process doing the same: try again then.
      for (let attempt = 0; attempt < 3; attempt += 1) {
        try {
          placeRecord(mine, file, record);
          return new FolderLock(file, record);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const found = readHolder(file);
        if (found === 'gone') continue;
        if (found === 'unreadable' && ageMs(file) < UNREADABLE_GRACE_MS) break;
        // An unreadable lock that stays so is one whose record never reached the disk (a crash).
        const why = found === 'unreadable' ? 'its lock file is unreadable' : staleReason(found, file);
        if (why === null && found !== 'unreadable') {
          // Another host's lock may outlive a crash there until it goes stale: say how to clear it.
          const clear = found.host === hostname() ? '' : `; if it no longer runs there, delete ${file}`;
          throw new DeskGridError(ErrorCode.Locked, `${refusal(describeHolder(found))}${clear}`);
        }
        log.warn('taking over a stale lock', { file, why });
        breakStale(file, found);
      }
      throw new DeskGridError(ErrorCode.Locked, `${file} is being taken by another process; try again`);
    } finally {
      rmSync(mine, { force: true });
    }
  }

  /** Removes the lock file if it is still ours; idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    held.delete(this);
    try {
      if (readFileSync(this.file, 'utf8') === this.record) rmSync(this.file, { force: true });
    } catch {
      // Gone already: nothing to release.
    }
  }

  private refresh(): void {
    try {
      const now = new Date();
      utimesSync(this.file, now, now);
    } catch (error) {
      log.warn('cannot refresh a lock file', { file: this.file, message: String(error) });
    }
  }
}

/**
 * Puts the record at `file` unless something is there (EEXIST): by a hard link of the whole
 * record; where the file system has no hard links (FAT, some network shares), by creating the
 * file exclusively and writing it, which a reader may briefly see empty (read as stale only
 * after a crash, see readHolder).
 */
function placeRecord(mine: string, file: string, record: string): void {
  try {
    linkSync(mine, file);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
  }
  const fd = openSync(file, 'wx', 0o644);
  try {
    writeSync(fd, record);
  } finally {
    closeSync(fd);
  }
}

/** "pid 4242 on vm1 since 2026-12-04 21:50:03 UTC, serving on port 7717". */
export function describeHolder(holder: LockHolder): string {
  const since = new Date(holder.startedAt)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  const note = holder.note === undefined ? '' : `, ${holder.note}`;
  return `pid ${holder.pid} on ${holder.host} since ${since}${note}`;
}

function readHolder(file: string): LockHolder | 'gone' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  try {
    const parsed = v.safeParse(HolderSchema, JSON.parse(text));
    return parsed.success ? parsed.output : 'unreadable';
  } catch {
    // Only a crash before the record reached the disk leaves a file that is not one.
    return 'unreadable';
  }
}

/** Why the holder is certainly gone, or null when it may be alive. */
function staleReason(holder: LockHolder, file: string): string | null {
  if (holder.host !== hostname()) {
    return ageMs(file) > STALE_AFTER_MS ? 'not refreshed by its host for a long time' : null;
  }
  const boot = bootId();
  if (holder.bootId !== null && boot !== null && holder.bootId !== boot) return 'this host restarted since';
  if (!isAlive(holder.pid)) return `process ${holder.pid} is gone`;
  const start = processStartOf(holder.pid);
  if (holder.processStart !== null && start !== null && holder.processStart !== start) {
    return `pid ${holder.pid} now belongs to another process`;
  }
  return null;
}

/**
 * Moves a stale lock out of the way; if what was moved is not the lock judged stale (another
 * process took the folder meanwhile), it is put back.
 */
function breakStale(file: string, judged: LockHolder | 'unreadable'): void {
  const aside = `${file}.stale.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = readHolder(aside);
  const same =
    judged === 'unreadable'
      ? moved === 'unreadable'
      : typeof moved === 'object' && moved.pid === judged.pid && moved.startedAt === judged.startedAt;
  if (!same) {
    try {
      linkSync(aside, file);
    } catch {
      // Someone holds it again; the next attempt reads who.
    }
  }
  rmSync(aside, { force: true });
}

/** Milliseconds since the file was last changed (0 when it is gone: nothing to judge). */
function ageMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process its parent has not reaped yet still answers signals: it is gone all the same.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** The process's start time in clock ticks since boot (Linux), or null where unknown. */
function processStartOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (command) state ppid ...": the command may hold spaces; starttime is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

let cachedBootId: string | null | undefined;

function bootId(): string | null {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId;
}
