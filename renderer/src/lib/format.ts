// Numbers and times as people read them.

import { groupDigits } from '../../../shared/ui-api.js';

export { groupDigits };

export function plural(n: number, noun: string, many = `${noun}s`): string {
  return `${groupDigits(n)} ${n === 1 ? noun : many}`;
}

/** 512 -> "512 B", 1536 -> "1.5 KB", and MB, GB. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

/** Seconds as "45 s", "3 min 20 s", "2 h 5 min". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function milliseconds(ms: number | null): string {
  if (ms === null) return '–';
  return ms < 1000 ? `${Math.round(ms)} ms` : duration(ms / 1000);
}

export function rate(perSecond: number): string {
  if (perSecond >= 100) return `${groupDigits(perSecond)}/s`;
  if (perSecond >= 10) return `${perSecond.toFixed(0)}/s`;
  return `${perSecond.toFixed(1)}/s`;
}

/** "just now", "12 s ago", "4 min ago". */
export function ago(at: number | null, now: number): string {
  if (at === null) return '–';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export function clock(at: number | null): string {
  return at === null ? '–' : new Date(at).toLocaleTimeString();
}

export function osName(os: string): string {
  const names: Record<string, string> = { linux: 'Linux', darwin: 'macOS', win32: 'Windows' };
  return names[os] ?? (os || 'unknown system');
}
