// The bubblewrap command line that confines a worker on Linux. The worker gets an empty root of
// its own (a tmpfs), the system folders read-only, the runtime and the app read-only, the plan's
// bundle read-only and job folders read-write (each at its own path, so paths in messages stay
// valid), a private /tmp, /proc of its own pid namespace (no other process of the node's user is
// visible or signalable), a minimal /dev, and nothing else: not the node's data folder, not its
// owner's home. Pure: the system's layout is read by confiner.ts and passed in.

import type { CommandLine, SandboxPlan } from './sandbox-plan.js';

/** A top-level system path as found on this machine: a folder to bind, or a symlink to copy. */
export type SystemEntry = { path: string; kind: 'dir' } | { path: string; kind: 'symlink'; target: string };

export interface BwrapSetup {
  /** The bwrap executable. */
  bwrap: string;
  /** /usr, /etc, /bin, /lib... as they exist here. */
  system: SystemEntry[];
  /** Also read-only: where the runtime and the app live when outside the system folders. */
  runtime: string[];
}

/** The folders every confined worker sees read-only, when they exist on this machine. */
export const LINUX_SYSTEM_PATHS = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

export function bwrapCommand(setup: BwrapSetup, command: CommandLine, plan: SandboxPlan): CommandLine {
  const args = [
    // user, pid, ipc, uts, cgroup and network namespaces (user only where allowed: as root too).
    '--unshare-all',
    ...(plan.network ? ['--share-net'] : []),
    '--die-with-parent',
    // No controlling terminal: a job cannot push keystrokes into the owner's shell (TIOCSTI).
    '--new-session',
    '--hostname',
    'deskgrid-job',
  ];
  for (const entry of setup.system) {
    if (entry.kind === 'symlink') args.push('--symlink', entry.target, entry.path);
    else args.push('--ro-bind', entry.path, entry.path);
  }
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  for (const path of setup.runtime) if (!underSystem(path, setup.system)) args.push('--ro-bind', path, path);
  for (const path of plan.readOnly) args.push('--ro-bind', path, path);
  for (const path of plan.readWrite) args.push('--bind', path, path);
  // The root the binds were made in: read-only too, so a job writes only to its folders and /tmp.
  args.push('--remount-ro', '/');
  args.push('--chdir', plan.readWrite[0] ?? '/tmp', '--', command.command, ...command.args);
  return { command: setup.bwrap, args };
}

function underSystem(path: string, system: SystemEntry[]): boolean {
  return system.some(
    (entry) => entry.kind === 'dir' && (path === entry.path || path.startsWith(`${entry.path}/`)),
  );
}
