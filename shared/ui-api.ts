// The one API between the UI (renderer/) and the engine: every call the UI can make with the
// schema of its input and output, and every event the engine pushes. The same contract runs over
// Electron's preload bridge (ipcRenderer.invoke('deskgrid:call', name, input), events on
// 'deskgrid:event') and, in a browser, over HTTP (POST /api/<name>) and a WebSocket (/api/events)
// to `deskgrid node --ui`. Whoever receives a message validates it here.
//
// Values a job returns can be anything; what crosses this boundary is JSON. Tables get short
// previews (`text`), the job detail gets the result line as results.jsonl holds it.

import * as v from 'valibot';
import { notSharingSchema } from './not-sharing.js';

const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const finalStatus = v.picklist(['done', 'failed', 'timeout', 'cancelled', 'abandoned']);
const empty = v.object({});
const batchId = v.pipe(v.string(), v.minLength(1), v.maxLength(100));

export const SPLIT_MODES = ['lines', 'csv', 'jsonl', 'json', 'files'] as const;
export const NODE_STATES = [
  'this computer',
  'trusted',
  'other cluster',
  'version mismatch',
  'offline',
] as const;
/** Largest piece of a file sent in one `uploadChunk` call (before base64). */
export const UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024;

/** A script or dataset: a file uploaded to the node (browsers), or a path on the node (Electron, CLI). */
export const sourceSchema = v.variant('type', [
  v.object({ type: v.literal('upload'), uploadId: batchId }),
  v.object({ type: v.literal('path'), path: v.pipe(v.string(), v.minLength(1), v.maxLength(4096)) }),
]);
export type Source = v.InferOutput<typeof sourceSchema>;

export const nodeInfoSchema = v.object({
  id: v.string(),
  name: v.string(),
  os: v.string(),
  /** Cores shared; null when only its mDNS announcement is known. */
  cores: v.nullable(count),
  busy: v.nullable(count),
  state: v.picklist(NODE_STATES),
  /** Whether this node runs jobs of this node's batches now. */
  inUse: v.boolean(),
  addresses: v.array(v.string()),
  /** For the current batch: jobs running there now, done and failed there. */
  running: count,
  done: count,
  failed: count,
  /** Jobs per second finished there over the last seconds of the current batch. */
  ratePerSecond: v.number(),
  /** ms since the epoch; null for this computer and for nodes used but never heard on mDNS. */
  lastSeen: v.nullable(v.number()),
  /** A node in use that runs none of this node's jobs now: why, and until when. */
  notSharing: v.optional(notSharingSchema),
});
export type NodeInfo = v.InferOutput<typeof nodeInfoSchema>;

export const batchOptionsSchema = v.object({
  split: v.optional(v.picklist(SPLIT_MODES)),
  /** Seconds; absent: no limit. */
  timeout: v.optional(v.pipe(v.number(), v.minValue(0.001))),
  retries: v.optional(v.pipe(count, v.maxValue(100))),
  reentrant: v.optional(v.boolean()),
  /** Programs get their input on standard input. */
  stdin: v.optional(v.boolean()),
  /**
   * A .py script: the function to call for each item, null to run the file as a program;
   * absent: the default (the one function of a file without a main block, else a program).
   */
  function: v.optional(v.nullable(v.pipe(v.string(), v.regex(/^[A-Za-z_]\w*$/, 'a Python function name')))),
  /** What a node must offer to run the jobs (as `deskgrid run --require`). */
  requires: v.optional(
    v.object({
      /** Commands the node must have, e.g. "python3". */
      runtimes: v.optional(
        v.array(v.pipe(v.string(), v.regex(/^[\w.+-]{1,64}$/, 'a runtime is a command name'))),
      ),
      os: v.optional(v.array(v.picklist(['linux', 'darwin', 'win32']))),
      memoryMb: v.optional(v.pipe(v.number(), v.minValue(1))),
    }),
  ),
  /** Results folder on the node; absent: a new folder under the data folder. */
  out: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(4096))),
});
export type BatchOptions = v.InferOutput<typeof batchOptionsSchema>;

