// Why a node shares no cores with a submitter right now, and until when: what the node's offer
// carries (wire-protocol.ts), what the submitter's Cluster reports in its 'waiting' event, and
// what the CLI and the UI's node cards say, in the same words everywhere.
//
// Reasons are open-ended on the wire (a newer node may give one this version does not know):
// an unknown reason is shown as it came and counted as one that does not pass by itself.

import * as v from 'valibot';

/** Reasons this version gives; a node's owner policy decides most of them (owner-policy.ts). */
export type NotSharingReason =
  | 'paused'
  | 'snoozed'
  | 'outside-hours'
  | 'on-battery'
  | 'owner-active'
  | 'sleeping'
  /** Every core runs other submitters' (or the node's own) jobs: new jobs wait there. */
  | 'full'
  | 'shutting-down'
  /** The node shares zero cores. */
  | 'no-cores';

export const notSharingSchema = v.object({
  reason: v.pipe(v.string(), v.regex(/^[a-z-]{1,32}$/)),
  /** When sharing comes back by itself (ms since the epoch), if known. */
  until: v.nullable(v.number()),
});
export type NotSharing = v.InferOutput<typeof notSharingSchema>;

/** Reasons that pass without anyone doing anything: a node idle for one may share later. */
const PASSING = new Set<string>([
  'snoozed',
  'outside-hours',
  'on-battery',
  'owner-active',
  'sleeping',
  'full',
]);

export function passesByItself(why: NotSharing): boolean {
  return PASSING.has(why.reason);
}

const WORDS: Record<NotSharingReason, string> = {
  paused: 'sharing paused by its owner',
  snoozed: 'sharing snoozed',
  'outside-hours': 'outside its sharing hours',
  'on-battery': 'on battery power',
  'owner-active': 'its owner is using it',
  sleeping: 'going to sleep',
  full: "every core busy with other submitters' jobs",
  'shutting-down': 'shutting down',
  'no-cores': 'shares no cores',
};

/** The reason in a few words, with "until" a local time when known: "outside its sharing hours until 18:00". */
export function notSharingText(why: NotSharing, now = Date.now()): string {
  const words = (WORDS as Record<string, string | undefined>)[why.reason] ?? `not sharing (${why.reason})`;
  return why.until === null || why.until <= now ? words : `${words} until ${localTime(why.until, now)}`;
}

/** "18:00" within the next 24 hours, else "2026-12-07 18:00" (local time). */
function localTime(at: number, now: number): string {
  const date = new Date(at);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (at - now < 24 * 3600 * 1000) return time;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}
