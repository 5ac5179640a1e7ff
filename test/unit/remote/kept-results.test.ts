// The node's journal of other submitters' jobs, on a real SQLite file: what a restart reports
// lost, what a claim hands over (and to whom), the limit on kept results, and expiry.

import { describe, expect, it } from 'vitest';
import { KeptResults, type JobRef } from '../../../main/engine/remote/kept-results.js';
import { useTempFolder } from '../../support/temp-folder.js';

const tmp = useTempFolder();
const SUBMITTER = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

function ref(index: number, submitter = SUBMITTER, batch = 'batch-1'): JobRef {
  return { submitter, batch, index, attempt: 1 };
}

describe('KeptResults', () => {
  it('hands kept results to their own submitter only, until it acknowledges them', () => {
    const journal = new KeptResults(tmp.root, { days: 7, megabytes: 10 });
    journal.accepted([ref(0), ref(1), ref(2)]);
    const key = journal.keep(ref(1), '{"ok":true}', Buffer.from('value'));
    expect(key).not.toBeNull();
    expect(journal.claim(OTHER, 'batch-1')).toEqual({ kept: [], lost: [] });
    const claimed = journal.claim(SUBMITTER, 'batch-1');
    expect(claimed.lost).toEqual([]);
    expect(claimed.kept.map((row) => [row.index, row.header, row.body.toString()])).toEqual([
      [1, '{"ok":true}', 'value'],
    ]);
    // Not acknowledged yet: a second claim gets it again.
    expect(journal.claim(SUBMITTER, 'batch-1').kept).toHaveLength(1);
    journal.handedOver(SUBMITTER, [key ?? -1]);
    expect(journal.claim(SUBMITTER, 'batch-1').kept).toEqual([]);
    journal.close();
  });

  it('reports the jobs an earlier life of the node accepted as lost, once', () => {
    const first = new KeptResults(tmp.root, { days: 7, megabytes: 10 });
    first.accepted([ref(0), ref(1), ref(2)]);
    first.keep(ref(0), '{}', Buffer.alloc(0));
    first.forgotten([ref(2)]);
    first.close();

    const restarted = new KeptResults(tmp.root, { days: 7, megabytes: 10 });
    const claimed = restarted.claim(SUBMITTER, 'batch-1');
    expect(claimed.kept.map((row) => row.index)).toEqual([0]);
    expect(claimed.lost).toEqual([{ index: 1, reason: 'the node restarted while the job was to run there' }]);
    expect(restarted.claim(SUBMITTER, 'batch-1').lost).toEqual([]);
    restarted.close();
  });

  it('reports a result that does not fit in the limit as lost instead of keeping it', () => {
    const journal = new KeptResults(tmp.root, { days: 7, megabytes: 1 });
    journal.accepted([ref(0), ref(1)]);
    expect(journal.keep(ref(0), '{}', Buffer.alloc(700 * 1024))).not.toBeNull();
    expect(journal.keep(ref(1), '{}', Buffer.alloc(700 * 1024))).toBeNull();
    const claimed = journal.claim(SUBMITTER, 'batch-1');
    expect(claimed.kept.map((row) => row.index)).toEqual([0]);
    expect(claimed.lost).toHaveLength(1);
    expect(claimed.lost[0]?.reason).toMatch(/did not fit in the 1 MB/);
    journal.close();
  });

  it('forgets what waited longer than the limit, and nothing younger', () => {
    const journal = new KeptResults(tmp.root, { days: 7, megabytes: 10 });
    journal.accepted([ref(0)]);
    journal.keep(ref(0), '{}', Buffer.from('x'));
    expect(journal.expire()).toBe(0);
    journal.close();
    // A limit in the past makes everything already written too old.
    const later = new KeptResults(tmp.root, { days: -1, megabytes: 10 });
    expect(later.claim(SUBMITTER, 'batch-1')).toEqual({ kept: [], lost: [] });
    later.close();
  });
});