export const batchInfoSchema = v.object({
  id: batchId,
  /** What the user would call it: the script's name and the dataset's. */
  title: v.string(),
  state: v.picklist(['preparing', 'running', 'cancelling', 'ended', 'failed']),
  /** Why a batch could not run at all (state 'failed'), in one sentence; `errorCode` is its code. */
  error: v.nullable(v.string()),
  /** The DeskGrid error code of `error`: DG_ERR_DATASET, DG_ERR_NO_NODE, DG_ERR_MODULE_LOAD... */
  errorCode: v.nullable(v.string()),
  /** Jobs in the dataset, once known. */
  total: v.nullable(count),
  queued: count,
  running: count,
  done: count,
  failed: count,
  timeout: count,
  cancelled: count,
  abandoned: count,
  retried: count,
  startedAt: v.number(),
  endedAt: v.nullable(v.number()),
  ratePerSecond: v.number(),
  /** Seconds left at the recent rate; null when unknown. */
  etaSeconds: v.nullable(v.number()),
  /** The results folder. */
  out: v.nullable(v.string()),
  /** Finished jobs per node id. */
  perNode: v.record(v.string(), v.object({ done: count, failed: count, running: count })),
  /** Jobs finished per second, one sample per second (the last 600 at most). */
  throughput: v.array(v.object({ at: v.number(), rate: v.number() })),
  /** Set when this batch retries the failed jobs of another. */
  retryOf: v.nullable(batchId),
});
export type BatchInfo = v.InferOutput<typeof batchInfoSchema>;

/** One line of the results table. */
export const resultRowSchema = v.object({
  index: count,
  status: finalStatus,
  /** Short text previews of the input, the value and the error message. */
  input: v.string(),
  value: v.string(),
  error: v.nullable(v.string()),
  node: v.string(),
  attempts: count,
  durationMs: v.nullable(v.number()),
});
export type ResultRow = v.InferOutput<typeof resultRowSchema>;

const jobErrorSchema = v.object({ code: v.string(), message: v.string(), stack: v.nullable(v.string()) });

export const jobDetailSchema = v.object({
  batchId,
  index: count,
  status: finalStatus,
  /** JSON text of the input and value, as results.jsonl holds them. */
  input: v.string(),
  value: v.string(),
  stdout: v.string(),
  stderr: v.string(),
  error: v.nullable(jobErrorSchema),
  exitCode: v.nullable(v.number()),
  node: v.string(),
  nodeName: v.string(),
  attempts: count,
  startedAt: v.nullable(v.number()),
  endedAt: v.nullable(v.number()),
  /** Output files the job left, relative to its outputs folder. */
  outputFiles: v.array(v.string()),
  outputsDir: v.nullable(v.string()),
});
export type JobDetail = v.InferOutput<typeof jobDetailSchema>;

export const UNCONFINED_POLICIES = ['refuse', 'accept'] as const;

/** How other people's jobs run on this node now, and what its owner saved for its next start. */
export const otherJobsSchema = v.object({
  /** "bubblewrap" (or another sandbox) when confined, "refused", "unconfined"; null: this node serves no one. */
  mode: v.nullable(v.string()),
  /** Whether confined jobs may use the network, as this node runs. */
  network: v.boolean(),
  /** The line for the owner when jobs are refused or run unconfined; null when all is well. */
  warning: v.nullable(v.string()),
  /** Saved choices; they take effect when this node restarts. */
  savedNetwork: v.boolean(),
  savedUnconfined: v.picklist(UNCONFINED_POLICIES),
  /** The saved choices differ from what the running node does: a restart applies them. */
  restartNeeded: v.boolean(),
});
export type OtherJobs = v.InferOutput<typeof otherJobsSchema>;

export const settingsViewSchema = v.object({
  nodeId: v.string(),
  nodeName: v.string(),
  /** The join code in use, formatted in groups; null when none is set. */
  joinCode: v.nullable(v.string()),
  clusterId: v.nullable(v.string()),
  /** A code saved in the settings that takes effect at the next start. */
  pendingJoinCode: v.nullable(v.string()),
  cores: count,
  coresAvailable: count,
  accepting: v.boolean(),
  /** Whether cores and accepting can change while the node runs. */
  sharingAdjustable: v.boolean(),
  peers: v.array(v.string()),
  dataFolder: v.string(),
  otherJobs: otherJobsSchema,
});
export type SettingsView = v.InferOutput<typeof settingsViewSchema>;

/** What the data folder keeps (README "What DeskGrid keeps"); `kept` is results kept for absent submitters. */
export const RESULT_ORDERS = ['finished', 'index'] as const;
export type ResultOrder = (typeof RESULT_ORDERS)[number];

