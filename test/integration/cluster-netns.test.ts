// A cluster across a private LAN of network namespaces (test/support/netns.ts): `deskgrid node`
// runs on two hosts, `deskgrid run --peer ... --no-local` on a third sends every job to them over
// TLS. Results are complete and equal a local run's; both nodes take part; a node with another
// join code is refused; an unreachable peer is warned about and the others carry the batch; a
// Python program over a folder of files gets the files (shipped by hash) and its output files
// come back. Skipped (with the reason printed) where namespaces cannot be created.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, NODE_PORT as PORT, type LanNode } from '../support/lan-nodes.js';
import { netnsUnavailableReason, type Lan, type LanExecResult, type LanHost } from '../support/netns.js';
import { CLI_ENTRY, REPO_ROOT, readJsonLines, runCli, splitLines } from '../support/run-cli.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] cluster tests across namespaces skipped: ${reason}`);

const CODE = generateJoinCode();
const OTHER_CODE = generateJoinCode();

/** Each job sleeps ~5 ms, so that the jobs spread over every core of both nodes. */
const SLEEPY_MODULE = `export default async (n) => {
  await new Promise((resolve) => setTimeout(resolve, 5));
  return { n, square: n * n };
};
`;

/** Counts the words of its input file and leaves a summary in its output folder. */
const WORD_COUNT_PROGRAM = `import json, os, sys

path = sys.argv[-1]
with open(path, encoding="utf-8") as f:
    text = f.read()
name = os.path.basename(path)
words = len(text.split())
with open(os.path.join(os.environ["DESKGRID_OUTPUT_DIR"], "summary.txt"), "w", encoding="utf-8") as f:
    f.write(f"{name}: {words}\\n")
print(json.dumps({"name": name, "words": words, "absolute": os.path.isabs(path)}))
`;

const grid = new LanNodes({ discovery: false });
const theLan = (): Lan => grid.theLan();
const host = (k: number): LanHost => grid.host(k);

/** Starts `deskgrid node` (two cores) on a host and waits (bounded) until it listens. */
async function startNode(on: LanHost, code: string): Promise<LanNode> {
  const node = await grid.startNode(on, { code, cores: 2 });
  expect(node.stdout()).toContain(`listening on ${on.address}:${PORT}`);
  return node;
}

/** Runs `deskgrid ...args` on a host with its own data folder. */
function deskgridOn(on: LanHost, args: string[], timeoutMs = 60_000): Promise<LanExecResult> {
  return theLan().exec(on, process.execPath, [CLI_ENTRY, ...args], {
    env: grid.environment(grid.homeOf(`submitter-${on.name}`)),
    cwd: REPO_ROOT,
    timeoutMs,
  });
}

function details(run: { code: number | null; stdout: string; stderr: string }): string {
  const nodeLogs = grid.nodes
    .map((node) => `--- node ${node.host.name}\n${node.stdout()}\n${node.stderr()}`)
    .join('\n');
  return `exit ${run.code}\nstdout:\n${run.stdout.slice(0, 4000)}\nstderr:\n${run.stderr}\n${nodeLogs}`;
}

