// What a node or app keeps in its data folder stays within bounds, on real caches filled by real
// work: a node served on 127.0.0.1 (real TLS) caches the bundle and the input files a submitter
// sends; a local cluster's UI keeps uploads and compiled TypeScript. Filled past their bounds and
// aged (by file times), they are pruned least recently used first, and what a running batch or a
// connected submitter uses survives both the pruning and the owner's clear in Settings.

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { dataPaths } from '../../main/engine/paths.js';
import { shippableBytes } from '../../main/engine/remote/shippable.js';
import { UiService } from '../../main/engine/ui/ui-service.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { fixture } from '../support/engine-cluster.js';
import { batchIn, uploadFile } from '../support/ui-calls.js';
import { until } from '../support/until.js';

const KB = 1024;
const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

let work = '';
beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-storage-')));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Sets the last use of a cache entry (a file or folder) to `ago` ms before now. */
function age(path: string, ago: number): void {
  const when = new Date(Date.now() - ago);
  utimesSync(path, when, when);
}

/** The same for a folder and everything in it. */
function ageTree(path: string, ago: number): void {
  for (const entry of readdirSync(path, { recursive: true, encoding: 'utf8' })) age(join(path, entry), ago);
  age(path, ago);
}

function folderOf(path: string, kb: number, ago: number): void {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'entry.mjs'), Buffer.alloc(kb * KB));
  age(join(path, 'entry.mjs'), ago);
  age(path, ago);
}

const names = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

