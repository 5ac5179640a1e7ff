// What the CLI test files share: runs of `deskgrid` whose DESKGRID_HOME and working folder lie in
// the test's scratch folder, and a readable account of a run for assertion messages.

import { join } from 'node:path';
import { runCli, type CliOptions, type CliResult } from './run-cli.js';
import type { TempFolder } from './temp-folder.js';

export interface CliHome {
  /** DESKGRID_HOME of the runs: the folder `home` in the scratch folder. */
  readonly home: () => string;
  /** Runs `deskgrid ...args` to the end with that home, in the scratch folder. */
  readonly deskgrid: (args: string[], options?: Partial<CliOptions>) => Promise<CliResult>;
}

/** Call these inside tests only: the scratch folder exists from beforeEach on. */
export function cliHome(tmp: TempFolder): CliHome {
  const home = (): string => join(tmp.root, 'home');
  return {
    home,
    deskgrid: (args, options = {}) => runCli(args, { home: home(), cwd: tmp.root, ...options }),
  };
}

/** Exit status, signal and output of a run, for assertion messages. */
export function details(run: CliResult): string {
  return `exit ${run.code}, signal ${run.signal}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}
