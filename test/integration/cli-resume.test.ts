// The crash test: `deskgrid run --out DIR` is SIGKILLed part way through a batch, then
// `deskgrid run --resume DIR` finishes it. Every job ends with exactly one result, and no job
// that had a result before the kill runs again.

import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import {
  HAS_PROC,
  killGroup,
  livingGroupMembers,
  readJsonLines,
  runCli,
  splitLines,
  startCli,
  type CliOptions,
  type CliResult,
  type RunningCli,
} from '../support/run-cli.js';
import { details } from '../support/cli-home.js';
import { useTempFolder } from '../support/temp-folder.js';
import { eventually } from '../support/until.js';

const tmp = useTempFolder();

const JOBS = 300;
const KILL_AFTER_RESULTS = 80;
const WAIT_FOR_RESULTS_MS = 20_000;
const WAIT_FOR_WORKERS_MS = 5_000;

// Each job notes its index in the file named by DG_TEST_EXECUTIONS before doing its work, so the
// log shows every job that started, finished or not.
const JOB = `import { appendFileSync } from 'node:fs';

export default async function (input, ctx) {
  appendFileSync(process.env.DG_TEST_EXECUTIONS, ctx.index + '\\n');
  await new Promise((resolve) => setTimeout(resolve, 20));
  return input * 2;
}
`;

function countLines(file: string): number {
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8').split('\n').length - 1;
}

function executedIndices(log: string): number[] {
  return existsSync(log) ? splitLines(readFileSync(log, 'utf8')).map(Number) : [];
}

function recordedIndices(out: string): Set<number> {
  const db = new Database(join(out, 'batch.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT idx FROM results').all() as Array<{ idx: number }>;
    return new Set(rows.map((row) => row.idx));
  } finally {
    db.close();
  }
}

const byNumber = (a: number, b: number) => a - b;

/**
 * Workers exit on their own once their channel to the CLI closes. Gives them a moment, then
 * kills whatever is left of the CLI's process group so that nothing outlives the test, and
 * returns the processes that had to be killed.
 */
async function leftoverWorkers(pgid: number): Promise<number[]> {
  if (!HAS_PROC) {
    await sleep(500);
    killGroup(pgid);
    return [];
  }
  await eventually(() => livingGroupMembers(pgid).length === 0, WAIT_FOR_WORKERS_MS);
  const leftover = livingGroupMembers(pgid);
  if (leftover.length > 0) killGroup(pgid);
  return leftover;
}

/** A batch run into a results folder, started by startBatch and picked up by resume. */
interface BatchRun {
  readonly out: string;
  readonly resultsFile: string;
  /** Where the jobs started by the first run and by the resumed run note their indices. */
  readonly firstLog: string;
  readonly secondLog: string;
  /** The first run, still going. */
  readonly cli: RunningCli;
}

/** Options for a CLI run whose jobs note their indices in `log`. */
function cliOptions(log: string): CliOptions {
  return {
    home: join(tmp.root, 'home'),
    cwd: tmp.root,
    env: { DG_TEST_EXECUTIONS: log },
    timeLimitMs: 60_000,
  };
}

/** Starts `deskgrid run` over JOBS jobs into a results folder and returns at once. */
function startBatch(): BatchRun {
  const job = tmp.write('job.mjs', JOB);
  const out = join(tmp.root, 'out');
  const firstLog = join(tmp.root, 'executions-1.log');
  return {
    out,
    resultsFile: join(out, 'results.jsonl'),
    firstLog,
    secondLog: join(tmp.root, 'executions-2.log'),
    cli: startCli(['run', job, '--range', `0:${JOBS}`, '--out', out, '--cores', '2'], cliOptions(firstLog)),
  };
}

/** Waits, bounded, until results.jsonl has `count` lines or the CLI has exited; `onPoll` runs each round. */
async function waitForResults(batch: BatchRun, count: number, onPoll?: () => void): Promise<void> {
  await eventually(() => {
    if (batch.cli.child.exitCode !== null || countLines(batch.resultsFile) >= count) return true;
    onPoll?.();
    return false;
  }, WAIT_FOR_RESULTS_MS);
}

/** Runs `deskgrid run --resume` on the batch's folder to the end. */
function resume(batch: BatchRun): Promise<CliResult> {
  return runCli(['run', '--resume', batch.out, '--cores', '2'], cliOptions(batch.secondLog));
}

