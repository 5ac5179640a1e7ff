// Sets of files that cross the network: computation bundles (submitter to node) and job
// outputs (node to submitter). On the wire a set is a list of {path, size, mode} and the bytes
// back to back. Whatever comes from the network is checked before anything is written: every
// path must stay inside the target folder, sizes must add up, and only regular files travel
// (a symbolic link could point anywhere, so none is sent or followed).

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { isSafeRelativePath, type FileEntry } from '../../../shared/wire-protocol.js';

/** Reads from disk go in pieces this large (the size of a chunk on the wire). */
const FILE_READ_BYTES = 1024 * 1024;

export interface FileSet {
  files: FileEntry[];
  data: Buffer[];
}

/** Content address of a file set: SHA-256 over its listing and bytes. */
export function hashFileSet(set: FileSet): string {
  const hash = createHash('sha256').update(JSON.stringify(set.files)).update('\0');
  for (const chunk of set.data) hash.update(chunk);
  return hash.digest('hex');
}

/** The regular files below a folder, in name order, and where each is on disk. */
export interface FolderListing {
  files: FileEntry[];
  paths: string[];
}

/**
 * Lists every regular file below `root` (in name order), refusing symlinks and anything over
 * `limitBytes`; folders named in `skip` are left out wherever they are.
 */
export async function listFolder(
  root: string,
  limitBytes: number,
  skip?: ReadonlySet<string>,
): Promise<FolderListing> {
  const listing: FolderListing = { files: [], paths: [] };
  let total = 0;
  const visit = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const path = join(dir, name);
      const info = await lstat(path);
      if (skip?.has(name) && info.isDirectory()) continue;
      const rel = relative(root, path).split(sep).join('/');
      if (info.isSymbolicLink()) {
        throw new DeskGridError(ErrorCode.Usage, `${rel} is a symbolic link; only regular files can be sent`);
      }
      if (info.isDirectory()) {
        await visit(path);
        continue;
      }
      if (!info.isFile()) continue;
      total += info.size;
      if (total > limitBytes) {
        throw new DeskGridError(
          ErrorCode.TooLarge,
          `the files in ${root} add up to more than ${limitBytes} bytes`,
        );
      }
      listing.files.push({ path: rel, size: info.size, mode: info.mode & 0o755 });
      listing.paths.push(path);
    }
  };
  await visit(root);
  return listing;
}

/** Reads every regular file below `root` into memory (see listFolder). */
export async function readFolder(
  root: string,
  limitBytes: number,
  skip?: ReadonlySet<string>,
): Promise<FileSet> {
  const listing = await listFolder(root, limitBytes, skip);
  const data: Buffer[] = [];
  for (const path of listing.paths) data.push(await readFile(path));
  return { files: listing.files, data };
}

/** The bytes of a file set whose files are on disk or in memory, in CHUNK_BYTES pieces. */
export async function* fileSetBytes(
  sources: ReadonlyArray<string | Buffer>,
  prefix: readonly Buffer[] = [],
): AsyncGenerator<Buffer> {
  for (const part of prefix) if (part.length > 0) yield part;
  for (const source of sources) {
    if (Buffer.isBuffer(source)) {
      if (source.length > 0) yield source;
      continue;
    }
    for await (const chunk of createReadStream(source, { highWaterMark: FILE_READ_BYTES }))
      yield chunk as Buffer;
  }
}

/** hashFileSet's content address, read from disk (or memory) piece by piece. */
export async function hashFileSources(
  files: readonly FileEntry[],
  sources: ReadonlyArray<string | Buffer>,
): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify(files)).update('\0');
  for await (const chunk of fileSetBytes(sources)) hash.update(chunk);
  return hash.digest('hex');
}

/** Checks a file listing from the network against the bytes that came with it. */
export function checkListing(files: readonly FileEntry[], bodyBytes: number, what: string): void {
  let total = 0;
  const seen = new Set<string>();
  for (const file of files) {
    if (!isSafeRelativePath(file.path)) {
      throw new DeskGridError(
        ErrorCode.Protocol,
        `${what} names an unsafe path: ${JSON.stringify(file.path)}`,
      );
    }
    if (seen.has(file.path)) throw new DeskGridError(ErrorCode.Protocol, `${what} lists ${file.path} twice`);
    seen.add(file.path);
    total += file.size;
  }
  if (total !== bodyBytes) {
    throw new DeskGridError(ErrorCode.Protocol, `${what} announces ${total} bytes but carries ${bodyBytes}`);
  }
}

/** Splits a body into the files of a checked listing. */
export function sliceFiles(files: readonly FileEntry[], body: Buffer): FileSet {
  const data: Buffer[] = [];
  let offset = 0;
  for (const file of files) {
    data.push(body.subarray(offset, offset + file.size));
    offset += file.size;
  }
  return { files: [...files], data };
}

/**
 * Writes a checked file set into a new folder `target` (which must not exist yet): first into
 * a temporary sibling, then renamed, so nobody sees half a set. If `target` appeared meanwhile
 * (the same bundle arriving twice), the new copy is dropped.
 */
export async function writeFileSet(target: string, set: FileSet): Promise<void> {
  // Callers check listings first; this is the last line of defence: no path leads out of target.
  for (const file of set.files) {
    if (!isSafeRelativePath(file.path)) {
      throw new DeskGridError(
        ErrorCode.Protocol,
        `a file set names an unsafe path: ${JSON.stringify(file.path)}`,
      );
    }
  }
  const temporary = `${target}.partial-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(temporary, { recursive: true, mode: 0o700 });
    for (const [at, file] of set.files.entries()) {
      const path = join(temporary, ...file.path.split('/'));
      await mkdir(dirname(path), { recursive: true });
      // 'wx' refuses to follow or overwrite anything already there.
      await writeFile(path, set.data[at] ?? Buffer.alloc(0), { flag: 'wx', mode: file.mode & 0o755 });
    }
    await mkdir(dirname(target), { recursive: true });
    try {
      await rename(temporary, target);
    } catch (error) {
      if (
        (error as NodeJS.ErrnoException).code !== 'ENOTEMPTY' &&
        (error as NodeJS.ErrnoException).code !== 'EEXIST'
      ) {
        throw error;
      }
    }
  } finally {
    await rm(temporary, { recursive: true, force: true });
  }
}
