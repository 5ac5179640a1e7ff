// The fault soak's judgement of one batch, from what its submitter's lives printed and logged,
// what the nodes logged, and the batch's folder at the end. Exactly once means:
//  - every index has exactly one line in results.jsonl (`missing`, `duplicated`), and every
//    result a submitter reported as recorded is still there with the same status (`lost`);
//  - every status is legal (`illegal`): `done`, or `cancelled` for a job whose cancel the
//    submitter accepted; nothing failed, timed out or was abandoned (jobs cannot fail here);
//  - a cancel accepted by a submitter that then recorded the job's result recorded `cancelled`
//    (`cancelIgnored`); if that submitter died first, the cancel died with it and `done` is legal;
//  - nothing that had finished ran again (`ranAgain`): no node started a job on the strength of
//    an attempt sent after the job's result was recorded. A copy already on its way when the
//    result was recorded may still start (it is stopped or its result discarded), so each start
//    a node logged is matched with the last attempt of that job sent to that node before it.

import type { Dispatch, NodeJobEvent, SubmitterLife } from './soak-processes.js';

/** What breaks exactly-once; each must be 0. */
export const FINDINGS = ['missing', 'duplicated', 'lost', 'illegal', 'cancelIgnored', 'ranAgain'] as const;
export type Findings = Record<(typeof FINDINGS)[number], number>;

export interface BatchVerdict extends Findings {
  jobs: number;
  /** Accepted cancels, and how many jobs ended cancelled. */
  cancelsAccepted: number;
  cancelled: number;
  /** A few examples of each problem, for the report. */
  examples: string[];
}

export interface BatchEvidence {
  jobs: number;
  lives: SubmitterLife[];
  /** Every node's job events of this batch. */
  events: NodeJobEvent[];
  /** results.jsonl at the end: index and status per line. */
  final: Array<{ index: number; status: string }>;
  /** When each index was first seen committed in batch.db after a submitter was killed. */
  seenInDatabase: Map<number, number>;
}

const MAX_EXAMPLES = 5;

export function judge(evidence: BatchEvidence): BatchVerdict {
  const examples: string[] = [];
  const note = (text: string) => {
    if (examples.length < MAX_EXAMPLES * 4) examples.push(text);
  };
  const lines = new Map<number, string[]>();
  for (const { index, status } of evidence.final) lines.set(index, [...(lines.get(index) ?? []), status]);
  let missing = 0;
  let duplicated = 0;
  for (let index = 0; index < evidence.jobs; index += 1) {
    const count = lines.get(index)?.length ?? 0;
    if (count === 0) {
      missing += 1;
      note(`job ${index} has no result`);
    }
    if (count > 1) {
      duplicated += count - 1;
      note(`job ${index} has ${count} results`);
    }
  }
  for (const index of lines.keys()) {
    if (!Number.isInteger(index) || index < 0 || index >= evidence.jobs) {
      duplicated += 1;
      note(`a result for job ${index}, which does not exist`);
    }
  }

  const accepted = new Set<number>();
  let cancelsAccepted = 0;
  for (const life of evidence.lives)
    for (const cancel of life.cancels)
      if (cancel.accepted) {
        cancelsAccepted += 1;
        accepted.add(cancel.index);
      }

  let lost = 0;
  let cancelIgnored = 0;
  const recordedAt = new Map(evidence.seenInDatabase);
  for (const life of evidence.lives) {
    const seen = new Set<number>();
    for (const result of life.results) {
      if (seen.has(result.index)) {
        duplicated += 1;
        note(`submitter life ${life.number} reported job ${result.index} twice`);
      }
      seen.add(result.index);
      recordedAt.set(result.index, Math.min(recordedAt.get(result.index) ?? Infinity, result.at));
      const final = lines.get(result.index)?.[0];
      if (final !== result.status) {
        lost += 1;
        note(
          `job ${result.index} was recorded ${result.status} by life ${life.number}, ends ${final ?? 'missing'}`,
        );
      }
      const cancelledHere = life.cancels.some(
        (cancel) => cancel.accepted && cancel.index === result.index && cancel.at <= result.at,
      );
      if (cancelledHere && result.status !== 'cancelled') {
        cancelIgnored += 1;
        note(
          `job ${result.index}: cancel accepted by life ${life.number}, which then recorded ${result.status}`,
        );
      }
    }
  }

  let illegal = 0;
  let cancelled = 0;
  for (const [index, statuses] of lines) {
    const status = statuses[0];
    if (status === 'cancelled') cancelled += 1;
    if (status === 'done' || (status === 'cancelled' && accepted.has(index))) continue;
    illegal += 1;
    note(`job ${index} ended ${status ?? '?'}${status === 'cancelled' ? ' though nobody cancelled it' : ''}`);
  }

  const ranAgain = countRanAgain(evidence, recordedAt, note);
  return {
    jobs: evidence.jobs,
    missing,
    duplicated,
    lost,
    illegal,
    cancelIgnored,
    ranAgain,
    cancelsAccepted,
    cancelled,
    examples,
  };
}

function countRanAgain(
  evidence: BatchEvidence,
  recordedAt: Map<number, number>,
  note: (text: string) => void,
): number {
  const sent = new Map<string, Dispatch[]>();
  for (const life of evidence.lives) {
    for (const dispatch of life.dispatches) {
      const key = `${dispatch.index}@${dispatch.node}`;
      sent.set(key, [...(sent.get(key) ?? []), dispatch]);
    }
  }
  let ranAgain = 0;
  for (const event of evidence.events) {
    if (event.message !== 'job started') continue;
    const recorded = recordedAt.get(event.index);
    if (recorded === undefined || event.t <= recorded) continue;
    const before = (sent.get(`${event.index}@${event.node}`) ?? []).filter((d) => d.t <= event.t);
    const last = before.reduce((latest, d) => Math.max(latest, d.t), -Infinity);
    if (last > recorded) {
      ranAgain += 1;
      note(
        `job ${event.index} started on node ${event.node.slice(0, 8)} at ${event.t}, sent at ${last}, ` +
          `after its result was recorded at ${recorded}`,
      );
    } else if (last === -Infinity) {
      ranAgain += 1;
      note(
        `job ${event.index} started on node ${event.node.slice(0, 8)} at ${event.t} and was never sent there`,
      );
    }
  }
  return ranAgain;
}