describe('deskgrid run --resume after SIGKILL', () => {
  it('finishes the batch without running any recorded job again', async () => {
    const batch = startBatch();
    const { out, resultsFile, firstLog, secondLog, cli } = batch;

    // Wait, bounded, until a good part of the batch has results, noting the workers meanwhile.
    let workers: number[] = [];
    const noteWorkers = (): void => {
      if (HAS_PROC) workers = livingGroupMembers(cli.pid).filter((pid) => pid !== cli.pid);
    };
    await waitForResults(batch, KILL_AFTER_RESULTS, noteWorkers);
    expect(cli.child.exitCode, `the batch ended before the kill\n${cli.stderrSoFar()}`).toBeNull();
    const linesBeforeKill = countLines(resultsFile);
    expect(linesBeforeKill, cli.stderrSoFar()).toBeGreaterThanOrEqual(KILL_AFTER_RESULTS);
    noteWorkers();

    process.kill(cli.pid, 'SIGKILL');
    const killed = await cli.result;
    expect(killed.signal).toBe('SIGKILL');

    if (HAS_PROC) expect(workers.length).toBeGreaterThan(0);
    expect(await leftoverWorkers(cli.pid), 'worker processes still alive after the CLI was killed').toEqual(
      [],
    );

    // What the batch had recorded when it died; the CLI is gone, so this no longer changes.
    const recorded = recordedIndices(out);
    expect(recorded.size).toBeGreaterThanOrEqual(linesBeforeKill);
    expect(recorded.size).toBeLessThan(JOBS);
    // results.jsonl is written after the database: every line in it is recorded there.
    const linesAtKill = readJsonLines(resultsFile) as JobResult[];
    for (const line of linesAtKill) expect(recorded.has(line.index)).toBe(true);
    // Every recorded job was started by the first run.
    const firstRun = new Set(executedIndices(firstLog));
    for (const index of recorded) expect(firstRun.has(index)).toBe(true);

    const resumed = await resume(batch);

    expect(resumed.code, details(resumed)).toBe(0);
    expect(resumed.stdout).toContain(`${JOBS} jobs: ${JOBS} done`);
    expect(resumed.stdout).toContain(`results: ${resultsFile}`);

    const results = readJsonLines(resultsFile) as JobResult[];
    expect(results).toHaveLength(JOBS);
    const indices = results.map((result) => result.index).sort(byNumber);
    expect(indices).toEqual([...Array(JOBS).keys()]);
    for (const result of results) {
      expect(result).toMatchObject({
        status: 'done',
        input: result.index,
        value: result.index * 2,
        error: null,
      });
    }

    const secondRun = executedIndices(secondLog);
    const ranAgain = secondRun.filter((index) => recorded.has(index));
    expect(ranAgain, 'jobs that had a result before the kill ran again').toEqual([]);
    const missing = [...Array(JOBS).keys()].filter((index) => !recorded.has(index));
    // Each missing job ran exactly once after the kill (no retries were asked for).
    expect(secondRun.sort(byNumber)).toEqual(missing);
  }, 90_000);

  it('after an interrupt (SIGINT) exits 130, and --resume runs the jobs left unfinished', async () => {
    const batch = startBatch();
    const { out, resultsFile, secondLog, cli } = batch;
    await waitForResults(batch, KILL_AFTER_RESULTS / 2);
    expect(cli.child.exitCode, `the batch ended before the interrupt\n${cli.stderrSoFar()}`).toBeNull();

    process.kill(cli.pid, 'SIGINT');
    const interrupted = await cli.result;

    expect(interrupted.code, details(interrupted)).toBe(130);
    expect(interrupted.stderr).not.toContain('    at ');
    expect(splitLines(interrupted.stderr)).toEqual([
      `deskgrid: interrupted; continue with: deskgrid run --resume ${out}`,
    ]);
    expect(await leftoverWorkers(cli.pid), 'worker processes still alive after the interrupt').toEqual([]);
    // Only finished jobs were recorded; the others are left for --resume.
    const recorded = recordedIndices(out);
    expect(recorded.size).toBeGreaterThanOrEqual(KILL_AFTER_RESULTS / 2);
    expect(recorded.size).toBeLessThan(JOBS);
    const before = readJsonLines(resultsFile) as JobResult[];
    expect(before.map((result) => result.index).sort(byNumber)).toEqual([...recorded].sort(byNumber));
    expect(before.every((result) => result.status === 'done')).toBe(true);

    const resumed = await resume(batch);

    expect(resumed.code, details(resumed)).toBe(0);
    expect(resumed.stdout).toContain(`${JOBS} jobs: ${JOBS} done`);
    const results = readJsonLines(resultsFile) as JobResult[];
    expect(results.map((result) => result.index).sort(byNumber)).toEqual([...Array(JOBS).keys()]);
    expect(results.every((result) => result.status === 'done')).toBe(true);
    // The unfinished jobs, and only they, ran after the interrupt, once each.
    const secondRun = executedIndices(secondLog);
    expect(secondRun.filter((index) => recorded.has(index))).toEqual([]);
    expect(secondRun.sort(byNumber)).toEqual([...Array(JOBS).keys()].filter((index) => !recorded.has(index)));
  }, 90_000);
});
