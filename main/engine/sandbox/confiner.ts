// Finds how this machine confines workers: bubblewrap on Linux (DESKGRID_BWRAP, else `bwrap` on
// the PATH), sandbox-exec on macOS, nothing on Windows (no restricted token can be made from
// Node without a native module: a Windows node runs other people's jobs only if its owner
// accepts them unconfined). Whether the confiner found here actually works is for
// confinement-check.ts to prove.

import { accessSync, constants, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { workerEntryPath } from '../pool/worker-entry.js';
import { LINUX_SYSTEM_PATHS, bwrapCommand, type SystemEntry } from './bwrap-command.js';
import { sandboxExecCommand } from './macos-profile.js';
import type { Confiner } from './sandbox-plan.js';

export type ConfinerLookup = { confiner: Confiner } | { confiner: null; reason: string };

/** This machine's confiner, or why there is none. */
export function findConfiner(env: NodeJS.ProcessEnv = process.env): ConfinerLookup {
  const runtime = runtimeFolders();
  switch (process.platform) {
    case 'linux': {
      const bwrap = env['DESKGRID_BWRAP'] || findOnPath('bwrap', env['PATH'] ?? '');
      if (!bwrap || !isExecutable(bwrap)) {
        return {
          confiner: null,
          reason: 'bubblewrap is not installed (apt install bubblewrap, dnf install bubblewrap)',
        };
      }
      const setup = { bwrap, system: linuxSystem(), runtime };
      return {
        confiner: {
          mechanism: 'bubblewrap',
          ownPidNamespace: true,
          wrap: (command, plan) => bwrapCommand(setup, command, plan),
          environment: () => ({ HOME: '/tmp', TMPDIR: '/tmp', TMP: '/tmp', TEMP: '/tmp' }),
        },
      };
    }
    case 'darwin':
      if (!isExecutable('/usr/bin/sandbox-exec'))
        return { confiner: null, reason: '/usr/bin/sandbox-exec is missing' };
      return {
        confiner: {
          mechanism: 'sandbox-exec',
          ownPidNamespace: false,
          wrap: (command, plan) => sandboxExecCommand(runtime, command, plan),
          // The only writable place is the job folder: temporary files go there too.
          environment: (plan) => {
            const folder = plan.readWrite[0] ?? '/dev/null';
            return { HOME: folder, TMPDIR: folder, TMP: folder, TEMP: folder };
          },
        },
      };
    default:
      return {
        confiner: null,
        reason: `DeskGrid cannot confine jobs on ${process.platform} yet`,
      };
  }
}

/** Where Node (or Electron) and DeskGrid itself are installed: every worker needs to read them. */
function runtimeFolders(): string[] {
  const executable = realpathSync(process.execPath);
  // bin/node -> its prefix (lib/ holds nothing we need, but a relocated install keeps its parts together).
  const runtime = process.versions['electron'] ? dirname(executable) : dirname(dirname(executable));
  // dist/worker-service/main.js -> the package root, with node_modules.
  const app = dirname(dirname(dirname(realpathSync(workerEntryPath()))));
  return runtime === app ? [runtime] : [runtime, app];
}

function linuxSystem(): SystemEntry[] {
  const found: SystemEntry[] = [];
  for (const path of LINUX_SYSTEM_PATHS) {
    try {
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) found.push({ path, kind: 'symlink', target: readlinkSync(path) });
      else if (stat.isDirectory()) found.push({ path, kind: 'dir' });
    } catch {
      // not on this system
    }
  }
  return found;
}

function findOnPath(name: string, path: string): string | null {
  for (const folder of path.split(delimiter)) {
    if (folder === '') continue;
    const candidate = join(folder, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
