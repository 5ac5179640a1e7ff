// Where DeskGrid keeps its data: DESKGRID_HOME when set, else the per-user folder the desktop
// app uses too (Electron's userData for the app name "DeskGrid"), so the CLI and the app share it.

import { homedir } from 'node:os';
import { basename, join } from 'node:path';

export const APP_NAME = 'DeskGrid';

export function defaultDataHome(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['DESKGRID_HOME'];
  if (explicit) return explicit;
  switch (process.platform) {
    case 'win32':
      return join(env['APPDATA'] ?? join(homedir(), 'AppData', 'Roaming'), APP_NAME);
    case 'darwin':
      return join(homedir(), 'Library', 'Application Support', APP_NAME);
    default:
      return join(env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), APP_NAME);
  }
}

/** The folders inside a data home. */
export function dataPaths(home: string) {
  return {
    home,
    /** Compiled TypeScript computations, by content hash. */
    computationCache: join(home, 'cache', 'computations'),
    /** Default --out folders of `deskgrid run`. */
    runs: join(home, 'runs'),
    /** Output files of API batches that were given no `out` folder. */
    batches: join(home, 'batches'),
    /** Computations other submitters sent, by content hash. */
    bundles: join(home, 'cache', 'bundles'),
    /** Input files other submitters sent, by content hash. */
    files: join(home, 'cache', 'files'),
    /** Folders of jobs run for other submitters. */
    jobs: join(home, 'jobs'),
    /** The journal of other submitters' jobs and the results kept for them. */
    node: join(home, 'node'),
  };
}

/**
 * A new results folder under the data folder's runs/, named by time and computation so that a
 * listing reads in order: "20261126-0715-line-total-4242".
 */
export function newRunFolder(home: string, computation: string, unique: string | number): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  // `tasks.py:square` names its folder after the file, like `tasks.py`.
  const name =
    basename(computation)
      .replace(/:[\w.]+$/, '')
      .replace(/\.[^.]*$/, '') || 'batch';
  return join(dataPaths(home).runs, `${stamp}-${name}-${unique}`);
}
