// The engine side of the UI API over a real two-core cluster: inputs are validated with the
// contract, uploads stay inside their folder and within their limits, and a batch submitted from
// uploaded files can be previewed, run, paged, searched, inspected, retried, exported and cancelled.

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateJoinCode, parseJoinCode } from '../../shared/join-code.js';
import type { UiEvent } from '../../shared/ui-api.js';
import { clusterId } from '../../main/engine/identity/cluster-key.js';
import { UiService } from '../../main/engine/ui/ui-service.js';
import { useCluster } from '../support/engine-cluster.js';
import { batchIn, uploadFile } from '../support/ui-calls.js';
import { until as poll } from '../support/until.js';

/** The shared poller, with the minute this file's slower waits need. */
const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> =>
  poll(probe, what, 60_000);

const shared = useCluster('ui-service');

const SCRIPT = `export default async (row) => {
  if (row.name === 'bad') throw new Error('bad row ' + row.qty);
  return Number(row.qty) * 2;
};
`;

function service(limits?: { maxBytes?: number; maxFiles?: number }): UiService {
  return new UiService({
    cluster: shared.cluster,
    home: shared.home,
    ...(limits === undefined ? {} : { uploadLimits: limits }),
  });
}

/**
 * Job 0 finishes after job 19, so finish order and index order differ: it waits (10 s at most)
 * for the mark job 19 leaves. Waiting a fixed time was not enough: a new computation gets its
 * second worker only once another computation's worker is handed over and started afresh.
 */
const LAST_MARK = join(tmpdir(), `deskgrid-ui-late-first-${process.pid}-${Date.now()}`);
const LATE_FIRST = `import { existsSync, writeFileSync } from 'node:fs';
export default async (n) => {
  if (Number(n) === 19) writeFileSync(${JSON.stringify(LAST_MARK)}, '');
  for (let waited = 0; Number(n) === 0 && waited < 10_000 && !existsSync(${JSON.stringify(LAST_MARK)}); waited += 20)
    await new Promise((r) => setTimeout(r, 20));
  return n;
};
`;

/** 0 to n - 1, a line each. */
const numbers = (n: number): string => Array.from({ length: n }, (_, at) => at).join('\n');

function csv(rows: number, bad: number[]): string {
  let text = 'name,qty\n';
  for (let n = 0; n < rows; n += 1) text += `${bad.includes(n) ? 'bad' : `item${n}`},${n}\n`;
  return text;
}