export const STORAGE_PARTS = ['kept', 'bundles', 'files', 'computations', 'uploads'] as const;
export const CLEARABLE_PARTS = ['bundles', 'files', 'computations', 'uploads'] as const;
export type StoragePartName = (typeof STORAGE_PARTS)[number];

export const storageViewSchema = v.object({
  parts: v.array(
    v.object({
      name: v.picklist(STORAGE_PARTS),
      bytes: count,
      entries: count,
      /** The bound: the least recently used go beyond it, and whatever is unused for maxAgeDays. */
      maxBytes: count,
      maxAgeDays: v.number(),
      /** Entries a running batch (or a recent upload or transfer) uses: a clear leaves them. */
      inUseEntries: count,
      clearable: v.boolean(),
    }),
  ),
});
export type StorageView = v.InferOutput<typeof storageViewSchema>;

export const doctorFindingSchema = v.object({
  ok: v.boolean(),
  text: v.string(),
  advice: v.nullable(v.string()),
});
export type DoctorFinding = v.InferOutput<typeof doctorFindingSchema>;

const previewSchema = v.object({
  /** Jobs the batch will have; null when there are more than could be counted quickly. */
  jobs: v.nullable(count),
  /** Counted at least this many (when `jobs` is null). */
  atLeast: count,
  /** "1 204 jobs, one per CSV row". */
  summary: v.string(),
  split: v.picklist([...SPLIT_MODES, 'range', 'none']),
  /** The first few inputs, as JSON text. */
  firstInputs: v.array(v.string()),
  computation: v.object({
    kind: v.picklist(['module', 'program', 'python']),
    name: v.string(),
    runs: v.string(),
  }),
  /** A .py script: its top-level functions, and the one called per item (null: run as a program). */
  python: v.optional(
    v.object({ functions: v.array(v.string()), hasMainBlock: v.boolean(), function: v.nullable(v.string()) }),
  ),
});
export type BatchPreview = v.InferOutput<typeof previewSchema>;

const batchRef = v.object({ batchId });

export const UI_CALLS = {
  /** This computer and every node it uses or sees, this computer first. */
  getNodes: { input: empty, output: v.object({ nodes: v.array(nodeInfoSchema) }) },
  /** Starts an upload of one dropped or picked file or folder; its files follow with uploadChunk. */
  beginUpload: {
    input: v.object({
      role: v.picklist(['script', 'dataset']),
      /** The dropped file's or folder's name. */
      name: v.pipe(v.string(), v.minLength(1), v.maxLength(255)),
      kind: v.picklist(['file', 'folder']),
      /** Total bytes of every file to come (checked against the limit before anything is sent). */
      bytes: count,
      files: count,
    }),
    output: v.object({ uploadId: batchId }),
  },
  /** One piece of one file: `path` is relative to the folder (for a file: its name). */
  uploadChunk: {
    input: v.object({
      uploadId: batchId,
      path: v.pipe(v.string(), v.minLength(1), v.maxLength(4096)),
      offset: count,
      /** Base64. */
      data: v.string(),
    }),
    output: v.object({ received: count }),
  },
  previewBatch: {
    input: v.object({ script: sourceSchema, dataset: v.nullable(sourceSchema), options: batchOptionsSchema }),
    output: previewSchema,
  },
  startBatch: {
    input: v.object({ script: sourceSchema, dataset: v.nullable(sourceSchema), options: batchOptionsSchema }),
    output: v.object({ batch: batchInfoSchema }),
  },
  cancelBatch: { input: batchRef, output: v.object({ batch: batchInfoSchema }) },
  /** Stops one job wherever it runs (every attempt); false when it was not queued or running. */
  cancelJob: { input: v.object({ batchId, index: count }), output: v.object({ cancelled: v.boolean() }) },
  /** Every batch of this session, newest first. */
  getBatches: { input: empty, output: v.object({ batches: v.array(batchInfoSchema) }) },
  getResults: {
    input: v.object({
      batchId,
      offset: count,
      limit: v.pipe(count, v.minValue(1), v.maxValue(1000)),
      status: v.optional(finalStatus),
      /** Case-insensitive text in the input, value, error or node. */
      search: v.optional(v.pipe(v.string(), v.maxLength(200))),
      /** In the order jobs finished (default), or by job index. */
      order: v.optional(v.picklist(RESULT_ORDERS)),
    }),
    output: v.object({
      /** Rows that match the filter. */
      matching: count,
      /** Rows of the batch. */
      total: count,
      rows: v.array(resultRowSchema),
    }),
  },
  getJob: { input: v.object({ batchId, index: count }), output: jobDetailSchema },
  /** Runs the failed, timed-out and abandoned jobs of a batch again, as a new batch. */
  retryFailed: { input: batchRef, output: v.object({ batch: batchInfoSchema }) },
  /** Writes results.csv or results-export.jsonl into the results folder and returns it. */
  exportResults: {
    input: v.object({ batchId, format: v.picklist(['csv', 'jsonl']) }),
    output: v.object({ path: v.nullable(v.string()), fileName: v.string(), content: v.string() }),
  },
  /** Opens the results folder where the engine can (the desktop app); otherwise just names it. */
  openResultsFolder: { input: batchRef, output: v.object({ path: v.string(), opened: v.boolean() }) },
  getSettings: { input: empty, output: settingsViewSchema },
  setSettings: {
    input: v.object({
      cores: v.optional(v.pipe(count, v.minValue(1))),
      accepting: v.optional(v.boolean()),
      peers: v.optional(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(300)))),
      /** Saved for the next start (the running node keeps its code). */
      joinCode: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(100))),
      /** Saved for the next start, like the join code. */
      jobNetwork: v.optional(v.boolean()),
      unconfinedJobs: v.optional(v.picklist(UNCONFINED_POLICIES)),
    }),
    output: settingsViewSchema,
  },
  /** A new join code, not saved: the user saves it with setSettings. */
  createJoinCode: { input: empty, output: v.object({ joinCode: v.string() }) },
  runDoctor: { input: empty, output: v.object({ findings: v.array(doctorFindingSchema) }) },
  /** What this node keeps in its data folder, part by part, with each part's bound. */
  getStorage: { input: empty, output: storageViewSchema },
  /** Removes what is not in use from these parts; results kept for submitters are never cleared. */
  clearStorage: {
    input: v.object({ parts: v.pipe(v.array(v.picklist(CLEARABLE_PARTS)), v.minLength(1)) }),
    output: v.object({ freedBytes: count, storage: storageViewSchema }),
  },
} as const;

