// The marker a batch started from the UI leaves in its results folder until it ends: its title
// and what was submitted, which is all it takes to take the batch up again when the node or the
// app stopped (killed, crashed, machine off) before it ended. The UI's batches write it, remove
// it when their batch ends, and look for the ones left over at start.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';
import { batchOptionsSchema } from '../../../shared/ui-api.js';

const UNFINISHED_MARKER = 'deskgrid-ui-unfinished.json';

const submittedSchema = v.object({
  computation: v.string(),
  dataset: v.nullable(v.string()),
  /** How the dataset is split (null without one). */
  mode: v.nullable(v.string()),
  options: batchOptionsSchema,
});

/** What the UI submitted for a batch: enough to retry its failed jobs or to resume it. */
export type Submitted = v.InferOutput<typeof submittedSchema>;

const markerSchema = v.object({ title: v.string(), submitted: submittedSchema });

/** Writes the marker into `out` (made if need be); returns its path. */
export function writeUnfinishedMarker(out: string, title: string, submitted: Submitted): string {
  mkdirSync(out, { recursive: true });
  const path = join(out, UNFINISHED_MARKER);
  writeFileSync(path, JSON.stringify({ title, submitted }));
  return path;
}

/** The UI's batches under `runs` that never ended; an unreadable marker is skipped, not fatal. */
export function unfinishedMarkers(
  runs: string,
): Array<v.InferOutput<typeof markerSchema> & { dir: string; path: string }> {
  let names: string[];
  try {
    names = readdirSync(runs);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const dir = join(runs, name);
    const path = join(dir, UNFINISHED_MARKER);
    try {
      const parsed = v.safeParse(markerSchema, JSON.parse(readFileSync(path, 'utf8')));
      return parsed.success ? [{ ...parsed.output, dir, path }] : [];
    } catch {
      return [];
    }
  });
}
