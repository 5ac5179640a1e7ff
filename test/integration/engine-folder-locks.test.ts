// Through the Node API: a results folder is written by one batch at a time (submit({ out }) and
// resume(dir) into a folder another batch holds are refused with DG_ERR_LOCKED naming the
// holder, and the holder's batch is untouched), and a data folder serves one node at a time.

import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { byIndex, collect, fixture, useCluster } from '../support/engine-cluster.js';
import { until } from '../support/until.js';

const shared = useCluster('folder-locks');
let work = '';
beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-folder-locks-')));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a results folder', () => {
  it(
    'is refused to a second batch while one writes it, then free once it ended',
    { timeout: 60_000 },
    async () => {
      const out = join(work, 'out');
      const first = shared.cluster.submit({
        computation: fixture('sleep.mjs'),
        inputs: [300, 300, 300, 300],
        out,
      });
      const results = collect(first);
      await until(() => existsSync(join(out, 'batch.lock')), 'the first batch to take its folder');
      const holder = new RegExp(
        `^the results folder ${out} is in use by another DeskGrid process \\(pid ${process.pid} on ${hostname()} since `,
      );
      const again = shared.cluster.submit({ computation: fixture('sleep.mjs'), inputs: [1], out });
      await expect(again.done).rejects.toMatchObject({
        code: 'DG_ERR_LOCKED',
        message: expect.stringMatching(holder),
      });

      expect(await first.done).toMatchObject({ total: 4, done: 4, ok: true });
      expect(byIndex(results).map((result) => result.value)).toEqual([300, 300, 300, 300]);
      // Ended: the folder can be taken again (its inputs came from a program, so it says so).
      await expect(shared.cluster.resume(out).done).rejects.toMatchObject({ code: 'DG_ERR_RESUME' });
    },
  );

  it('is refused to resume(dir) while its batch runs', { timeout: 60_000 }, async () => {
    const out = join(work, 'ranged');
    const first = shared.cluster.submit({ computation: fixture('sleep.mjs'), range: '200:208', out });
    await until(() => existsSync(join(out, 'batch.lock')), 'the batch to take its folder');
    await expect(shared.cluster.resume(out).done).rejects.toMatchObject({
      code: 'DG_ERR_LOCKED',
      message: expect.stringContaining(`pid ${process.pid} on ${hostname()}`),
    });
    const summary = await first.done;
    expect(summary).toMatchObject({ total: 8, done: 8, ok: true });
  });
});

describe('a data folder', () => {
  it('serves one node at a time; a submitting cluster on it is allowed', { timeout: 60_000 }, async () => {
    const home = join(work, 'node-home');
    const secret = generateJoinCode();
    const serving = { home, cores: 1, secret, serve: { host: '127.0.0.1', port: 0 } };
    const first = await Cluster.start(serving);
    try {
      await expect(Cluster.start(serving)).rejects.toMatchObject({
        code: 'DG_ERR_LOCKED',
        message: expect.stringMatching(
          new RegExp(
            `^the data folder ${home} is in use by another DeskGrid node \\(pid ${process.pid} on ${hostname()} since `,
          ),
        ),
      });
      const submitter = await Cluster.start({ home, cores: 1 });
      await submitter.close();
    } finally {
      await first.close();
    }
    const next = await Cluster.start(serving);
    await next.destroy();
  });
});