describe('UiService', () => {
  it('refuses inputs that break the contract, naming the field', async () => {
    const ui = service();
    try {
      await expect(ui.handle('getResults', { batchId: 'x', offset: -1, limit: 10 })).rejects.toMatchObject({
        code: 'DG_ERR_USAGE',
        message: expect.stringContaining('offset'),
      });
      await expect(ui.handle('startBatch', { script: { type: 'nope' } })).rejects.toMatchObject({
        code: 'DG_ERR_USAGE',
      });
      await expect(ui.handle('getJob', { batchId: 'missing', index: 0 })).rejects.toMatchObject({
        code: 'DG_ERR_NOT_FOUND',
        message: 'that batch is no longer known to this node',
      });
      await expect(ui.handle('setSettings', { joinCode: 'K7QF-9XM2' })).rejects.toMatchObject({
        code: 'DG_ERR_JOIN_CODE',
        message: expect.stringContaining('too short'),
      });
    } finally {
      ui.close();
    }
  });

  it('keeps uploads inside their folder and within their limits', async () => {
    const ui = service({ maxBytes: 1000, maxFiles: 2 });
    try {
      await expect(
        ui.call('beginUpload', { role: 'dataset', name: '../escape', kind: 'file', bytes: 1, files: 1 }),
      ).rejects.toMatchObject({ code: 'DG_ERR_USAGE' });
      await expect(
        ui.call('beginUpload', { role: 'dataset', name: 'big.csv', kind: 'file', bytes: 1001, files: 1 }),
      ).rejects.toMatchObject({ code: 'DG_ERR_TOO_LARGE', message: expect.stringContaining('big.csv') });
      await expect(
        ui.call('beginUpload', { role: 'dataset', name: 'many', kind: 'folder', bytes: 3, files: 3 }),
      ).rejects.toMatchObject({ code: 'DG_ERR_TOO_LARGE' });

      const { uploadId } = await ui.call('beginUpload', {
        role: 'dataset',
        name: 'texts',
        kind: 'folder',
        bytes: 10,
        files: 2,
      });
      const piece = (path: string, text: string, offset = 0) =>
        ui.call('uploadChunk', { uploadId, path, offset, data: Buffer.from(text).toString('base64') });
      for (const path of ['../../outside.txt', '/etc/passwd', 'a/../../b', 'a\\b']) {
        await expect(piece(path, 'x')).rejects.toMatchObject({ code: 'DG_ERR_USAGE' });
      }
      await piece('a/one.txt', 'hello');
      await expect(piece('a/one.txt', 'again', 0)).rejects.toMatchObject({
        message: expect.stringContaining('out of order'),
      });
      await expect(piece('two.txt', 'more than announced')).rejects.toMatchObject({
        code: 'DG_ERR_TOO_LARGE',
      });
      // Not complete: a batch cannot use it yet.
      const script = await uploadFile(ui, 'script', 'words.mjs', 'export default (p) => p;\n');
      await expect(
        ui.call('previewBatch', { script, dataset: { type: 'upload', uploadId }, options: {} }),
      ).rejects.toMatchObject({ message: expect.stringContaining('has not finished uploading') });
      await piece('two.txt', 'world');
      const preview = await ui.call('previewBatch', {
        script,
        dataset: { type: 'upload', uploadId },
        options: {},
      });
      expect(preview.summary).toBe('2 jobs, one per file');
      expect(preview.firstInputs).toEqual(['a/one.txt', 'two.txt']);
      // A script dropped as the dataset is refused in words.
      await expect(ui.call('previewBatch', { script, dataset: script, options: {} })).rejects.toMatchObject({
        message: 'words.mjs was dropped as the script',
      });
    } finally {
      ui.close();
    }
  });

  it('previews, runs, pages, searches, shows, retries and exports a batch', { timeout: 60_000 }, async () => {
    const ui = service();
    const events: UiEvent[] = [];
    ui.on('event', (event) => events.push(event));
    try {
      const script = await uploadFile(ui, 'script', 'double.mjs', SCRIPT);
      const dataset = await uploadFile(ui, 'dataset', 'items.csv', csv(1204, [7, 300]));
      const preview = await ui.call('previewBatch', { script, dataset, options: {} });
      expect(preview).toMatchObject({
        jobs: 1204,
        summary: '1 204 jobs, one per CSV row',
        split: 'csv',
        computation: { kind: 'module', name: 'double.mjs' },
      });
      expect(preview.firstInputs[0]).toBe('{"name":"item0","qty":"0"}');

      const { batch } = await ui.call('startBatch', { script, dataset, options: { retries: 0 } });
      const ended = await batchIn(ui, batch.id, 'ended');
      expect(ended).toMatchObject({ total: 1204, done: 1202, failed: 2 });
      expect(ended.perNode[shared.cluster.nodeId]).toMatchObject({ done: 1202, failed: 2 });
      // Every result was pushed as an event, once.
      const pushed = events.flatMap((event) =>
        event.type === 'results' && event.batchId === batch.id ? event.rows : [],
      );
      expect(new Set(pushed.map((row) => row.index)).size).toBe(1204);

      const page = await ui.call('getResults', { batchId: batch.id, offset: 1200, limit: 10 });
      expect(page).toMatchObject({ matching: 1204, total: 1204 });
      expect(page.rows).toHaveLength(4);
      const failed = await ui.call('getResults', {
        batchId: batch.id,
        offset: 0,
        limit: 10,
        status: 'failed',
      });
      expect(failed.rows.map((row) => row.index).sort((a, b) => a - b)).toEqual([7, 300]);
      expect(failed.rows[0]?.error).toMatch(/^bad row /);
      const search = await ui.call('getResults', {
        batchId: batch.id,
        offset: 0,
        limit: 10,
        search: 'ITEM1203',
      });
      expect(search.rows.map((row) => row.index)).toEqual([1203]);

      const job = await ui.call('getJob', { batchId: batch.id, index: 300 });
      expect(job.status).toBe('failed');
      expect(job.error?.stack).toContain('bad row 300');
      expect(JSON.parse(job.input)).toEqual({ name: 'bad', qty: '300' });

      const exported = await ui.call('exportResults', { batchId: batch.id, format: 'csv' });
      const lines = exported.content.trim().split('\n');
      expect(lines[0]).toBe(
        'index,status,input,value,error_code,error_message,node,attempts,started_at,ended_at,stdout,stderr',
      );
      expect(lines).toHaveLength(1205);
      expect(lines[1]).toMatch(/^0,done,"\{""name"":""item0"",""qty"":""0""\}",0,/);
      expect(readFileSync(exported.path ?? '', 'utf8')).toBe(exported.content);
      const jsonl = await ui.call('exportResults', { batchId: batch.id, format: 'jsonl' });
      const parsed = jsonl.content
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { index: number });
      expect(parsed.map((line) => line.index)).toEqual(Array.from({ length: 1204 }, (_, n) => n));

      const retry = await ui.call('retryFailed', { batchId: batch.id });
      expect(retry.batch.retryOf).toBe(batch.id);
      const retried = await batchIn(ui, retry.batch.id, 'ended');
      // The same two rows fail again: the script has not changed.
      expect(retried).toMatchObject({ total: 2, failed: 2, done: 0 });
    } finally {
      ui.close();
    }
  });

  it(
    'sorts results by index or in finish order, and charts the throughput of a short batch',
    { timeout: 60_000 },
    async () => {
      const ui = service();
      try {
        const script = await uploadFile(ui, 'script', 'late-first.mjs', LATE_FIRST);
        const dataset = await uploadFile(ui, 'dataset', 'numbers.txt', numbers(20));
        const { batch } = await ui.call('startBatch', { script, dataset, options: {} });
        const ended = await batchIn(ui, batch.id, 'ended');
        const indices = async (order?: 'index' | 'finished') =>
          (
            await ui.call('getResults', {
              batchId: batch.id,
              offset: 0,
              limit: 100,
              ...(order ? { order } : {}),
            })
          ).rows.map((row) => row.index);
        const byIndex = Array.from({ length: 20 }, (_, n) => n);
        expect(await indices('index')).toEqual(byIndex);
        const finished = await indices();
        expect(finished.indexOf(0)).toBeGreaterThan(0);
        expect([...finished].sort((a, b) => a - b)).toEqual(byIndex);
        expect(await indices('finished')).toEqual(finished);
        // Pages follow the order asked for.
        const page = await ui.call('getResults', { batchId: batch.id, offset: 5, limit: 3, order: 'index' });
        expect(page.rows.map((row) => row.index)).toEqual([5, 6, 7]);

        // However short the batch, its chart has a line from start to end.
        expect(ended.throughput.length).toBeGreaterThanOrEqual(2);
        expect(ended.throughput[0]?.at).toBeLessThanOrEqual(1);
        const seconds = ((ended.endedAt ?? 0) - ended.startedAt) / 1000;
        expect(ended.throughput.at(-1)?.at).toBeCloseTo(seconds, 0);
        expect(Math.max(...ended.throughput.map((sample) => sample.rate))).toBeGreaterThan(0);
      } finally {
        ui.close();
        rmSync(LAST_MARK, { force: true });
      }
    },
  );

  it('cancels a running batch, and says why a script cannot run', { timeout: 60_000 }, async () => {
    const ui = service();
    try {
      const slow = await uploadFile(
        ui,
        'script',
        'slow.mjs',
        'export default async (n) => { await new Promise((r) => setTimeout(r, 200)); return n; };\n',
      );
      const dataset = await uploadFile(ui, 'dataset', 'numbers.txt', numbers(200));
      const { batch } = await ui.call('startBatch', { script: slow, dataset, options: {} });
      // Once jobs run (a batch cancelled before it read its dataset has nothing to cancel).
      await until('a first result', async () => {
        const { total } = await ui.call('getResults', { batchId: batch.id, offset: 0, limit: 1 });
        return total > 0 ? total : undefined;
      });
      await ui.call('cancelBatch', { batchId: batch.id });
      const ended = await batchIn(ui, batch.id, 'ended');
      expect(ended.cancelled).toBeGreaterThan(0);
      expect(ended.done).toBeLessThan(200);

      const broken = await uploadFile(ui, 'script', 'broken.mjs', 'export default (;\n');
      await expect(ui.call('startBatch', { script: broken, dataset, options: {} })).rejects.toMatchObject({
        message: expect.stringContaining('broken.mjs'),
      });
      // Requirements no node meets are said in words.
      const quick = await uploadFile(ui, 'script', 'quick.mjs', 'export default (n) => n;\n');
      const unmet = await ui
        .call('startBatch', {
          script: quick,
          dataset,
          options: { requires: { os: ['win32'], runtimes: ['python3'] } },
        })
        .then(
          (answer) =>
            until('the batch to fail', async () => {
              const { batches } = await ui.call('getBatches', {});
              const found = batches.find((candidate) => candidate.id === answer.batch.id);
              return found?.state === 'failed' ? found.error : undefined;
            }),
          (error: unknown) => (error as Error).message,
        );
      expect(unmet).toMatch(/no node meets/);
      const notAScript = await uploadFile(ui, 'script', 'notes.xyz', 'just text\n');
      await expect(
        ui.call('previewBatch', { script: notAScript, dataset, options: {} }),
      ).rejects.toMatchObject({
        code: 'DG_ERR_NOT_EXECUTABLE',
      });
    } finally {
      ui.close();
    }
  });

  it(
    "keeps a batch's error code end to end: in the answer to startBatch and in the batch listed",
    { timeout: 60_000 },
    async () => {
      const ui = service();
      try {
        const few = await uploadFile(ui, 'dataset', 'few.txt', numbers(3));
        // A module that throws as it loads: the preparation's own code, not DG_ERR_USAGE.
        const throwing = await uploadFile(
          ui,
          'script',
          'unlicensed.mjs',
          "throw new Error('no licence file');\nexport default (n) => n;\n",
        );
        const refused: unknown = await ui
          .call('startBatch', { script: throwing, dataset: few, options: {} })
          .then(
            () => 'started',
            (error: unknown) => error,
          );
        expect(refused).toMatchObject({
          code: 'DG_ERR_MODULE_LOAD',
          message: expect.stringContaining('no licence file'),
        });
        const notLoaded = await until('the batch that did not load to be listed as failed', async () =>
          (await ui.call('getBatches', {})).batches.find(
            (batch) => batch.title === 'unlicensed.mjs over few.txt' && batch.state === 'failed',
          ),
        );
        expect(notLoaded).toMatchObject({
          errorCode: 'DG_ERR_MODULE_LOAD',
          error: (refused as Error).message,
        });

        // A dataset that breaks after jobs started: the batch fails with the dataset's code.
        const quick = await uploadFile(ui, 'script', 'quick.mjs', 'export default (n) => n;\n');
        const lines = Array.from({ length: 40 }, (_, n) => JSON.stringify({ n }));
        lines.splice(30, 0, '{"n": oops');
        const broken = await uploadFile(ui, 'dataset', 'broken.jsonl', `${lines.join('\n')}\n`);
        const { batch } = await ui.call('startBatch', { script: quick, dataset: broken, options: {} });
        const stopped = await batchIn(ui, batch.id, 'failed');
        expect(stopped).toMatchObject({
          errorCode: 'DG_ERR_DATASET',
          error: expect.stringContaining('line 31 is not valid JSON'),
        });

        // Requirements no node meets.
        const unmet = await ui.call('startBatch', {
          script: quick,
          dataset: few,
          options: { requires: { os: ['win32'] } },
        });
        expect(await batchIn(ui, unmet.batch.id, 'failed')).toMatchObject({
          errorCode: 'DG_ERR_NO_NODE',
          error: expect.stringMatching(/no node meets/),
        });
        // A batch that ends well has neither.
        const fine = await ui.call('startBatch', { script: quick, dataset: few, options: {} });
        // Answered once prepared: running, its results folder made.
        expect(fine.batch).toMatchObject({ state: 'running', out: expect.any(String) });
        expect(await batchIn(ui, fine.batch.id, 'ended')).toMatchObject({ error: null, errorCode: null });
      } finally {
        ui.close();
      }
    },
  );

  it('shows and changes the settings: sharing at once, peers and a join code for the next start', async () => {
    const ui = service();
    try {
      const before = await ui.call('getSettings', {});
      expect(before).toMatchObject({
        cores: 2,
        accepting: true,
        peers: [],
        dataFolder: shared.home,
        joinCode: null,
      });
      const { joinCode } = await ui.call('createJoinCode', {});
      const after = await ui.call('setSettings', {
        cores: 1,
        accepting: false,
        // Without a port, the node port is meant: saved with it, as the node reads it at start.
        peers: ['10.0.0.5:7717', 'office-pc', '[fe80::2]'],
        joinCode,
      });
      expect(after).toMatchObject({
        cores: 1,
        accepting: false,
        peers: ['10.0.0.5:7717', 'office-pc:7717', '[fe80::2]:7717'],
      });
      expect(shared.cluster.sharing()).toEqual({ cores: 1, accepting: false });
      // No code ran before: the saved one is what this node would now start with.
      expect(after.joinCode).toBe(joinCode);
      await expect(ui.call('setSettings', { peers: ['not a peer'] })).rejects.toMatchObject({
        code: 'DG_ERR_USAGE',
        message: expect.stringMatching(
          /^invalid peer "not a peer": .*use HOST, HOST:PORT or NODE-ID@HOST:PORT/,
        ),
      });
      expect((await ui.call('getSettings', {})).peers).toHaveLength(3);
      await ui.call('setSettings', { cores: 2, accepting: true });
      expect(shared.cluster.sharing()).toEqual({ cores: 2, accepting: true });
    } finally {
      ui.close();
    }
  });

  it("runs the engine's doctor for any window (the desktop app passes nothing for it)", async () => {
    // As the app builds it: the cluster, the data folder and the join code it runs with.
    const parsed = parseJoinCode(generateJoinCode());
    if (!parsed.ok) throw new Error(parsed.reason);
    const code = parsed.code;
    const ui = new UiService({ cluster: shared.cluster, home: shared.home, joinCode: code });
    try {
      const { findings } = await ui.call('runDoctor', {});
      expect(findings).toContainEqual({
        ok: true,
        text: `join code set (from the code this node runs with); cluster id ${clusterId(code)}`,
        advice: null,
      });
      // Tests keep mDNS off the real network: the doctor sees that and says what to do instead.
      expect(findings).toContainEqual({
        ok: false,
        text: 'LAN discovery is turned off (DESKGRID_DISCOVERY=off): no node can be found on the LAN',
        advice: 'unset DESKGRID_DISCOVERY, or add nodes by address with --peer HOST:PORT',
      });
      expect(findings[0]?.text).toMatch(/LAN interface/);
    } finally {
      ui.close();
    }
  });

  it(
    "does not resume a batch whose folder another process holds, and leaves that batch's marker alone",
    { timeout: 60_000 },
    async () => {
      const first = service();
      const second = service();
      try {
        const slow = await uploadFile(
          first,
          'script',
          'slow.mjs',
          'export default async (n) => { await new Promise((r) => setTimeout(r, 50)); return Number(n); };\n',
        );
        const dataset = await uploadFile(
          first,
          'dataset',
          'numbers.txt',
          Array.from({ length: 40 }, (_, n) => n).join('\n'),
        );
        const { batch } = await first.call('startBatch', { script: slow, dataset, options: {} });
        const out = batch.out ?? '';
        await until('a first result', async () => {
          const { total } = await first.call('getResults', { batchId: batch.id, offset: 0, limit: 1 });
          return total > 0 ? total : undefined;
        });
        // As the app beside `deskgrid node --ui` would at its start: the batch looks unfinished.
        expect(second.resumeUnfinished()).toBe(1);
        const refused = await until('the resume to be refused', async () => {
          const { batches } = await second.call('getBatches', {});
          return batches.find((candidate) => candidate.state === 'failed');
        });
        expect(refused.error).toMatch(
          new RegExp(
            `^the results folder ${out} is in use by another DeskGrid process \\(pid ${process.pid} on `,
          ),
        );
        const ended = await until('the first batch to end', async () => {
          const { batches } = await first.call('getBatches', {});
          const found = batches.find((candidate) => candidate.id === batch.id);
          return found?.state === 'ended' ? found : undefined;
        });
        expect(ended.done).toBe(40);
        const indices = readFileSync(`${out}/results.jsonl`, 'utf8')
          .trim()
          .split('\n')
          .map((line) => (JSON.parse(line) as { index: number }).index)
          .sort((a, b) => a - b);
        expect(indices).toEqual([...Array(40).keys()]);
        // The marker was the first batch's to remove, once it ended.
        await until('the marker to go', () => !existsSync(`${out}/deskgrid-ui-unfinished.json`) || undefined);
      } finally {
        first.close();
        second.close();
      }
    },
  );
});
