// Where arriving streams are written (see chunk-streams.ts): one file, or a set of files (a
// bundle, a job's outputs) optionally after a value kept in memory. Both write under a temporary
// name beside their target and rename it into place only once the stream is verified, so a
// half-written or corrupted transfer is never found under the target's name.

import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { isSafeRelativePath, type FileEntry } from '../../../shared/wire-protocol.js';
import type { StreamSink } from './chunk-streams.js';

/** One file, stored at `target` if its SHA-256 is `contentHash` (when given). */
export class FileSink implements StreamSink {
  private readonly temporary: string;
  private handle: FileHandle | null = null;

  constructor(
    private readonly target: string,
    private readonly contentHash: string | null,
  ) {
    this.temporary = `${target}.partial-${randomBytes(6).toString('hex')}`;
  }

  async write(chunk: Buffer): Promise<void> {
    const handle = await this.opened();
    await handle.write(chunk);
  }

  async commit(sha256: string): Promise<void> {
    await (await this.opened()).close();
    this.handle = null;
    if (this.contentHash !== null && sha256 !== this.contentHash) {
      throw new DeskGridError(ErrorCode.Transfer, 'the file that arrived does not match its SHA-256');
    }
    await rename(this.temporary, this.target);
  }

  async discard(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    this.handle = null;
    await rm(this.temporary, { force: true });
  }

  private async opened(): Promise<FileHandle> {
    if (this.handle) return this.handle;
    await mkdir(dirname(this.target), { recursive: true, mode: 0o700 });
    this.handle = await open(this.temporary, 'wx', 0o600);
    return this.handle;
  }
}

/**
 * A set of files (a checked listing) written into a new folder `target`, after `valueBytes`
 * kept in memory (a result's value). With `setHash`, the set must hash to it as hashFileSet
 * would (its listing, then its bytes). If `target` appeared meanwhile, the new copy is dropped.
 */
export class FileSetSink implements StreamSink {
  private readonly temporary: string;
  private readonly value: Buffer;
  private valueFilled = 0;
  /** The file being written: its index in the listing and how much of it came. */
  private at = -1;
  private filled = 0;
  private handle: FileHandle | null = null;
  private readonly setDigest: Hash | null;

  constructor(
    private readonly target: string,
    private readonly files: readonly FileEntry[],
    options: { valueBytes?: number; setHash?: string } = {},
  ) {
    // Callers check listings first; this is the last line of defence: no path leads out of target.
    for (const file of files)
      if (!isSafeRelativePath(file.path))
        throw new DeskGridError(
          ErrorCode.Protocol,
          `a file set names an unsafe path: ${JSON.stringify(file.path)}`,
        );
    this.temporary = `${target}.partial-${randomBytes(6).toString('hex')}`;
    this.value = Buffer.alloc(options.valueBytes ?? 0);
    this.expectedSetHash = options.setHash ?? null;
    this.setDigest =
      this.expectedSetHash === null ? null : createHash('sha256').update(JSON.stringify(files)).update('\0');
  }

  private readonly expectedSetHash: string | null;

  /** The value that came before the files (empty when there was none). */
  get valueBody(): Buffer {
    return this.value;
  }

  async write(chunk: Buffer): Promise<void> {
    let rest = chunk;
    if (this.valueFilled < this.value.length) {
      const taken = Math.min(rest.length, this.value.length - this.valueFilled);
      rest.copy(this.value, this.valueFilled, 0, taken);
      this.valueFilled += taken;
      rest = rest.subarray(taken);
    }
    this.setDigest?.update(rest);
    while (rest.length > 0) {
      const file = await this.current();
      if (file === null)
        throw new DeskGridError(ErrorCode.Protocol, 'a file set carries more bytes than it lists');
      const taken = Math.min(rest.length, file.size - this.filled);
      await this.handle?.write(rest.subarray(0, taken));
      this.filled += taken;
      rest = rest.subarray(taken);
    }
  }

  async commit(): Promise<void> {
    // Empty files at the end of the listing have had no byte to open them.
    while ((await this.current()) !== null) {
      /* current() opens and closes empty files as it passes them */
    }
    await mkdir(this.temporary, { recursive: true, mode: 0o700 });
    if (this.setDigest !== null && this.setDigest.digest('hex') !== this.expectedSetHash) {
      throw new DeskGridError(ErrorCode.Transfer, 'the files that arrived do not match their hash');
    }
    await mkdir(dirname(this.target), { recursive: true });
    try {
      await rename(this.temporary, this.target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      await rm(this.temporary, { recursive: true, force: true });
    }
  }

  async discard(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    this.handle = null;
    await rm(this.temporary, { recursive: true, force: true });
  }

  /** The file the next byte belongs to (opened), moving past full ones; null after the last. */
  private async current(): Promise<FileEntry | null> {
    for (;;) {
      const file = this.files[this.at];
      if (file !== undefined && this.filled < file.size) return file;
      if (this.handle) {
        await this.handle.close();
        this.handle = null;
      }
      this.at += 1;
      this.filled = 0;
      const next = this.files[this.at];
      if (next === undefined) return null;
      const path = join(this.temporary, ...next.path.split('/'));
      await mkdir(dirname(path), { recursive: true });
      // 'wx' refuses to follow or overwrite anything already there.
      this.handle = await open(path, 'wx', next.mode & 0o755);
    }
  }
}
