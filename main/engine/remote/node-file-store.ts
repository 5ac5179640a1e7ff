// The node's store of what submitters send: bundles (cache/bundles/<hash>/) and input files
// (cache/files/<hash>), both content-addressed and shared by every session. Whatever arrives is
// checked against its hash before it is stored, and stored under a temporary name first, then
// renamed (stream-sinks.ts): nothing half-written is ever found under a hash. A job gets its own copy of an input
// file, checked against the hash while it is copied, so a changed cache entry never reaches a job.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { FileEntry } from '../../../shared/wire-protocol.js';
import { pathExists } from '../path-exists.js';
import { markUsed } from '../storage/prune-folder.js';
import { checkListing } from './file-set.js';
import { FileSetSink, FileSink } from './stream-sinks.js';

export class NodeFileStore {
  constructor(
    readonly bundlesDir: string,
    readonly filesDir: string,
  ) {}

  /** Which of these input files are not here; those that are get marked used (pruned last). */
  async missing(hashes: readonly string[]): Promise<string[]> {
    const missing: string[] = [];
    for (const hash of hashes) {
      const path = join(this.filesDir, hash);
      if (await pathExists(path)) await markUsed(path);
      else missing.push(hash);
    }
    return missing;
  }

  /** Where an input file's stream goes: stored under its hash once it checks out. */
  fileSink(hash: string): FileSink {
    return new FileSink(join(this.filesDir, hash), hash);
  }

  /** Where a bundle's stream goes: stored under its hash once the set checks out. */
  bundleSink(bundle: string, files: FileEntry[]): FileSetSink {
    checkListing(
      files,
      files.reduce((sum, file) => sum + file.size, 0),
      'the bundle',
    );
    return new FileSetSink(join(this.bundlesDir, bundle), files, { setHash: bundle });
  }

  /**
   * Copies a stored input file to `target`, hashing it on the way: a copy that does not match
   * its hash is removed with the cached file (it changed on this node), and the job fails.
   */
  async copyInput(hash: string, target: string): Promise<void> {
    const source = join(this.filesDir, hash);
    const digest = createHash('sha256');
    await mkdir(dirname(target), { recursive: true });
    await pipeline(
      createReadStream(source),
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          digest.update(chunk);
          done(null, chunk);
        },
      }),
      createWriteStream(target),
    );
    if (digest.digest('hex') === hash) return;
    await rm(target, { force: true });
    await rm(source, { force: true });
    throw new DeskGridError(
      ErrorCode.Protocol,
      `the cached input file ${hash.slice(0, 12)} was changed on this node; it was dropped, run the batch again`,
    );
  }
}
