// When a batch store commits: at the end of the turn when it has been quiet, and no sooner than
// the gap after the previous commit while results keep coming (the clock here stands still, so
// the gap has always just begun).

import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { CommitPacer } from '../../../main/engine/store/commit-pacer.js';
import { until } from '../../support/until.js';

function pacer(): { pacer: CommitPacer; commits: () => number } {
  let commits = 0;
  const paced: CommitPacer = new CommitPacer(
    () => {
      commits += 1;
      paced.committed();
    },
    () => 1000,
  );
  return { pacer: paced, commits: () => commits };
}

describe('CommitPacer', () => {
  it('commits a lone result at the end of its turn, once for everything due in that turn', async () => {
    const { pacer: paced, commits } = pacer();
    paced.due();
    paced.due();
    paced.due();
    expect(commits()).toBe(0);
    await nextTurn();
    expect(commits()).toBe(1);
  });

  it('holds the next commit back until the gap has passed, gathering what comes meanwhile', async () => {
    const { pacer: paced, commits } = pacer();
    paced.due();
    await nextTurn();
    expect(commits()).toBe(1);
    paced.due();
    await nextTurn();
    // Right after a commit: the next one waits for the gap (a timer), not for the end of the turn.
    expect(commits()).toBe(1);
    paced.due();
    await until(() => commits() === 2, 'the paced commit');
    await nextTurn();
    expect(commits()).toBe(2);
  });

  it('has nothing due after a forced commit (a store closing)', async () => {
    const { pacer: paced, commits } = pacer();
    paced.due();
    paced.committed();
    await nextTurn();
    expect(commits()).toBe(0);
  });
});
