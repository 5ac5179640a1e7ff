// Compiles a TypeScript computation and everything it imports into one ES module that the
// worker can import without a TypeScript loader. Bundles are cached under their content hash,
// so an unchanged computation compiles to the same file (and the same computation id).

import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BuildFailure, Message } from 'esbuild';
import { pathExists } from '../path-exists.js';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

// Bundled CommonJS dependencies call require(), which an ES module lacks. esbuild renames any
// `require` the user's own code declares, so this cannot clash with it.
const REQUIRE_BANNER =
  "import { createRequire as __deskgridCreateRequire } from 'node:module';\n" +
  'const require = __deskgridCreateRequire(import.meta.url);';

export interface Bundle {
  /** Absolute path of the cached bundle: `<cacheDir>/<sha256 of contents>.mjs`. */
  path: string;
  contents: Uint8Array;
}

/** Bundles the TypeScript file `entry` into `cacheDir` (created if missing). */
export async function bundleTypeScript(entry: string, cacheDir: string): Promise<Bundle> {
  // Loaded on demand: plain JavaScript computations never need the compiler.
  const esbuild = await import('esbuild');
  const absoluteCacheDir = resolve(cacheDir);
  // The source map's paths are relative to the output folder; naming the final folder here
  // keeps them right after the file is renamed to its hash.
  const outfile = join(absoluteCacheDir, 'bundle.mjs');
  const workingDir = process.cwd();

  let outputFiles;
  try {
    ({ outputFiles } = await esbuild.build({
      entryPoints: [entry],
      absWorkingDir: workingDir,
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      banner: { js: REQUIRE_BANNER },
      // platform 'node' already leaves builtins out; listing the prefixed form keeps it explicit.
      external: ['node:*'],
      write: false,
      logLevel: 'silent',
    }));
  } catch (err) {
    throw new DeskGridError(ErrorCode.ModuleLoad, describeFailure(err, entry, workingDir), { cause: err });
  }

  const output = outputFiles.find((file) => file.path === outfile);
  if (output === undefined) {
    throw new DeskGridError(ErrorCode.ModuleLoad, `esbuild produced no bundle for ${entry}`);
  }
  const hash = createHash('sha256').update(output.contents).digest('hex');
  const path = join(absoluteCacheDir, `${hash}.mjs`);
  await mkdir(absoluteCacheDir, { recursive: true });
  if (!(await pathExists(path))) {
    // Write then rename, so a worker or a concurrent run never imports a half-written file.
    const partial = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(partial, output.contents);
    await rename(partial, path);
  }
  return { path, contents: output.contents };
}

function describeFailure(err: unknown, entry: string, workingDir: string): string {
  const first: Message | undefined = (err as Partial<BuildFailure> | null)?.errors?.[0];
  if (first === undefined)
    return `cannot compile ${entry}: ${err instanceof Error ? err.message : String(err)}`;
  const location = first.location;
  if (location === null) return `${entry}: ${first.text}`;
  // esbuild reports paths relative to its working folder and 0-based columns; editors want
  // absolute paths and 1-based columns.
  return `${resolve(workingDir, location.file)}:${location.line}:${location.column + 1}: ${first.text}`;
}