function resultsOf(stdout: string): JobResult[] {
  return splitLines(stdout).map((line) => JSON.parse(line) as JobResult);
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function listing(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe.skipIf(reason !== null)('a cluster across network namespaces', () => {
  let nodeA: LanNode;
  let nodeB: LanNode;

  beforeAll(async () => {
    await grid.open(3, 'cluster-netns');
    [nodeA, nodeB] = await Promise.all([startNode(host(2), CODE), startNode(host(3), CODE)]);
    expect(nodeA.id).not.toBe(nodeB.id);
  }, 60_000);

  afterAll(async () => {
    await grid.close();
  });

  it('runs 200 jobs on the two nodes only, with the values of a local run', { timeout: 90_000 }, async () => {
    const module = join(grid.work, 'sleepy.mjs');
    writeFileSync(module, SLEEPY_MODULE);
    const out = join(grid.work, 'remote-out');
    const run = await deskgridOn(host(1), [
      'run',
      module,
      '--range',
      '0:200',
      '--peer',
      `${host(2).address}:${PORT}`,
      '--peer',
      `${host(3).address}:${PORT}`,
      '--secret',
      CODE,
      '--no-local',
      '--out',
      out,
      '--json',
    ]);
    expect(run.timedOut, details(run)).toBe(false);
    expect(run.code, details(run)).toBe(0);
    expect(run.stderr, details(run)).toMatch(/200 jobs: 200 done/);
    const results = resultsOf(run.stdout);
    expect(results).toHaveLength(200);
    expect(results.map((result) => result.index).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 200 }, (_, n) => n),
    );
    for (const result of results) expect(result.status, JSON.stringify(result)).toBe('done');
    // Every job ran on one of the two nodes, and both took part.
    const ran = new Set(results.map((result) => result.node));
    expect([...ran].sort()).toEqual([nodeA.id, nodeB.id].sort());
    // The results file says the same as stdout.
    expect(readJsonLines(join(out, 'results.jsonl'))).toHaveLength(200);

    const localHome = join(grid.work, 'local-home');
    const local = await runCli(
      ['run', module, '--range', '0:200', '--json', '--out', join(grid.work, 'local-out')],
      { home: localHome, timeLimitMs: 60_000 },
    );
    expect(local.code, details(local)).toBe(0);
    const valueAt = (list: JobResult[]) =>
      Object.fromEntries(list.map((result) => [result.index, result.value]));
    expect(valueAt(results)).toEqual(valueAt(resultsOf(local.stdout)));
  });

  it(
    'refuses a node of another cluster, and gets by without an unreachable peer',
    { timeout: 90_000 },
    async () => {
      const outsider = await theLan().addHost();
      const stranger = await startNode(outsider, OTHER_CODE);
      expect(stranger.id).not.toBe(nodeA.id);
      const module = join(grid.work, 'sleepy.mjs');
      writeFileSync(module, SLEEPY_MODULE);

      const refused = await deskgridOn(host(1), [
        'run',
        module,
        '--range',
        '0:10',
        '--peer',
        `${outsider.address}:${PORT}`,
        '--secret',
        CODE,
        '--no-local',
        '--out',
        join(grid.work, 'refused-out'),
      ]);
      expect(refused.timedOut, details(refused)).toBe(false);
      // A failure to fix, not a usage mistake: exit 1.
      expect(refused.code, details(refused)).toBe(1);
      expect(refused.stderr, details(refused)).toContain('wrong join code');
      expect(refused.stderr).toContain(`${outsider.address}:${PORT}`);
      // One line, not a stack trace (besides the warning that --secret shows the code).
      const errors = splitLines(refused.stderr).filter(
        (line) => line.startsWith('deskgrid: ') && !line.startsWith('deskgrid: warning:'),
      );
      expect(errors).toHaveLength(1);

      // Among good peers a wrong join code is still an error, not a node to do without.
      const mixed = await deskgridOn(host(1), [
        'run',
        module,
        '--range',
        '0:10',
        '--peer',
        `${host(2).address}:${PORT}`,
        '--peer',
        `${outsider.address}:${PORT}`,
        '--secret',
        CODE,
        '--no-local',
        '--out',
        join(grid.work, 'mixed-out'),
      ]);
      expect(mixed.code, details(mixed)).toBe(1);
      expect(mixed.stderr, details(mixed)).toContain('wrong join code');

      // The outsider's node is killed: its address no longer answers.
      await theLan().killAll(outsider);
      const run = await deskgridOn(host(1), [
        'run',
        module,
        '--range',
        '0:30',
        '--peer',
        `${outsider.address}:${PORT}`,
        '--peer',
        `${host(2).address}:${PORT}`,
        '--secret',
        CODE,
        '--no-local',
        '--out',
        join(grid.work, 'unreachable-out'),
        '--json',
      ]);
      // Ended on its own, well within deskgridOn's limit: the dead address held nothing up. (No
      // bound in seconds of its own: a loaded machine makes every run slower.)
      expect(run.timedOut, details(run)).toBe(false);
      expect(run.code, details(run)).toBe(0);
      expect(run.stderr, details(run)).toMatch(/warning: .*cannot use/);
      expect(run.stderr).toContain(`${outsider.address}:${PORT}`);
      const results = resultsOf(run.stdout);
      expect(results).toHaveLength(30);
      for (const result of results) {
        expect(result.status).toBe('done');
        // Node B is not named, but this submitter used it before and remembers it.
        expect([nodeA.id, nodeB.id]).toContain(result.node);
      }
    },
  );

  it(
    'ships a Python program and a folder of files to the nodes, and brings output files back',
    { timeout: 90_000 },
    async () => {
      const program = join(grid.work, 'words', 'count.py');
      mkdirSync(join(grid.work, 'words'), { recursive: true });
      writeFileSync(program, WORD_COUNT_PROGRAM);
      const data = join(grid.work, 'texts');
      mkdirSync(data, { recursive: true });
      const texts: Record<string, string> = {
        'a.txt': 'one',
        'b.txt': 'one two',
        'c.txt': 'one two three',
        'd.txt': 'un deux trois quatre',
        'e.txt': 'ü ö ä ß é',
        'same-1.txt': 'the same words twice',
        'same-2.txt': 'the same words twice',
        'z.txt': '',
      };
      for (const [name, text] of Object.entries(texts)) writeFileSync(join(data, name), text);
      const names = Object.keys(texts).sort();

      const out = join(grid.work, 'words-out');
      const run = await deskgridOn(host(1), [
        'run',
        program,
        data,
        '--peer',
        `${host(2).address}:${PORT}`,
        '--peer',
        `${host(3).address}:${PORT}`,
        '--secret',
        CODE,
        '--no-local',
        '--out',
        out,
        '--json',
      ]);
      expect(run.timedOut, details(run)).toBe(false);
      expect(run.code, details(run)).toBe(0);
      const results = resultsOf(run.stdout).sort((a, b) => a.index - b.index);
      expect(results.map((result) => result.input)).toEqual(names);
      for (const [at, result] of results.entries()) {
        const name = names[at] ?? '';
        const words = (texts[name] ?? '').split(/\s+/).filter((word) => word !== '').length;
        expect(result.status, JSON.stringify(result)).toBe('done');
        expect(result.value).toEqual({ name, words, absolute: true });
        expect([nodeA.id, nodeB.id]).toContain(result.node);
        // The output file came back under outputs/<index>/.
        expect(readFileSync(join(out, 'outputs', String(result.index), 'summary.txt'), 'utf8')).toBe(
          `${name}: ${words}\n`,
        );
      }
      expect(listing(join(out, 'outputs')).sort()).toEqual(
        results.map((result) => String(result.index)).sort(),
      );

      // The files travelled by their hash: each node keeps those it received under cache/files.
      const received = new Set([
        ...listing(join(nodeA.home, 'cache', 'files')),
        ...listing(join(nodeB.home, 'cache', 'files')),
      ]);
      for (const name of names) expect(received, name).toContain(sha256(join(data, name)));
      // And the program as a content-addressed bundle.
      expect(
        listing(join(nodeA.home, 'cache', 'bundles')).length +
          listing(join(nodeB.home, 'cache', 'bundles')).length,
      ).toBeGreaterThan(0);
    },
  );
});
