// A long-lived cluster (the desktop app's) keeps its workers warm between batches: a computation
// edited between two batches must run as edited, not as the workers first imported it.

import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';

const shared = useCluster('reload');
const tmp = useTempFolder();

async function valuesOf(computation: string): Promise<unknown[]> {
  const values: unknown[] = [];
  for await (const result of shared.cluster.submit({ computation, inputs: [1, 2, 3, 4] }))
    values.push(result.value);
  return values;
}

describe('warm workers and edited computations', () => {
  it('runs the edited module in the next batch', async () => {
    const file = tmp.write('scale.mjs', 'export default (x) => x * 10;\n');
    expect((await valuesOf(file)).sort()).toEqual([10, 20, 30, 40]);
    tmp.write('scale.mjs', 'export default (x) => x * 100;\n');
    expect((await valuesOf(file)).sort()).toEqual([100, 200, 300, 400]);
  });

  it('a module that loaded once is not probed again, and a broken edit still fails the batch', async () => {
    const file = tmp.write('edit.mjs', 'export default (x) => x;\n');
    expect(await valuesOf(file)).toHaveLength(4);
    tmp.write('edit.mjs', 'export const notDefault = 1;\n');
    const batch = shared.cluster.submit({ computation: file, inputs: [1] });
    await expect(batch.done).rejects.toMatchObject({ code: 'DG_ERR_NO_DEFAULT_EXPORT' });
  });
});
