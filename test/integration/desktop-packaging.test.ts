// The installers' smoke test, offline: electron-builder packs the app for Linux into a folder
// (`--dir`, the step every installer builds on) around a stand-in Electron distribution (a fake
// binary: none can be downloaded here), without rebuilding native modules for Electron (that
// needs Electron's headers from the network). Then the packed app is read: its app.asar holds
// the app, the engine, the worker, the UI and the icons, and none of the tests or sources; and
// the executable's fuses are the ones build/electron-builder.json asks for. The stand-in carries
// a fuse wire laid out as Electron's binaries carry theirs (sentinel, version, length, one byte a
// fuse) with Electron's defaults, so electron-builder's real fuse flipping runs on it.

import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outsideAsar } from '../../worker-service/python-host.js';
import { REPO_ROOT } from '../support/run-cli.js';

const BUILDER = join(REPO_ROOT, 'node_modules/electron-builder/cli.js');
const TIME_LIMIT_MS = 240_000;

/** What @electron/fuses looks for in an Electron binary; the fuse wire follows it. */
const FUSE_SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';
/** The fuses of wire version 1 in order, with Electron's defaults ('1' on, '0' off). */
const FUSES = [
  ['runAsNode', '1'],
  ['enableCookieEncryption', '0'],
  ['enableNodeOptionsEnvironmentVariable', '1'],
  ['enableNodeCliInspectArguments', '1'],
  ['enableEmbeddedAsarIntegrityValidation', '0'],
  ['onlyLoadAppFromAsar', '0'],
  ['loadBrowserProcessSpecificV8Snapshot', '0'],
  ['grantFileProtocolExtraPrivileges', '1'],
] as const;

/** The fuses of an Electron binary by name, '1' on and '0' off. */
function fusesOf(binary: string): Record<string, string> {
  const bytes = readFileSync(binary);
  const at = bytes.indexOf(FUSE_SENTINEL);
  if (at === -1) throw new Error(`${binary} has no fuse wire`);
  const wire = at + FUSE_SENTINEL.length;
  const length = bytes[wire + 1] ?? 0;
  return Object.fromEntries(
    FUSES.slice(0, length).map(([name], i) => [name, String.fromCharCode(bytes[wire + 2 + i] ?? 0)]),
  );
}

interface AsarEntry {
  files?: Record<string, AsarEntry>;
  unpacked?: boolean;
}

/** Every file path in an asar archive (its header is a JSON directory tree after two pickled sizes). */
function asarFiles(archive: string): string[] {
  const fd = openSync(archive, 'r');
  try {
    const sizes = Buffer.alloc(16);
    readSync(fd, sizes, 0, 16, 0);
    const length = sizes.readUInt32LE(12);
    const json = Buffer.alloc(length);
    readSync(fd, json, 0, length, 16);
    const paths: string[] = [];
    const walk = (entry: AsarEntry, prefix: string) => {
      for (const [name, child] of Object.entries(entry.files ?? {})) {
        const path = prefix === '' ? name : `${prefix}/${name}`;
        if (child.files) walk(child, path);
        else paths.push(path);
      }
    };
    walk(JSON.parse(json.toString('utf8')) as AsarEntry, '');
    return paths;
  } finally {
    closeSync(fd);
  }
}

let work = '';
let packed = '';
let output = '';

beforeAll(async () => {
  for (const built of ['dist/main/app/main.js', 'dist/main/app/preload.cjs', 'dist/renderer/index.html']) {
    if (!existsSync(join(REPO_ROOT, built))) throw new Error(`${built} is missing: run npm run build first`);
  }
  work = mkdtempSync(join(tmpdir(), 'deskgrid-pack-'));
  const electronDist = join(work, 'electron');
  mkdirSync(join(electronDist, 'resources'), { recursive: true });
  const wire = Buffer.concat([
    Buffer.from(FUSE_SENTINEL),
    Buffer.from([1, FUSES.length]),
    Buffer.from(FUSES.map(([, state]) => state).join('')),
  ]);
  writeFileSync(
    join(electronDist, 'electron'),
    Buffer.concat([
      Buffer.from('#!/bin/sh\necho "stand-in for the Electron binary"\nexit 0\n# '),
      wire,
      Buffer.from('\n'),
    ]),
  );
  chmodSync(join(electronDist, 'electron'), 0o755);
  writeFileSync(join(electronDist, 'version'), '42.11.18');
  writeFileSync(join(electronDist, 'LICENSE'), '');
  writeFileSync(join(electronDist, 'LICENSES.chromium.html'), '');
  const out = join(work, 'release');
  const args = [
    BUILDER,
    '--linux',
    'dir',
    '--config',
    'build/electron-builder.json',
    `-c.electronDist=${electronDist}`,
    '-c.npmRebuild=false',
    `-c.directories.output=${out}`,
  ];
  const code = await new Promise<number | null>((resolve, reject) => {
    // CI=true keeps electron-builder from asking to publish or checking for its own updates.
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, CI: 'true' } });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIME_LIMIT_MS);
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (exit) => {
      clearTimeout(timer);
      resolve(exit);
    });
  });
  if (code !== 0) throw new Error(`electron-builder failed (${code}):\n${output}`);
  packed = join(out, 'linux-unpacked');
}, TIME_LIMIT_MS + 10_000);

