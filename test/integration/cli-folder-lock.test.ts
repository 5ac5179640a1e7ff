// One process per folder: a second `deskgrid run` on a results folder in use, or a second
// `deskgrid node` on a data folder in use, is refused at once with one line naming the holder
// (pid, host, since when), DG_ERR_LOCKED and exit 1, and the first goes on untouched. A lock
// whose holder is gone (SIGKILLed, another boot, another host that stopped refreshing it) never
// blocks; Ctrl-C lets go of it.

import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateJoinCode } from '../../shared/join-code.js';
import { killGroup, readJsonLines, splitLines, startCli, type CliResult } from '../support/run-cli.js';
import { cliHome, details } from '../support/cli-home.js';
import { useTempFolder } from '../support/temp-folder.js';
import { until } from '../support/until.js';

const tmp = useTempFolder();
const { home, deskgrid } = cliHome(tmp);
const CODE = generateJoinCode();
/** Jobs 0-4 end at once; the others wait (a minute at most) until the file `gate` exists. */
const gatedJob = (gate: string) => `import { existsSync } from 'node:fs';
export default async (n) => {
  for (let waited = 0; n >= 5 && !existsSync(${JSON.stringify(gate)}) && waited < 3000; waited += 1)
    await new Promise((r) => setTimeout(r, 20));
  return n * 2;
};
`;
const JOBS = 40;
const SINCE = String.raw`since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`;

function resultCount(out: string): number {
  const file = join(out, 'results.jsonl');
  return existsSync(file) ? splitLines(readFileSync(file, 'utf8')).length : 0;
}

/** The pid in out/batch.lock, or null while there is none. */
function lockHolder(out: string): number | null {
  try {
    return (JSON.parse(readFileSync(join(out, 'batch.lock'), 'utf8')) as { pid: number }).pid;
  } catch {
    return null;
  }
}

/** Exit 1 and a single line on stderr matching `message`, ending with the lock's error code. */
function expectRefused(run: CliResult, message: RegExp): void {
  expect(run.code, details(run)).toBe(1);
  const lines = splitLines(run.stderr);
  expect(lines, details(run)).toHaveLength(1);
  expect(lines[0]).toMatch(message);
  expect(lines[0]).toMatch(/ \(DG_ERR_LOCKED\)$/);
}

/** Every index from 0 to jobs-1 once, done, doubled. */
function expectComplete(out: string, jobs: number): void {
  const lines = readJsonLines(join(out, 'results.jsonl')) as Array<{
    index: number;
    status: string;
    value: number;
  }>;
  expect(lines.map((line) => line.index).sort((a, b) => a - b)).toEqual([...Array(jobs).keys()]);
  expect(lines.every((line) => line.status === 'done' && line.value === line.index * 2)).toBe(true);
}

/** Starts a batch of JOBS gated jobs into out/ and waits for its first results. */
async function startSlowRun() {
  const gate = join(tmp.root, 'gate');
  const job = tmp.write('gated.mjs', gatedJob(gate));
  const out = join(tmp.root, 'out');
  const first = startCli(['run', job, '--range', `0:${JOBS}`, '--out', out, '--cores', '1'], {
    home: home(),
    cwd: tmp.root,
    timeLimitMs: 80_000,
  });
  await until(() => resultCount(out) >= 3, 'the first results');
  return { job, out, first, open: () => writeFileSync(gate, '') };
}

