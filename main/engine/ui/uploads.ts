// Files and folders a browser uploads as a batch's script or dataset: each lands under
// <home>/uploads/<id>/, in pieces that must come in order, within the size and file-count limits
// announced (and allowed) before the first byte, with paths that cannot leave their folder. A
// finished upload becomes a path on this node for a batch; one still arriving is refused.

import { randomUUID } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { Source, UiInput } from '../../../shared/ui-api.js';
import { isSafeRelativePath } from '../../../shared/wire-protocol.js';

export interface UploadLimits {
  /** Total bytes of one upload (a file or a folder). Default 2 GiB. */
  maxBytes: number;
  /** Files in one folder upload. Default 10 000. */
  maxFiles: number;
}

interface Upload {
  role: 'script' | 'dataset';
  kind: 'file' | 'folder';
  /** The staged file or folder. */
  path: string;
  expectedBytes: number;
  expectedFiles: number;
  received: number;
  /** Bytes received per relative path. */
  files: Map<string, number>;
}

export class Uploads {
  readonly dir: string;
  private readonly limits: UploadLimits;
  private readonly uploads = new Map<string, Upload>();

  constructor(home: string, limits: Partial<UploadLimits> = {}) {
    this.dir = join(home, 'uploads');
    this.limits = { maxBytes: limits.maxBytes ?? 2 * 1024 ** 3, maxFiles: limits.maxFiles ?? 10_000 };
  }

  /** The folder an upload's file or folder is staged in. */
  folderOf(id: string): string {
    return join(this.dir, id);
  }

  /** The data folder's bounds removed an upload's folder. */
  forget(id: string): void {
    this.uploads.delete(id);
  }

  async begin(input: UiInput<'beginUpload'>): Promise<{ uploadId: string }> {
    if (!isSafeRelativePath(input.name) || input.name.includes('/')) {
      throw new DeskGridError(ErrorCode.Usage, `"${input.name}" is not a usable file name`);
    }
    if (input.bytes > this.limits.maxBytes) {
      throw new DeskGridError(
        ErrorCode.TooLarge,
        `${input.name} is ${megabytes(input.bytes)}, more than the ${megabytes(this.limits.maxBytes)} a browser may upload: use deskgrid run on the node for it`,
      );
    }
    if (input.kind === 'folder' ? input.files > this.limits.maxFiles : input.files !== 1) {
      throw new DeskGridError(
        ErrorCode.TooLarge,
        input.kind === 'folder'
          ? `${input.name} holds ${input.files} files, more than the ${this.limits.maxFiles} a browser may upload`
          : 'a file upload holds exactly one file',
      );
    }
    const id = randomUUID();
    const dir = this.folderOf(id);
    await mkdir(input.kind === 'folder' ? join(dir, input.name) : dir, { recursive: true });
    this.uploads.set(id, {
      role: input.role,
      kind: input.kind,
      path: join(dir, input.name),
      expectedBytes: input.bytes,
      expectedFiles: input.files,
      received: 0,
      files: new Map(),
    });
    return { uploadId: id };
  }

  async chunk(input: UiInput<'uploadChunk'>): Promise<{ received: number }> {
    const upload = this.uploads.get(input.uploadId);
    if (!upload) throw new DeskGridError(ErrorCode.NotFound, 'that upload is unknown: drop the file again');
    const name = basename(upload.path);
    if (upload.kind === 'file' ? input.path !== name : !isSafeRelativePath(input.path)) {
      throw new DeskGridError(ErrorCode.Usage, `"${input.path}" is not a file name that can be uploaded`);
    }
    const data = Buffer.from(input.data, 'base64');
    if (upload.received + data.length > upload.expectedBytes) {
      throw new DeskGridError(
        ErrorCode.TooLarge,
        `${name} is larger than announced (${upload.expectedBytes} bytes): drop it again`,
      );
    }
    const had = upload.files.get(input.path);
    if (had === undefined && upload.files.size >= upload.expectedFiles) {
      throw new DeskGridError(ErrorCode.TooLarge, `${name} holds more files than announced`);
    }
    if ((had ?? 0) !== input.offset) {
      throw new DeskGridError(
        ErrorCode.Usage,
        `${input.path}: the upload's pieces arrived out of order (expected byte ${had ?? 0}, got ${input.offset})`,
      );
    }
    const target = upload.kind === 'file' ? upload.path : join(upload.path, ...input.path.split('/'));
    await mkdir(join(target, '..'), { recursive: true });
    const handle = await open(target, input.offset === 0 ? 'w' : 'a');
    try {
      await handle.write(data);
    } finally {
      await handle.close();
    }
    upload.files.set(input.path, input.offset + data.length);
    upload.received += data.length;
    return { received: upload.received };
  }

  /** The path on this node of a script or dataset: a path as given, or a finished upload's. */
  pathOf(source: Source, role: 'script' | 'dataset'): string {
    if (source.type === 'path') return resolve(source.path);
    const upload = this.uploads.get(source.uploadId);
    if (!upload) throw new DeskGridError(ErrorCode.NotFound, `that ${role} upload is unknown: drop it again`);
    if (upload.role !== role) {
      throw new DeskGridError(ErrorCode.Usage, `${basename(upload.path)} was dropped as the ${upload.role}`);
    }
    if (upload.received !== upload.expectedBytes || upload.files.size !== upload.expectedFiles) {
      throw new DeskGridError(
        ErrorCode.Usage,
        `${basename(upload.path)} has not finished uploading (${upload.received} of ${upload.expectedBytes} bytes)`,
      );
    }
    return upload.path;
  }
}

function megabytes(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}
