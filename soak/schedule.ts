// The fault soak's schedule: which faults come, in what order, aimed where, and for how long,
// drawn from one seed. The same seed gives the same schedule (printed at the start of a run),
// so a run that found something can be replayed; what each fault hits (which job a cancel
// stops, which jobs a killed node held) still depends on timing, which no seed can fix.

export const FAULT_KINDS = ['nodeKill', 'linkCut', 'submitterKill', 'cancel'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  /** Pause before this fault, after the previous one was dealt. */
  gapMs: number;
  /** nodeKill, linkCut: which node (0-based). */
  node: number;
  /** How long the node stays dead, the link cut, or the submitter gone, before it comes back. */
  downMs: number;
  /** cancel: where in the list of jobs running now (0..1) the cancelled one sits. */
  pick: number;
}

export interface ScheduleOptions {
  seed: number;
  /** Faults of each kind. */
  perKind: number;
  nodes: number;
}

/** Gaps between faults: short enough that faults overlap, long enough for jobs to run between. */
const GAP_MS = [150, 1200] as const;
const NODE_DOWN_MS = [200, 3000] as const;
/** Some cuts heal before the 3.5 s silence that drops a node, the others after it. */
const LINK_DOWN_MS = [[500, 2500] as const, [4000, 9000] as const] as const;
const SUBMITTER_DOWN_MS = [50, 2000] as const;

/** mulberry32: a small, well-mixed 32-bit generator; plenty for a test schedule. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `perKind` faults of every kind, shuffled, each with its target and durations. */
export function makeSchedule(options: ScheduleOptions): Fault[] {
  const random = seededRandom(options.seed);
  const between = ([low, high]: readonly [number, number]) => Math.round(low + random() * (high - low));
  const kinds: FaultKind[] = FAULT_KINDS.flatMap((kind) => Array<FaultKind>(options.perKind).fill(kind));
  // Fisher-Yates, so the kinds mix rather than come in runs.
  for (let at = kinds.length - 1; at > 0; at -= 1) {
    const other = Math.floor(random() * (at + 1));
    [kinds[at], kinds[other]] = [kinds[other] as FaultKind, kinds[at] as FaultKind];
  }
  return kinds.map((kind) => {
    const gapMs = between(GAP_MS);
    const node = Math.floor(random() * options.nodes);
    const pick = random();
    const longCut = random() < 0.5;
    const downMs =
      kind === 'nodeKill'
        ? between(NODE_DOWN_MS)
        : kind === 'linkCut'
          ? between(LINK_DOWN_MS[longCut ? 1 : 0])
          : kind === 'submitterKill'
            ? between(SUBMITTER_DOWN_MS)
            : 0;
    return { kind, gapMs, node, downMs, pick };
  });
}

/** A fresh seed, for runs not given one. */
export function newSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
