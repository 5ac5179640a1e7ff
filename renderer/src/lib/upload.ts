// Files the user dropped or picked, and their upload to the node: a browser cannot tell the
// node where a file is, so the file itself goes there, in pieces, and is run from there.

import { UPLOAD_CHUNK_BYTES, type DeskGridApi, type Source } from '../../../shared/ui-api.js';

export interface PickedFile {
  /** Relative to the dropped folder, or the file's name. */
  path: string;
  file: File;
}

/** One dropped or picked file, or folder with its files. */
export interface Picked {
  name: string;
  kind: 'file' | 'folder';
  files: PickedFile[];
  bytes: number;
}

const SCRIPT_EXTENSIONS = /\.(m?js|cjs|ts|mts|cts|py|sh|bash|r|rb|pl|php|lua|ps1|bat|cmd|exe)$/i;
const DATA_EXTENSIONS = /\.(csv|tsv|txt|jsonl|ndjson|json|log|dat)$/i;

/** What a dropped item most likely is: a script, a dataset, or unclear. */
export function guessRole(picked: Picked): 'script' | 'dataset' | null {
  if (picked.kind === 'file') {
    if (SCRIPT_EXTENSIONS.test(picked.name)) return 'script';
    if (DATA_EXTENSIONS.test(picked.name)) return 'dataset';
    return null;
  }
  // A folder with an entry point is a program with its files; any other folder is data.
  const entry = /^(package\.json|index\.[mc]?[jt]s|main\.(?:[mc]?[jt]s|py|r)|__main__\.py|run\.sh)$/i;
  return picked.files.some((file) => entry.test(file.path)) ? 'script' : 'dataset';
}

/** A file from a file input. */
export function fromFile(file: File): Picked {
  return { name: file.name, kind: 'file', files: [{ path: file.name, file }], bytes: file.size };
}

/** A folder from a file input with webkitdirectory: paths start with the folder's name. */
export function fromFolderInput(files: FileList): Picked | null {
  const list = [...files];
  const first = list[0];
  if (!first) return null;
  const name = first.webkitRelativePath.split('/')[0] ?? first.name;
  return {
    name,
    kind: 'folder',
    files: list.map((file) => ({ path: file.webkitRelativePath.split('/').slice(1).join('/'), file })),
    bytes: list.reduce((sum, file) => sum + file.size, 0),
  };
}

/** The items of a drop, folders read through (their hidden files left out, as the engine does). */
export async function fromDrop(transfer: DataTransfer): Promise<Picked[]> {
  const entries = [...transfer.items]
    .filter((item) => item.kind === 'file')
    .map((item) => item.webkitGetAsEntry());
  const usable = entries.filter((entry): entry is FileSystemEntry => entry !== null);
  if (usable.length > 0 && usable.length === entries.length) {
    return Promise.all(usable.map((entry) => fromEntry(entry)));
  }
  // No entries (synthetic drops, some browsers): plain files.
  return [...transfer.files].map((file) => fromFile(file));
}

async function fromEntry(entry: FileSystemEntry): Promise<Picked> {
  if (entry.isFile) {
    const file = await fileOf(entry as FileSystemFileEntry);
    return fromFile(file);
  }
  const files: PickedFile[] = [];
  await walk(entry as FileSystemDirectoryEntry, '', files);
  return { name: entry.name, kind: 'folder', files, bytes: files.reduce((sum, f) => sum + f.file.size, 0) };
}

async function walk(dir: FileSystemDirectoryEntry, prefix: string, into: PickedFile[]): Promise<void> {
  const reader = dir.createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
      reader.readEntries(resolve, reject),
    );
    if (batch.length === 0) return;
    for (const entry of batch) {
      if (entry.name.startsWith('.')) continue;
      const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isFile) into.push({ path, file: await fileOf(entry as FileSystemFileEntry) });
      else await walk(entry as FileSystemDirectoryEntry, path, into);
    }
  }
}

function fileOf(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

/** Sends a picked file or folder to the node; `onProgress` gets the fraction sent. */
export async function upload(
  api: DeskGridApi,
  role: 'script' | 'dataset',
  picked: Picked,
  onProgress: (fraction: number) => void = () => undefined,
): Promise<Source> {
  const { uploadId } = await api.call('beginUpload', {
    role,
    name: picked.name,
    kind: picked.kind,
    bytes: picked.bytes,
    files: picked.files.length,
  });
  let sent = 0;
  for (const { path, file } of picked.files) {
    let offset = 0;
    // An empty file is still one (empty) piece, so that it exists on the node.
    do {
      const piece = file.slice(offset, offset + UPLOAD_CHUNK_BYTES);
      await api.call('uploadChunk', { uploadId, path, offset, data: await base64(piece) });
      offset += piece.size;
      sent += piece.size;
      onProgress(picked.bytes === 0 ? 1 : sent / picked.bytes);
    } while (offset < file.size);
  }
  return { type: 'upload', uploadId };
}

function base64(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = typeof reader.result === 'string' ? reader.result : '';
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(reader.error ?? new Error('the file cannot be read'));
    reader.readAsDataURL(blob);
  });
}
