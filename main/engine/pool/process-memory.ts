// Reads a process's resident memory, for the pool's memory limit. Linux only (from /proc);
// elsewhere the limit falls back to the worker's V8 heap limit.

import { readFileSync } from 'node:fs';

const VM_RSS = /VmRSS:\s+(\d+) kB/;

/** Resident set size in bytes, or null when it cannot be read (gone, or not Linux). */
export function residentBytes(pid: number): number | null {
  try {
    const match = VM_RSS.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
