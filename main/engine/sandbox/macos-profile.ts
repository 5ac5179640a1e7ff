// The sandbox-exec (Seatbelt) profile that confines a worker on macOS. Everything is denied
// unless allowed: the system and the runtime are readable, the plan's bundle is readable, its
// job folders are readable and writable, other processes cannot be inspected or signalled, and
// the network is allowed only when the plan says so. sandbox-exec is deprecated by Apple but is
// what every macOS since 10.5 ships; this cannot be run on the Linux CI, only built and checked.

import type { CommandLine, SandboxPlan } from './sandbox-plan.js';

const MACOS_SYSTEM_PATHS = [
  '/usr',
  '/bin',
  '/sbin',
  '/System',
  '/Library',
  '/private/etc',
  '/private/var/db',
  '/dev',
  '/opt/homebrew',
];

/** Seatbelt string literal: backslashes and quotes escaped. */
function quoted(path: string): string {
  return `"${path.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function macosProfile(runtime: string[], plan: SandboxPlan): string {
  const readable = [...MACOS_SYSTEM_PATHS, ...runtime, ...plan.readOnly, ...plan.readWrite];
  return [
    '(version 1)',
    '(deny default)',
    '(allow process-fork)',
    '(allow process-exec)',
    '(allow signal (target same-sandbox))',
    '(allow process-info* (target same-sandbox))',
    '(allow sysctl-read)',
    '(allow mach-lookup)',
    '(allow ipc-posix-shm)',
    '(allow file-read-metadata)',
    '(allow file-read* (literal "/"))',
    `(allow file-read* ${readable.map((path) => `(subpath ${quoted(path)})`).join(' ')})`,
    `(allow file-write* (literal "/dev/null") ${plan.readWrite.map((path) => `(subpath ${quoted(path)})`).join(' ')})`,
    ...(plan.network ? ['(allow network*)'] : ['(allow network* (local ip "localhost:*"))']),
  ].join('\n');
}

export function sandboxExecCommand(runtime: string[], command: CommandLine, plan: SandboxPlan): CommandLine {
  return {
    command: '/usr/bin/sandbox-exec',
    args: ['-p', macosProfile(runtime, plan), command.command, ...command.args],
  };
}
