// The renderer's stores: the window's state follows the engine's events, and the results table
// fetches only the pages of rows that are looked at.

import { describe, expect, it } from 'vitest';
import { shownError, UiCallError } from '../../renderer/src/lib/api.js';
import { AppState } from '../../renderer/src/lib/app-state.svelte.js';
import { PAGE_SIZE, ResultsTable } from '../../renderer/src/lib/results-table.svelte.js';
import { guessRole, fromFile } from '../../renderer/src/lib/upload.js';
import { FakeEngine, batchInfo, row } from './fake-engine.js';

describe('AppState', () => {
  it('follows nodes, batches, results, progress and warnings from events', () => {
    const app = new AppState(new FakeEngine(0));
    app.apply({ type: 'batch', batch: batchInfo({ id: 'first' }) });
    app.apply({ type: 'batch', batch: batchInfo({ id: 'second' }) });
    // A new batch is the one shown, and the newest comes first.
    expect(app.selectedBatch?.id).toBe('second');
    expect(app.batches.map((batch) => batch.id)).toEqual(['second', 'first']);
    app.apply({ type: 'batch', batch: batchInfo({ id: 'second', done: 40 }) });
    expect(app.batches).toHaveLength(2);
    expect(app.selectedBatch?.done).toBe(40);

    app.apply({ type: 'job-progress', batchId: 'second', index: 5, fraction: 0.5, note: 'half' });
    app.apply({ type: 'job-progress', batchId: 'first', index: 6, fraction: 0.1, note: null });
    app.apply({ type: 'provisional', batchId: 'second', index: 5, value: '{"partial":1}' });
    expect(Object.keys(app.jobProgress)).toEqual(['5']);
    expect(app.provisional[5]).toBe('{"partial":1}');
    const version = app.resultsVersion;
    app.apply({ type: 'results', batchId: 'second', rows: [row(5), row(7)] });
    // A finished job is no longer in progress; the latest result comes first.
    expect(app.jobProgress).toEqual({});
    expect(app.provisional).toEqual({});
    expect(app.recentResults.map((result) => result.index)).toEqual([7, 5]);
    expect(app.resultsVersion).toBe(version + 1);
    app.apply({ type: 'results', batchId: 'first', rows: [row(9)] });
    expect(app.recentResults.map((result) => result.index)).toEqual([7, 5]);

    for (let n = 0; n < 7; n += 1) app.apply({ type: 'warning', message: `warning ${n}` });
    expect(app.warnings.map((warning) => warning.message)).toEqual([
      'warning 2',
      'warning 3',
      'warning 4',
      'warning 5',
      'warning 6',
    ]);
  });

  it('says in words when the node cannot be reached', async () => {
    const engine = new FakeEngine(0);
    engine.call = () => Promise.reject(new Error('the DeskGrid node does not answer'));
    const app = new AppState(engine);
    await app.reload();
    expect(app.loadError).toBe('the DeskGrid node does not answer');
  });
});

describe('ResultsTable', () => {
  it('loads only the pages in view of 100 000 rows, and starts over on a new filter', async () => {
    const engine = new FakeEngine(100_000);
    const table = new ResultsTable(engine);
    await table.reset('b1', 'all', '');
    expect(table.matching).toBe(100_000);
    expect(table.rowAt(0)).toEqual(row(0));
    expect(table.rowAt(PAGE_SIZE)).toBeUndefined();

    await table.ensure(50_000, 50_030);
    expect(table.rowAt(50_010)).toEqual(row(50_010));
    const fetched = engine.calls.filter((call) => call.name === 'getResults');
    expect(fetched).toHaveLength(2);

    await table.reset('b1', 'failed', '');
    expect(table.matching).toBe(10_000);
    expect(table.rowAt(0)?.index).toBe(3);
    expect(table.rowAt(1)?.index).toBe(13);
    expect(engine.calls.at(-1)?.input).toMatchObject({ status: 'failed', offset: 0 });
  });
});

describe('guessRole', () => {
  const file = (name: string) => fromFile(new File(['x'], name));
  it('tells scripts from datasets by name, and folders by an entry point', () => {
    expect(guessRole(file('score.py'))).toBe('script');
    expect(guessRole(file('customers.csv'))).toBe('dataset');
    expect(guessRole(file('notes'))).toBeNull();
    const folder = (paths: string[]) => ({
      name: 'f',
      kind: 'folder' as const,
      bytes: 0,
      files: paths.map((path) => ({ path, file: new File([''], path) })),
    });
    expect(guessRole(folder(['main.py', 'helpers.py']))).toBe('script');
    expect(guessRole(folder(['a.txt', 'b.txt']))).toBe('dataset');
  });
});

describe('shownError', () => {
  it('keeps the DeskGrid code of a failed call, whatever carried it, and only such a code', () => {
    const message = 'cannot load unlicensed.mjs: no licence file';
    expect(shownError(new UiCallError(message, 'DG_ERR_MODULE_LOAD'))).toEqual({
      message,
      code: 'DG_ERR_MODULE_LOAD',
    });
    // The desktop app's bridge: its own error class, or a plain object.
    const bridged = Object.assign(new Error(message), { code: 'DG_ERR_DATASET' });
    expect(shownError(bridged)).toEqual({ message, code: 'DG_ERR_DATASET' });
    expect(shownError({ message, code: 'DG_ERR_NO_NODE' })).toEqual({ message, code: 'DG_ERR_NO_NODE' });
    // Electron's own wrapping, and codes that are not DeskGrid's (a Node errno), say only the sentence.
    expect(shownError(new Error(`Error invoking remote method 'deskgrid:call': Error: ${message}`))).toEqual({
      message,
      code: null,
    });
    expect(shownError(Object.assign(new Error(message), { code: 'ENOENT' }))).toEqual({
      message,
      code: null,
    });
    expect(shownError('plain words')).toEqual({ message: 'plain words', code: null });
  });
});