describe('a results folder in use', () => {
  it(
    'refuses a second run or --resume at once, naming the holder; the first ends untouched',
    { timeout: 90_000 },
    async () => {
      const { job, out, first, open } = await startSlowRun();

      const holder = new RegExp(
        `^deskgrid: the results folder ${out} is in use by another DeskGrid process \\(pid ${first.pid} on ${hostname()} ${SINCE}\\)`,
      );
      expectRefused(await deskgrid(['run', '--resume', out]), holder);
      expectRefused(await deskgrid(['run', job, '--range', '0:5', '--out', out, '--cores', '1']), holder);
      open();

      const ended = await first.result;
      expect(ended.code, details(ended)).toBe(0);
      expectComplete(out, JOBS);
      expect(existsSync(join(out, 'batch.lock'))).toBe(false);
      // Let go of: the folder can be resumed (nothing left to run) by anyone now.
      const again = await deskgrid(['run', '--resume', out]);
      expect(again.code, details(again)).toBe(0);
    },
  );

  it(
    'a lock left by a SIGKILLed run does not block --resume; Ctrl-C lets go of it',
    { timeout: 90_000 },
    async () => {
      const { out, first, open } = await startSlowRun();
      killGroup(first.pid);
      await first.result.catch(() => undefined);
      // The dead process's lock is still there, and does not count.
      expect(lockHolder(out)).toBe(first.pid);

      const second = startCli(['run', '--resume', out], { home: home(), cwd: tmp.root });
      await until(() => lockHolder(out) === second.pid, 'the resumed run to take the folder');
      second.child.kill('SIGINT');
      const interrupted = await second.result;
      expect(interrupted.code, details(interrupted)).toBe(130);
      expect(existsSync(join(out, 'batch.lock'))).toBe(false);

      open();
      const third = await deskgrid(['run', '--resume', out], { timeLimitMs: 60_000 });
      expect(third.code, details(third)).toBe(0);
      expectComplete(out, JOBS);
    },
  );

  it("another host's lock is reported until it goes stale; a dead boot's or a reused pid's never counts", async () => {
    const job = tmp.write('double.mjs', 'export default async (n) => n * 2;\n');
    const out = join(tmp.root, 'out');
    const made = await deskgrid(['run', job, '--range', '0:3', '--out', out, '--cores', '1']);
    expect(made.code, details(made)).toBe(0);
    const lock = join(out, 'batch.lock');
    const plant = (holder: object, ageMs = 0) => {
      writeFileSync(lock, JSON.stringify({ startedAt: Date.now() - ageMs, ...holder }));
      const touched = new Date(Date.now() - ageMs);
      utimesSync(lock, touched, touched);
    };

    plant({ pid: 1, host: 'elsewhere', processStart: null, bootId: null });
    expectRefused(
      await deskgrid(['run', '--resume', out]),
      new RegExp(
        `in use by another DeskGrid process \\(pid 1 on elsewhere ${SINCE}\\).*if it no longer runs there, delete ${lock}`,
      ),
    );
    // Not refreshed for eleven minutes: its holder is gone.
    plant({ pid: 1, host: 'elsewhere', processStart: null, bootId: null }, 11 * 60_000);
    const stale = await deskgrid(['run', '--resume', out]);
    expect(stale.code, details(stale)).toBe(0);

    // Where the system tells (Linux): this host, a living pid (this test's) but a process started
    // at another time, so the pid was reused; and this host before a restart (another boot id).
    if (existsSync('/proc/sys/kernel/random/boot_id')) {
      plant({ pid: process.pid, host: hostname(), processStart: '1', bootId: null });
      const reused = await deskgrid(['run', '--resume', out]);
      expect(reused.code, details(reused)).toBe(0);
      plant({ pid: process.pid, host: hostname(), processStart: null, bootId: 'another-boot' });
      const rebooted = await deskgrid(['run', '--resume', out]);
      expect(rebooted.code, details(rebooted)).toBe(0);
    }
    // The living test process itself, as it is: it holds the folder.
    plant({ pid: process.pid, host: hostname(), processStart: null, bootId: null });
    expectRefused(await deskgrid(['run', '--resume', out]), new RegExp(`\\(pid ${process.pid} on `));
    expectComplete(out, 3);
  });
});

describe('a data folder in use by a node', () => {
  it(
    'refuses a second node at once, naming the first; a submitting run there is allowed',
    { timeout: 90_000 },
    async () => {
      // The code through the environment: --secret would add its warning to what is asserted.
      const nodeArgs = ['node', '--port', '0', '--no-discovery', '--cores', '1'];
      const env = { DESKGRID_SECRET: CODE };
      const first = startCli(nodeArgs, { home: home(), cwd: tmp.root, timeLimitMs: 80_000, env });
      try {
        await until(() => first.stdoutSoFar().includes('listening on'), 'the first node to listen');

        const second = await deskgrid(nodeArgs, { env });
        expectRefused(
          second,
          new RegExp(
            `^deskgrid: the data folder ${home()} is in use by another DeskGrid node \\(pid ${first.pid} on ${hostname()} ${SINCE}\\): stop that node first`,
          ),
        );
        expect(second.stdout).toBe('');
        // The UI's node is a node too.
        expectRefused(await deskgrid([...nodeArgs, '--ui'], { env }), /is in use by another DeskGrid node/);

        const job = tmp.write('double.mjs', 'export default async (n) => n * 2;\n');
        const run = await deskgrid([
          'run',
          job,
          '--range',
          '0:4',
          '--cores',
          '1',
          '--out',
          join(tmp.root, 'out'),
        ]);
        expect(run.code, details(run)).toBe(0);
        expectComplete(join(tmp.root, 'out'), 4);
      } finally {
        first.child.kill('SIGTERM');
      }
      const stopped = await first.result;
      expect(stopped.stdout).toContain('stopped');
      expect(existsSync(join(home(), 'node.lock'))).toBe(false);

      // Stopped: the folder is free for the next node.
      const next = startCli(nodeArgs, { home: home(), cwd: tmp.root, env });
      try {
        await until(() => next.stdoutSoFar().includes('listening on'), 'the next node to listen');
      } finally {
        next.child.kill('SIGTERM');
        await next.result.catch(() => undefined);
      }
    },
  );
});
