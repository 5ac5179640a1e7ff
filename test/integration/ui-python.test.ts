// A .py script dropped in the UI: the preview lists its top-level functions and what runs by
// default (its one function, for a file without a main block; else the file as a program), the
// user's choice changes it, and a started batch calls the chosen function per item.

import { describe, expect, it } from 'vitest';
import { UiService } from '../../main/engine/ui/ui-service.js';
import { useCluster } from '../support/engine-cluster.js';
import { batchIn, uploadFile } from '../support/ui-calls.js';

const shared = useCluster('ui-python');

describe('a Python script in the UI', () => {
  it(
    'defaults to calling the one function of a file without a main block, and runs it',
    { timeout: 60_000 },
    async () => {
      const ui = new UiService({ cluster: shared.cluster, home: shared.home });
      try {
        const script = await uploadFile(ui, 'script', 'triple.py', 'def triple(x):\n    return 3 * x\n');
        const dataset = await uploadFile(ui, 'dataset', 'numbers.jsonl', '1\n2\n3\n');
        const preview = await ui.call('previewBatch', { script, dataset, options: {} });
        expect(preview.python).toEqual({ functions: ['triple'], hasMainBlock: false, function: 'triple' });
        expect(preview.computation).toMatchObject({
          kind: 'python',
          runs: 'the Python function triple, called once per job in warm interpreters',
        });
        const asProgram = await ui.call('previewBatch', { script, dataset, options: { function: null } });
        expect(asProgram.computation.kind).toBe('program');
        expect(asProgram.python?.function).toBeNull();

        const { batch } = await ui.call('startBatch', { script, dataset, options: {} });
        const ended = await batchIn(ui, batch.id, 'ended');
        expect(ended).toMatchObject({ total: 3, done: 3, failed: 0 });
        const { rows } = await ui.call('getResults', { batchId: batch.id, offset: 0, limit: 10 });
        expect(rows.map((row) => [row.index, row.value]).sort()).toEqual([
          [0, '3'],
          [1, '6'],
          [2, '9'],
        ]);
      } finally {
        ui.close();
      }
    },
  );

  it('defaults to a program for a file with a main block or several functions, and offers each function', async () => {
    const ui = new UiService({ cluster: shared.cluster, home: shared.home });
    try {
      const text =
        'import sys\n\ndef a(x):\n    return x\n\nasync def b(x):\n    return x\n\nif __name__ == "__main__":\n    print(a(sys.argv[1]))\n';
      const script = await uploadFile(ui, 'script', 'tool.py', text);
      const preview = await ui.call('previewBatch', { script, dataset: null, options: {} });
      expect(preview.python).toEqual({ functions: ['a', 'b'], hasMainBlock: true, function: null });
      expect(preview.computation.kind).toBe('program');
      const chosen = await ui.call('previewBatch', { script, dataset: null, options: { function: 'b' } });
      expect(chosen.python?.function).toBe('b');
      expect(chosen.computation.kind).toBe('python');
    } finally {
      ui.close();
    }
  });
});
