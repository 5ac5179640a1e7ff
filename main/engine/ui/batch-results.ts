// A followed batch's results as the UI reads them: pages of the results table (filtered,
// searched, in finish or index order), one job in full (its result line, output files, node),
// and the export as CSV or as JSON lines by index. Reads only; the results themselves are
// gathered by tracked-batch.ts.

import { readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { JobResult } from '../../../shared/job.js';
import { toResultLine } from '../../../shared/result-line.js';
import type { JobDetail, ResultRow, UiInput, UiOutput } from '../../../shared/ui-api.js';
import { byIndex, rowOf, type Tracked } from './tracked-batch.js';

/** The name a node id stands for, when known. */
export type NameOf = (nodeId: string) => string | undefined;

export function resultsPage(
  tracked: Tracked,
  input: Omit<UiInput<'getResults'>, 'batchId'>,
  nameOf: NameOf,
): UiOutput<'getResults'> {
  const search = input.search?.trim().toLowerCase() ?? '';
  const rows: ResultRow[] = [];
  let matching = 0;
  for (const result of input.order === 'index' ? byIndex(tracked) : tracked.results) {
    if (input.status !== undefined && result.status !== input.status) continue;
    const row = rowOf(result);
    if (search !== '' && !matches(row, search, nameOf(row.node))) continue;
    if (matching >= input.offset && rows.length < input.limit) rows.push(row);
    matching += 1;
  }
  return { matching, total: tracked.results.length, rows };
}

export async function jobDetail(tracked: Tracked, index: number, nameOf: NameOf): Promise<JobDetail> {
  const position = tracked.positions.get(index);
  const result = position === undefined ? undefined : tracked.results[position];
  if (!result) throw new DeskGridError(ErrorCode.NotFound, `job ${index} has no result yet`);
  const line = JSON.parse(toResultLine(result)) as { input: unknown; value: unknown };
  const outputsDir = tracked.batch.outputsDir;
  const outputFiles = outputsDir === null ? [] : await listFiles(join(outputsDir, String(index)));
  return {
    batchId: tracked.id,
    index,
    status: result.status,
    input: JSON.stringify(line.input ?? null, null, 2),
    value: JSON.stringify(line.value ?? null, null, 2),
    stdout: result.stdout,
    stderr: result.stderr,
    error: result.error,
    exitCode: result.exitCode,
    node: result.node,
    nodeName: nameOf(result.node) ?? result.node.slice(0, 8),
    attempts: result.attempts,
    startedAt: result.startedAt,
    endedAt: result.endedAt,
    outputFiles,
    outputsDir: outputsDir === null ? null : join(outputsDir, String(index)),
  };
}

/** The results by index as CSV or JSON lines, also written into the results folder when there is one. */
export async function exportResults(
  tracked: Tracked,
  format: 'csv' | 'jsonl',
): Promise<UiOutput<'exportResults'>> {
  const sorted = byIndex(tracked);
  const content =
    format === 'jsonl'
      ? sorted.map((result) => `${toResultLine(result)}\n`).join('')
      : `${CSV_COLUMNS.join(',')}\n${sorted.map((result) => csvLine(result)).join('')}`;
  const fileName = format === 'csv' ? 'results.csv' : 'results-by-index.jsonl';
  const out = tracked.batch.out;
  const path = out === null ? null : join(out, fileName);
  if (path !== null) await writeFile(path, content);
  return { path, fileName, content };
}

function matches(row: ResultRow, search: string, nodeName: string | undefined): boolean {
  return [row.input, row.value, row.error ?? '', row.node, nodeName ?? '', String(row.index)].some((text) =>
    text.toLowerCase().includes(search),
  );
}

const CSV_COLUMNS = [
  'index',
  'status',
  'input',
  'value',
  'error_code',
  'error_message',
  'node',
  'attempts',
  'started_at',
  'ended_at',
  'stdout',
  'stderr',
];

function csvLine(result: JobResult): string {
  const json = JSON.parse(toResultLine(result)) as { input: unknown; value: unknown };
  const cells = [
    result.index,
    result.status,
    textOf(json.input),
    textOf(json.value),
    result.error?.code ?? '',
    result.error?.message ?? '',
    result.node,
    result.attempts,
    result.startedAt === null ? '' : new Date(result.startedAt).toISOString(),
    result.endedAt === null ? '' : new Date(result.endedAt).toISOString(),
    result.stdout,
    result.stderr,
  ];
  return `${cells.map((cell) => csvCell(String(cell))).join(',')}\n`;
}

function textOf(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function csvCell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split('\\').join('/'))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