afterAll(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

describe('the packed desktop app (linux, --dir)', () => {
  it('has the executable named for the app, from the Electron distribution', () => {
    const executable = join(packed, 'deskgrid-desktop');
    expect(readFileSync(executable, 'utf8')).toContain('stand-in for the Electron binary');
  });

  it('holds the app, the engine, the worker, the UI and the icons in app.asar', () => {
    const files = asarFiles(join(packed, 'resources/app.asar'));
    for (const needed of [
      'package.json',
      'dist/main/app/main.js',
      'dist/main/app/desktop.js',
      'dist/main/app/preload.cjs',
      'dist/main/engine/cluster.js',
      'dist/worker-service/main.js',
      'dist/shared/worker-protocol.js',
      'dist/renderer/index.html',
      'assets/icons/icon.png',
      'assets/icons/tray-paused.png',
    ])
      expect(files, needed).toContain(needed);
    expect(files.some((file) => file.startsWith('node_modules/valibot/'))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string };
    expect(files).toContain(manifest.main);
  });

  it('leaves out tests, sources, the CLI, maps and development tools', () => {
    const files = asarFiles(join(packed, 'resources/app.asar'));
    const unwanted = files.filter(
      (file) =>
        /^(test|main|shared|worker-service|renderer|bench|examples|build)\//.test(file) ||
        /^dist\/(test|bench|main\/cli)\//.test(file) ||
        /\.map$/.test(file) ||
        (!file.startsWith('node_modules/') && /\.ts$/.test(file)) ||
        /^node_modules\/(vitest|electron|electron-builder|typescript|eslint|playwright)\//.test(file),
    );
    expect(unwanted).toEqual([]);
  });

  it("flips the executable's fuses as build/electron-builder.json says", () => {
    const config = JSON.parse(readFileSync(join(REPO_ROOT, 'build/electron-builder.json'), 'utf8')) as {
      electronFuses: Record<string, boolean>;
    };
    // Other submitters' jobs run in ELECTRON_RUN_AS_NODE children under the sandbox: it stays on.
    expect(config.electronFuses['runAsNode']).toBe(true);
    const expected = Object.fromEntries(
      FUSES.map(([name, state]) => {
        const wanted = config.electronFuses[name];
        return [name, wanted === undefined ? state : wanted ? '1' : '0'];
      }),
    );
    expect(fusesOf(join(packed, 'deskgrid-desktop'))).toEqual(expected);
    // And the ones that harden it are really off or on, whatever the config's spelling.
    expect(fusesOf(join(packed, 'deskgrid-desktop'))).toMatchObject({
      runAsNode: '1',
      enableCookieEncryption: '1',
      enableNodeOptionsEnvironmentVariable: '0',
      enableNodeCliInspectArguments: '0',
      enableEmbeddedAsarIntegrityValidation: '1',
      onlyLoadAppFromAsar: '1',
      grantFileProtocolExtraPrivileges: '0',
    });
  });

  it('unpacks the SQLite driver, which must load from disk', () => {
    expect(existsSync(join(packed, 'resources/app.asar.unpacked/node_modules/better-sqlite3'))).toBe(true);
  });

  it('unpacks the Python worker where the packed worker looks for it: Python cannot read app.asar', () => {
    const inArchive = join(packed, 'resources/app.asar/dist/worker-service/python/deskgrid_worker.py');
    const unpacked = outsideAsar(inArchive);
    expect(unpacked).toBe(
      join(packed, 'resources/app.asar.unpacked/dist/worker-service/python/deskgrid_worker.py'),
    );
    expect(readFileSync(unpacked, 'utf8')).toContain('def main(');
  });
});