describe('the data folder within bounds', () => {
  it(
    "prunes a node's bundles and input files past their bounds and keeps the bundle a submitter uses",
    { timeout: 120_000 },
    async () => {
      const code = generateJoinCode();
      const node = await Cluster.start({
        home: join(work, 'node'),
        cores: 1,
        secret: code,
        serve: { host: '127.0.0.1', port: 0 },
        storageLimits: { files: { megabytes: 1 }, bundles: { megabytes: 1 } },
      });
      const address = node.address;
      if (address === null) throw new Error('the node does not serve');
      const submitter = await Cluster.start({
        home: join(work, 'submitter'),
        local: false,
        secret: code,
        peers: [`${address.host}:${address.port}`],
      });
      const ui = new UiService({ cluster: node, home: join(work, 'node') });
      try {
        const dataset = join(work, 'inputs');
        mkdirSync(dataset);
        // Three different files of 400 KB: 1.2 MB in the node's file cache, past its 1 MB.
        for (const n of [0, 1, 2]) writeFileSync(join(dataset, `f${n}.txt`), Buffer.alloc(400 * KB, 65 + n));
        const batch = submitter.submit({ computation: fixture('read-file.mjs'), dataset, split: 'files' });
        const summary = await batch.done;
        expect(summary.done).toBe(3);
        // The submitter held the bundle's bytes for the node only while the batch ran.
        expect(await shippableBytes()).toBe(0);

        const { bundles, files } = dataPaths(join(work, 'node'));
        const [shipped] = names(bundles);
        if (shipped === undefined) throw new Error('the node cached no bundle');
        const cachedFiles = names(files);
        expect(cachedFiles).toHaveLength(3);
        // The submitter is still connected with that computation loaded: its bundle is in use,
        // however old. Around it, bundles nobody uses any more.
        ageTree(join(bundles, shipped), 50 * DAY_MS);
        folderOf(join(bundles, 'stale-40-days'), 10, 40 * DAY_MS);
        folderOf(join(bundles, 'old-2-days'), 600, 2 * DAY_MS);
        folderOf(join(bundles, 'old-1-day'), 600, DAY_MS);
        const [oldest, older, recent] = cachedFiles as [string, string, string];
        age(join(files, oldest), 3 * HOUR_MS);
        age(join(files, older), 2 * HOUR_MS);
        // Used 5 minutes ago: within the grace period, whatever the bounds.
        age(join(files, recent), 5 * 60 * 1000);

        const freed = await node.storage.prune();
        // Bundles: the stale one is past 30 days; then the least recently used unused one goes
        // until 1 MB is enough. The bundle in use stays, though it is the oldest.
        expect(names(bundles)).toEqual([shipped, 'old-1-day'].sort());
        // Files: the least recently used goes, and 800 KB fit.
        expect(names(files)).toEqual([older, recent].sort());
        expect(freed.bundles).toBe(610 * KB);
        expect(freed.files).toBe(400 * KB);

        // The owner's view in Settings: what is kept, and the bounds.
        const before = await ui.call('getStorage', {});
        const part = (view: typeof before, name: string) => view.parts.find((found) => found.name === name);
        expect(part(before, 'bundles')).toMatchObject({
          entries: 2,
          inUseEntries: 1,
          maxBytes: 1024 * KB,
          maxAgeDays: 30,
        });
        expect(part(before, 'files')).toMatchObject({ entries: 2, bytes: 800 * KB, clearable: true });
        expect(part(before, 'kept')).toMatchObject({ entries: 0, bytes: 0, clearable: false, maxAgeDays: 7 });
        expect(part(before, 'uploads')).toMatchObject({ entries: 0, clearable: true });

        // Clearing removes everything not in use and not used in the last minutes.
        const cleared = await ui.call('clearStorage', { parts: ['bundles', 'files'] });
        expect(names(bundles)).toEqual([shipped]);
        expect(names(files)).toEqual([recent]);
        expect(cleared.freedBytes).toBe(1000 * KB);
        expect(part(cleared.storage, 'bundles')).toMatchObject({ entries: 1, inUseEntries: 1 });
        await expect(ui.handle('clearStorage', { parts: ['kept'] })).rejects.toMatchObject({
          code: 'DG_ERR_USAGE',
        });

        // Once the submitter has gone, its bundle is no longer in use: a clear removes it.
        await submitter.close();
        await until(
          async () =>
            (await ui.call('getStorage', {})).parts.find((p) => p.name === 'bundles')?.inUseEntries === 0
              ? true
              : undefined,
          'the node to notice the submitter left',
          30_000,
        );
        await ui.call('clearStorage', { parts: ['bundles'] });
        expect(names(bundles)).toEqual([]);
      } finally {
        ui.close();
        await submitter.destroy();
        await node.destroy();
      }
    },
  );

  it(
    "keeps the uploads and compiled TypeScript of a running batch, and prunes the app's others",
    { timeout: 120_000 },
    async () => {
      const home = join(work, 'app');
      const cluster = await Cluster.start({
        home,
        cores: 1,
        storageLimits: { uploads: { days: 7 }, computations: { days: 30 } },
      });
      const ui = new UiService({ cluster, home });
      const gate = join(work, 'gate');
      try {
        // A TypeScript job that waits (at most a minute) for the test to open its gate.
        const waiting = await uploadFile(
          ui,
          'script',
          'wait.ts',
          `import { existsSync } from 'node:fs';
export default async (): Promise<string> => {
  for (let n = 0; n < 3000 && !existsSync(${JSON.stringify(gate)}); n += 1) await new Promise((r) => setTimeout(r, 20));
  return 'released';
};
`,
        );
        const forgotten = await uploadFile(ui, 'script', 'old.mjs', 'export default () => 1;\n');
        const { batch } = await ui.call('startBatch', { script: waiting, dataset: null, options: {} });
        await batchIn(ui, batch.id, 'running');
        const uploadsDir = join(home, 'uploads');
        const { computationCache } = dataPaths(home);
        const compiled = names(computationCache);
        expect(compiled).toHaveLength(1);
        // Everything looks long unused: the running batch's upload and compiled module too.
        for (const id of names(uploadsDir))
          age(join(uploadsDir, id, id === waiting.uploadId ? 'wait.ts' : 'old.mjs'), 8 * DAY_MS);
        for (const id of names(uploadsDir)) age(join(uploadsDir, id), 8 * DAY_MS);
        age(join(computationCache, compiled[0] ?? ''), 40 * DAY_MS);
        writeFileSync(join(computationCache, 'stale.mjs'), 'export default () => 0;\n');
        age(join(computationCache, 'stale.mjs'), 40 * DAY_MS);
        // What submitters sent belongs to the node that serves this data folder, not to this
        // cluster (it serves nobody): it cannot tell what is in use there, so it leaves it.
        const { bundles } = dataPaths(home);
        folderOf(join(bundles, 'a-node-s-bundle'), 10, 40 * DAY_MS);

        await cluster.storage.prune();
        expect(names(uploadsDir)).toEqual([waiting.uploadId]);
        expect(names(computationCache)).toEqual(compiled);
        expect(names(bundles)).toEqual(['a-node-s-bundle']);
        // The pruned upload is forgotten by the UI too: it says so instead of failing later.
        await expect(
          ui.call('startBatch', { script: forgotten, dataset: null, options: {} }),
        ).rejects.toMatchObject({
          code: 'DG_ERR_NOT_FOUND',
        });

        writeFileSync(gate, '');
        await batchIn(ui, batch.id, 'ended');
        // Ended: nothing holds them any more.
        await cluster.storage.prune();
        expect(names(uploadsDir)).toEqual([]);
        expect(names(computationCache)).toEqual([]);
      } finally {
        ui.close();
        await cluster.destroy();
      }
    },
  );

  it('keeps the latest 100 warnings of a cluster', { timeout: 60_000 }, async () => {
    // A port nobody listens on: each of 130 loopback addresses refuses at once, a warning each.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const peers = Array.from({ length: 130 }, (_, n) => `127.0.0.${n + 1}:${port}`);
    const cluster = await Cluster.start({
      home: join(work, 'warned'),
      cores: 1,
      secret: generateJoinCode(),
      peers,
    });
    try {
      expect(cluster.warnings).toHaveLength(100);
      expect(cluster.warnings[0]).toContain(`127.0.0.31:${port}`);
      expect(cluster.warnings.at(-1)).toContain(`127.0.0.130:${port}`);
    } finally {
      await cluster.destroy();
    }
  });
});
