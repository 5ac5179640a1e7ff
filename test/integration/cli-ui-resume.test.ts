// The app or `deskgrid node --ui` killed while a batch it started runs (a crash, the machine
// switched off): started again, it resumes that batch by itself, and every job ends with exactly
// one result. Driven through the UI's HTTP API, as the browser does, on 127.0.0.1.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateJoinCode } from '../../shared/join-code.js';
import { startCli, splitLines, type RunningCli } from '../support/run-cli.js';
import { useTempFolder } from '../support/temp-folder.js';
import { until } from '../support/until.js';

const CODE = generateJoinCode();
const JOBS = 30;
const tmp = useTempFolder();

type Api = <T>(name: string, input: unknown) => Promise<T>;

/** Starts `deskgrid node --ui` and returns a caller of its API. */
async function startUiNode(home: string): Promise<{ node: RunningCli; api: Api }> {
  const node = startCli(['node', '--ui', '--port', '0', '--no-discovery', '--cores', '1', '--secret', CODE], {
    home,
    timeLimitMs: 60_000,
  });
  const url = await until(() => /UI: open (\S+)/.exec(node.stdoutSoFar())?.[1], 'the UI address');
  const { origin, searchParams } = new URL(url);
  const token = searchParams.get('token') ?? '';
  const api = async <T>(name: string, input: unknown): Promise<T> => {
    const response = await fetch(`${origin}/api/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-deskgrid-token': token },
      body: JSON.stringify(input),
    });
    const body: unknown = await response.json();
    if (!response.ok) throw new Error(`${name}: ${response.status} ${JSON.stringify(body)}`);
    return body as T;
  };
  return { node, api };
}

async function upload(api: Api, role: string, name: string, text: string) {
  const bytes = Buffer.byteLength(text);
  const { uploadId } = await api<{ uploadId: string }>('beginUpload', {
    role,
    name,
    kind: 'file',
    bytes,
    files: 1,
  });
  await api('uploadChunk', { uploadId, path: name, offset: 0, data: Buffer.from(text).toString('base64') });
  return { type: 'upload', uploadId };
}

describe('a UI node killed mid-batch', () => {
  it(
    'resumes the batch by itself when it starts again; every job ends once',
    { timeout: 90_000 },
    async () => {
      const home = join(tmp.root, 'home');
      const first = await startUiNode(home);
      const script = await upload(
        first.api,
        'script',
        'triple.mjs',
        'export default async (n) => { await new Promise((r) => setTimeout(r, 150)); return Number(n) * 3; };\n',
      );
      const dataset = await upload(
        first.api,
        'dataset',
        'numbers.txt',
        Array.from({ length: JOBS }, (_, n) => n).join('\n'),
      );
      const { batch } = await first.api<{ batch: { id: string } }>('startBatch', {
        script,
        dataset,
        options: {},
      });
      await until(async () => {
        const { total } = await first.api<{ total: number }>('getResults', {
          batchId: batch.id,
          offset: 0,
          limit: 1,
        });
        return total >= 3 ? total : undefined;
      }, 'some results');
      process.kill(-first.node.pid, 'SIGKILL');
      await first.node.result.catch(() => undefined);

      const runs = join(home, 'runs');
      const [folder] = readdirSync(runs);
      if (folder === undefined) throw new Error('no results folder');
      const out = join(runs, folder);
      expect(existsSync(join(out, 'deskgrid-ui-unfinished.json'))).toBe(true);
      const before = splitLines(readFileSync(join(out, 'results.jsonl'), 'utf8')).length;
      expect(before).toBeLessThan(JOBS);

      const second = await startUiNode(home);
      try {
        expect(second.node.stdoutSoFar()).toContain('resuming 1 batch(es)');
        const resumed = await until(async () => {
          const { batches } = await second.api<{
            batches: Array<{ state: string; done: number; out: string | null }>;
          }>('getBatches', {});
          const found = batches.find((candidate) => candidate.out === out);
          return found?.state === 'ended' ? found : undefined;
        }, 'the resumed batch to end');
        expect(resumed.done).toBe(JOBS);
        const lines = splitLines(readFileSync(join(out, 'results.jsonl'), 'utf8')).map(
          (line) => JSON.parse(line) as { index: number; value: number; status: string },
        );
        expect(lines.map((line) => line.index).sort((a, b) => a - b)).toEqual([...Array(JOBS).keys()]);
        expect(lines.every((line) => line.status === 'done' && line.value === line.index * 3)).toBe(true);
        await until(() => !existsSync(join(out, 'deskgrid-ui-unfinished.json')), 'the marker to go');
      } finally {
        process.kill(-second.node.pid, 'SIGKILL');
        await second.node.result.catch(() => undefined);
      }
    },
  );
});
