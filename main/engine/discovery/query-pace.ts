// How often this node asks the LAN who is there, and so how soon a silent node counts as offline.
// Every node answers every query with a multicast, so the LAN carries one answer per node per
// query interval, and every host on it receives and parses each one (on Wi-Fi, multicast goes at
// the slowest rate, taking airtime from everyone). At a fixed 1 s, an office of 40 nodes would
// multicast 40 answers a second, 200 nodes 200. The interval grows with the number of nodes
// heard, so the answers on the LAN stay near LAN_ANSWERS_PER_SECOND whatever the office's size;
// a LAN of up to that many nodes keeps the 1 s interval and its 3 s liveness. Liveness here only
// orders the node list: a node in use is watched over its own connection.

export const BASE_QUERY_INTERVAL_MS = 1000;
/** The budget of mDNS answers per second on the whole LAN, once it has more nodes than that. */
export const LAN_ANSWERS_PER_SECOND = 20;
/** Beyond this (300 nodes) the budget gives way: a node must not stay listed for minutes after it died. */
export const MAX_PACED_INTERVAL_MS = 15_000;
/** A node is offline after missing this many answers in a row. */
const MISSED_ANSWERS_OFFLINE = 3;

/** The query interval for a LAN where `nodesHeard` other nodes answer. */
export function queryIntervalFor(nodesHeard: number): number {
  const paced = (Math.max(0, nodesHeard) * 1000) / LAN_ANSWERS_PER_SECOND;
  return Math.round(Math.min(MAX_PACED_INTERVAL_MS, Math.max(BASE_QUERY_INTERVAL_MS, paced)));
}

/** How long a node may stay silent before it is offline, at this query interval. */
export function offlineAfterFor(queryIntervalMs: number): number {
  return MISSED_ANSWERS_OFFLINE * queryIntervalMs;
}