export type UiCallName = keyof typeof UI_CALLS;
export type UiInput<N extends UiCallName> = v.InferInput<(typeof UI_CALLS)[N]['input']>;
export type UiOutput<N extends UiCallName> = v.InferOutput<(typeof UI_CALLS)[N]['output']>;

export const uiEventSchema = v.variant('type', [
  v.object({ type: v.literal('nodes'), nodes: v.array(nodeInfoSchema) }),
  v.object({ type: v.literal('batch'), batch: batchInfoSchema }),
  /** Results that just finished, in the order they finished. */
  v.object({ type: v.literal('results'), batchId, rows: v.array(resultRowSchema) }),
  v.object({
    type: v.literal('job-progress'),
    batchId,
    index: count,
    fraction: v.number(),
    note: v.nullable(v.string()),
  }),
  v.object({ type: v.literal('provisional'), batchId, index: count, value: v.string() }),
  v.object({ type: v.literal('warning'), message: v.string() }),
]);
export type UiEvent = v.InferOutput<typeof uiEventSchema>;

/** How a failed call reaches the UI: one plain sentence, and the DeskGrid error code. */
export const uiErrorSchema = v.object({ code: v.string(), message: v.string() });
export type UiError = v.InferOutput<typeof uiErrorSchema>;

/** What the renderer talks to: window.deskgrid in Electron, an HTTP+WebSocket client in a browser. */
export interface DeskGridApi {
  call<N extends UiCallName>(name: N, input: UiInput<N>): Promise<UiOutput<N>>;
  subscribe(listener: (event: UiEvent) => void): () => void;
}

export function isUiCallName(name: string): name is UiCallName {
  return Object.hasOwn(UI_CALLS, name);
}

/** A short one-line preview of any JSON-able value for tables. */
export function previewText(value: unknown, max = 200): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value === undefined) text = '';
  else {
    try {
      // undefined for values JSON has no word for (a function).
      text =
        JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? item.toString() : item)) ??
        '';
    } catch {
      text = '(a value that cannot be shown as text)';
    }
  }
  text = text.replace(/\s+/g, ' ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** 1204 -> "1 204": counts as the UI and its messages write them. */
export function groupDigits(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}
