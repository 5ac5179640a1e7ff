// Results that end in the same turn leave a node as one `results` message; a lone one is not
// held back beyond its turn, and a large one goes alone at once.

import { describe, expect, it } from 'vitest';
import * as v from 'valibot';
import { fromNodeSchema, type RemoteResult } from '../../../shared/wire-protocol.js';
import { ResultCoalescer } from '../../../main/engine/remote/result-coalescer.js';
import { failureResult } from '../../../main/engine/remote/result-packing.js';

/** A result header with a body of `valueBytes` (built as the node builds a failure's, then given a value). */
function result(id: number, valueBytes: number): RemoteResult {
  const error = { code: 'DG_ERR_JOB_THREW', message: 'threw', stack: null };
  return { ...failureResult(id, 'failed', error, { startedAt: 1, endedAt: 2 }).header, valueBytes };
}

function collector() {
  const sent: Array<{ header: object; body: Buffer }> = [];
  const coalescer = new ResultCoalescer((header, body) => sent.push({ header, body: Buffer.concat(body) }));
  return { sent, coalescer };
}

describe('ResultCoalescer', () => {
  it('sends the results of one turn as one valid `results` message, bodies in order', async () => {
    const { sent, coalescer } = collector();
    for (let id = 1; id <= 3; id += 1) coalescer.add(result(id, 2), [Buffer.from([id, id])]);
    expect(sent).toEqual([]);
    await Promise.resolve();
    expect(sent).toHaveLength(1);
    const [message] = sent;
    const parsed = v.parse(fromNodeSchema, message?.header);
    expect(parsed.t).toBe('results');
    if (parsed.t !== 'results') return;
    expect(parsed.results.map((entry) => entry.id)).toEqual([1, 2, 3]);
    expect([...(message?.body ?? [])]).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it('sends a lone result as `result` at the end of its turn, with no timer', async () => {
    const { sent, coalescer } = collector();
    coalescer.add(result(7, 1), [Buffer.from([7])]);
    await Promise.resolve();
    expect(sent.map(({ header }) => (header as { t: string }).t)).toEqual(['result']);
  });

  it('sends a large result alone and at once, apart from the small ones held', () => {
    const { sent, coalescer } = collector();
    coalescer.add(result(1, 1), [Buffer.from([1])]);
    coalescer.add(result(2, 128 * 1024), [Buffer.alloc(128 * 1024)]);
    expect(sent.map(({ header }) => (header as { id?: number }).id)).toEqual([2]);
    coalescer.flush();
    expect(sent.map(({ header }) => (header as { t: string }).t)).toEqual(['result', 'result']);
  });
});
