// What a batch would be, before it runs: how its script runs (a module, a Python function, a
// program and its interpreter), how many jobs its dataset makes and the first few inputs. Counting
// stops at a bound of items and of time, so that a huge dataset gets an answer at once ("more
// than ..."). Mistakes come back as the DeskGridError of the step that met them.

import { basename } from 'node:path';
import { groupDigits, previewText, type BatchOptions, type BatchPreview } from '../../../shared/ui-api.js';
import { chosenComputation, outlinePythonFile } from '../computation/python-outline.js';
import { resolveComputation } from '../computation/resolve-computation.js';
import { openDataset } from '../dataset/open-dataset.js';

/** Counting a dataset for the preview stops here; the preview then says "at least". */
const PREVIEW_COUNT_LIMIT = 1_000_000;
const PREVIEW_TIME_LIMIT_MS = 3000;
const PREVIEW_FIRST_INPUTS = 5;

const UNIT: Record<string, string> = {
  lines: 'line',
  csv: 'CSV row',
  jsonl: 'JSON line',
  json: 'array element',
  files: 'file',
  range: 'number',
};

export async function previewBatch(
  scriptPath: string,
  datasetPath: string | null,
  options: BatchOptions,
  computationCache: string,
): Promise<BatchPreview> {
  const outline = await outlinePythonFile(scriptPath);
  const chosen = chosenComputation(scriptPath, outline, options.function);
  const python = outline === null ? {} : { python: { ...outline, function: chosen.function } };
  const computation = await resolveComputation(chosen.computation, {
    stdin: options.stdin ?? false,
    cacheDir: computationCache,
  });
  const runs =
    computation.kind === 'module'
      ? 'a JavaScript module, called once per job in warm workers'
      : computation.kind === 'python'
        ? `the Python function ${computation.function}, called once per job in warm interpreters`
        : computation.interpreter.length > 0
          ? `a program, run with ${basename(computation.interpreter[0] ?? '')} once per job`
          : 'a program, run once per job';
  const described = { kind: computation.kind, name: basename(scriptPath), runs };
  if (datasetPath === null) {
    return {
      jobs: 1,
      atLeast: 1,
      summary: '1 job, with no input',
      split: 'none',
      firstInputs: ['null'],
      computation: described,
      ...python,
    };
  }
  const opened = await openDataset({
    path: datasetPath,
    ...(options.split === undefined ? {} : { split: options.split }),
  });
  const firstInputs: string[] = [];
  let counted = 0;
  let complete = true;
  const started = Date.now();
  for await (const item of opened.items()) {
    if (firstInputs.length < PREVIEW_FIRST_INPUTS) firstInputs.push(previewText(item.record, 500));
    counted += 1;
    if (counted >= PREVIEW_COUNT_LIMIT || Date.now() - started > PREVIEW_TIME_LIMIT_MS) {
      complete = false;
      break;
    }
  }
  const unit = UNIT[opened.mode];
  const jobs = complete ? counted : null;
  const amount = complete ? groupDigits(counted) : `more than ${groupDigits(counted)}`;
  return {
    jobs,
    atLeast: counted,
    summary: `${amount} ${counted === 1 && complete ? 'job' : 'jobs'}, one per ${unit}`,
    split: opened.mode,
    firstInputs,
    computation: described,
    ...python,
  };
}
