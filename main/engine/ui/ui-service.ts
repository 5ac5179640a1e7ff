// The engine side of the UI API (shared/ui-api.ts): every call the UI makes, validated on
// receipt, answered from a running Cluster; and the events the UI watches (nodes, batch
// progress, new results), pushed at most a few times a second whatever the job rate. The HTTP
// server (ui-server.ts) and the desktop app's IPC gateway both sit on top of this one class.

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, platform } from 'node:os';
import { basename, join, relative, resolve, sep } from 'node:path';
import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { JobResult } from '../../../shared/job.js';
import { formatJoinCode, generateJoinCode, parseJoinCode } from '../../../shared/join-code.js';
import { toResultLine } from '../../../shared/result-line.js';
import {
  UI_CALLS,
  groupDigits,
  previewText,
  type BatchInfo,
  batchOptionsSchema,
  type BatchOptions,
  type BatchPreview,
  type DoctorFinding,
  type JobDetail,
  type NodeInfo,
  type ResultRow,
  type OtherJobs,
  type SettingsView,
  type StorageView,
  type Source,
  type UiCallName,
  type UiEvent,
  type UiInput,
  type UiOutput,
} from '../../../shared/ui-api.js';
import { isSafeRelativePath } from '../../../shared/wire-protocol.js';
import type { Batch } from '../batch.js';
import type { Cluster } from '../cluster.js';
import { resolveComputation } from '../computation/resolve-computation.js';
import { chosenComputation, outlinePythonFile } from '../computation/python-outline.js';
import { openDataset } from '../dataset/open-dataset.js';
import { clusterId } from '../identity/cluster-key.js';
import { DEFAULT_DOCTOR_WAIT_S, diagnose } from '../doctor/diagnose.js';
import { dataPaths, newRunFolder } from '../paths.js';
import { canonicalPeer, loadSettings, resolveJoinCode, saveSettings, type Settings } from '../settings.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** How often progress and new results are pushed. */
const TICK_MS = 500;
const THROUGHPUT_SAMPLES = 600;
/** Seconds of samples the recent rate (ETA, per-node rate) is averaged over. */
const RECENT_S = 10;
/** Counting a dataset for the preview stops here; the preview then says "at least". */
const PREVIEW_COUNT_LIMIT = 1_000_000;
const PREVIEW_TIME_LIMIT_MS = 3000;
const PREVIEW_FIRST_INPUTS = 5;
/** How long startBatch waits for a batch to be prepared (TypeScript bundled, module loaded once). */
const PREPARE_WAIT_MS = 120_000;
const PREPARE_POLL_MS = 20;
/** Batches kept in memory with their results. */
const KEPT_BATCHES = 20;
/** In a results folder while the UI's batch runs; what is needed to resume it after a crash. */
const UNFINISHED_MARKER = 'deskgrid-ui-unfinished.json';

const markerSchema = v.object({
  title: v.string(),
  submitted: v.object({
    computation: v.string(),
    dataset: v.nullable(v.string()),
    mode: v.nullable(v.string()),
    options: batchOptionsSchema,
  }),
});

export interface UploadLimits {
  /** Total bytes of one upload (a file or a folder). Default 2 GiB. */
  maxBytes: number;
  /** Files in one folder upload. Default 10 000. */
  maxFiles: number;
}

export interface UiServiceOptions {
  cluster: Cluster;
  /** The data folder: uploads go to <home>/uploads, results to <home>/runs. */
  home: string;
  /** Opens a folder in the file manager (the desktop app); absent on a headless node. */
  openPath?: (path: string) => Promise<boolean>;
  uploadLimits?: Partial<UploadLimits>;
  /** The join code the cluster runs with (canonical form), to show in the settings. */
  joinCode?: string | null;
}

export interface UiServiceEvents {
  event: [UiEvent];
}

interface Upload {
  id: string;
  role: 'script' | 'dataset';
  kind: 'file' | 'folder';
  /** The staged file or folder. */
  path: string;
  expectedBytes: number;
  expectedFiles: number;
  received: number;
  /** Bytes received per relative path. */
  files: Map<string, number>;
}

interface Submitted {
  computation: string;
  dataset: string | null;
  /** How the dataset is split (null without one). */
  mode: string | null;
  options: BatchOptions;
}

interface Tracked {
  id: string;
  title: string;
  batch: Batch;
  submitted: Submitted;
  state: BatchInfo['state'];
  error: string | null;
  startedAt: number;
  endedAt: number | null;
  retryOf: string | null;
  /** In the order they finished. */
  results: JobResult[];
  /** Job index -> position in `results`. */
  positions: Map<number, number>;
  /** `results` by job index, sorted again only when results were added since. */
  sorted: JobResult[];
  perNode: Map<string, { done: number; failed: number }>;
  /** Finished count per node at each of the last ticks of one second, for per-node rates. */
  nodeHistory: Map<string, number>[];
  throughput: { at: number; rate: number }[];
  finishedAtLastSample: number;
  lastSampleAt: number;
  pendingRows: ResultRow[];
  /** Latest progress per job since the last tick. */
  pendingProgress: Map<number, { fraction: number; note: string | null }>;
  pendingProvisional: Map<number, string>;
}

type Handlers = { [N in UiCallName]: (input: UiOutputOfInput<N>) => Promise<UiOutput<N>> | UiOutput<N> };
/** A call's input after validation (defaults applied). */
type UiOutputOfInput<N extends UiCallName> = v.InferOutput<(typeof UI_CALLS)[N]['input']>;

export class UiService extends EventEmitter<UiServiceEvents> {
  private readonly uploads = new Map<string, Upload>();
  private readonly batches: Tracked[] = [];
  private readonly nodeNames = new Map<string, string>();
  private readonly limits: UploadLimits;
  private readonly timer: NodeJS.Timeout;
  private lastNodes = '';
  private ticks = 0;
  private readonly handlers: Handlers;

  constructor(private readonly options: UiServiceOptions) {
    super();
    this.limits = {
      maxBytes: options.uploadLimits?.maxBytes ?? 2 * 1024 ** 3,
      maxFiles: options.uploadLimits?.maxFiles ?? 10_000,
    };
    this.nodeNames.set(options.cluster.nodeId, options.cluster.identity.name);
    // Uploads go with the rest of the data folder's bounds; a running batch's stay.
    options.cluster.storage.add({
      name: 'uploads',
      dir: this.uploadsDir(),
      inUse: (id) => this.uploadInUse(id),
      removed: (id) => this.uploads.delete(id),
    });
    options.cluster.on('warning', this.onWarning);
    options.cluster.on('node', this.onNode);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.handlers = {
      getNodes: () => ({ nodes: this.nodes() }),
      beginUpload: (input) => this.beginUpload(input),
      uploadChunk: (input) => this.uploadChunk(input),
      previewBatch: (input) => this.preview(input.script, input.dataset, input.options),
      startBatch: async (input) => ({ batch: await this.start(input.script, input.dataset, input.options) }),
      cancelBatch: (input) => {
        const tracked = this.tracked(input.batchId);
        if (tracked.state === 'running' || tracked.state === 'preparing') {
          tracked.state = 'cancelling';
          tracked.batch.cancel();
        }
        return { batch: this.info(tracked) };
      },
      cancelJob: (input) => ({ cancelled: this.tracked(input.batchId).batch.cancel(input.index) }),
      getBatches: () => ({ batches: this.batches.map((tracked) => this.info(tracked)).reverse() }),
      getResults: (input) => this.results(input),
      getJob: (input) => this.job(input.batchId, input.index),
      retryFailed: (input) => this.retryFailed(input.batchId),
      exportResults: (input) => this.exportResults(input.batchId, input.format),
      openResultsFolder: async (input) => {
        const out = this.tracked(input.batchId).batch.out;
        if (out === null) throw new DeskGridError(ErrorCode.NotFound, 'this batch has no results folder');
        return { path: out, opened: (await this.options.openPath?.(out)) ?? false };
      },
      getSettings: () => this.settings(),
      setSettings: (input) => this.setSettings(input),
      createJoinCode: () => ({ joinCode: generateJoinCode() }),
      runDoctor: async () => ({ findings: await this.doctor() }),
      getStorage: () => this.storage(),
      clearStorage: async (input) => {
        const freedBytes = await this.options.cluster.storage.clear(input.parts);
        return { freedBytes, storage: await this.storage() };
      },
    };
  }

  /** Validates the input of a call, runs it and returns its output; mistakes throw a DeskGridError. */
  async handle(name: UiCallName, input: unknown): Promise<unknown> {
    const call = UI_CALLS[name] as (typeof UI_CALLS)[UiCallName] | undefined;
    if (call === undefined) throw new DeskGridError(ErrorCode.Usage, `unknown call "${name}"`);
    const parsed = v.safeParse(call.input, input);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const where = issue?.path?.map((item) => String(item.key)).join('.') ?? '';
      throw new DeskGridError(
        ErrorCode.Usage,
        `invalid ${name} request${where === '' ? '' : ` (${where})`}: ${issue?.message ?? 'wrong shape'}`,
      );
    }
    const handler = this.handlers[name] as (input: unknown) => Promise<unknown>;
    return await handler(parsed.output);
  }

  /** A typed shortcut for the engine's own callers and tests. */
  async call<N extends UiCallName>(name: N, input: UiInput<N>): Promise<UiOutput<N>> {
    return (await this.handle(name, input)) as UiOutput<N>;
  }

  /** What a new subscriber needs to draw the current state at once. */
  snapshot(): UiEvent[] {
    return [
      { type: 'nodes', nodes: this.nodes() },
      ...this.batches.map((tracked): UiEvent => ({ type: 'batch', batch: this.info(tracked) })),
    ];
  }

  /** Stops pushing events (the cluster and its batches go on). */
  close(): void {
    clearInterval(this.timer);
    this.options.cluster.off('warning', this.onWarning);
    this.options.cluster.off('node', this.onNode);
  }

  private readonly onWarning = (message: string): void => {
    this.emit('event', { type: 'warning', message });
  };

  private readonly onNode = (): void => {
    this.pushNodes();
  };

  /** The engine's diagnosis, judged with the join code this node runs with. */
  private async doctor(): Promise<DoctorFinding[]> {
    const findings = await diagnose({
      secret: this.options.joinCode ?? undefined,
      secretSource: 'the code this node runs with',
      waitS: DEFAULT_DOCTOR_WAIT_S,
      home: this.options.home,
    });
    return findings.map((finding) => ({
      ok: finding.ok,
      text: finding.text,
      advice: finding.advice ?? null,
    }));
  }

  // ----- nodes

  private nodes(): NodeInfo[] {
    const cluster = this.options.cluster;
    const stats = cluster.stats();
    const current = this.batches.at(-1);
    const counts = (id: string) => {
      const own = current?.perNode.get(id) ?? { done: 0, failed: 0 };
      return { ...own, ratePerSecond: current ? nodeRate(current, id) : 0 };
    };
    const self: NodeInfo = {
      id: cluster.nodeId,
      name: cluster.identity.name,
      os: platform(),
      cores: stats.cores,
      busy: stats.busyCores,
      state: 'this computer',
      inUse: stats.cores > 0,
      addresses: cluster.address ? [cluster.address.host] : [],
      running: stats.busyCores,
      ...counts(cluster.nodeId),
      lastSeen: null,
    };
    const lan = new Map(cluster.lanNodes().map((view) => [view.id, view]));
    const used: NodeInfo[] = stats.nodes.map((node) => {
      const seen = lan.get(node.id);
      this.nodeNames.set(node.id, node.name);
      return {
        id: node.id,
        name: node.name,
        os: node.os,
        cores: node.cores,
        busy: node.busy,
        state: 'trusted',
        inUse: true,
        addresses: seen?.addresses ?? [],
        running: node.busy,
        ...counts(node.id),
        lastSeen: seen?.lastSeen ?? null,
        ...(node.notSharing === null ? {} : { notSharing: node.notSharing }),
      };
    });
    const usedIds = new Set([cluster.nodeId, ...stats.nodes.map((node) => node.id)]);
    const others: NodeInfo[] = [...lan.values()]
      .filter((view) => !usedIds.has(view.id))
      .map((view) => {
        this.nodeNames.set(view.id, view.name);
        return {
          id: view.id,
          name: view.name,
          os: view.os,
          cores: view.cores,
          busy: null,
          state: view.state,
          inUse: false,
          addresses: view.addresses,
          running: 0,
          ...counts(view.id),
          lastSeen: view.lastSeen,
        };
      });
    // Nodes that ran jobs of the current batch but are gone still show what they did.
    const gone: NodeInfo[] = [...(current?.perNode.keys() ?? [])]
      .filter((id) => !usedIds.has(id) && !lan.has(id))
      .map((id) => ({
        id,
        name: this.nodeNames.get(id) ?? id.slice(0, 8),
        os: '',
        cores: null,
        busy: null,
        state: 'offline',
        inUse: false,
        addresses: [],
        running: 0,
        ...counts(id),
        lastSeen: null,
      }));
    const byName = (a: NodeInfo, b: NodeInfo) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
    return [self, ...used.sort(byName), ...others.sort(byName), ...gone];
  }

  private pushNodes(): void {
    const nodes = this.nodes();
    const text = JSON.stringify(nodes);
    if (text === this.lastNodes) return;
    this.lastNodes = text;
    this.emit('event', { type: 'nodes', nodes });
  }

  // ----- uploads

  private async beginUpload(input: UiOutputOfInput<'beginUpload'>): Promise<{ uploadId: string }> {
    if (!isSafeRelativePath(input.name) || input.name.includes('/')) {
      throw new DeskGridError(ErrorCode.Usage, `"${input.name}" is not a usable file name`);
    }
    if (input.bytes > this.limits.maxBytes) {
      throw new DeskGridError(
        ErrorCode.TooLarge,
        `${input.name} is ${megabytes(input.bytes)}, more than the ${megabytes(this.limits.maxBytes)} a browser may upload: use deskgrid run on the node for it`,
      );
    }
    if (input.kind === 'folder' ? input.files > this.limits.maxFiles : input.files !== 1) {
      throw new DeskGridError(
        ErrorCode.TooLarge,
        input.kind === 'folder'
          ? `${input.name} holds ${input.files} files, more than the ${this.limits.maxFiles} a browser may upload`
          : 'a file upload holds exactly one file',
      );
    }
    const id = randomUUID();
    const dir = join(this.uploadsDir(), id);
    await mkdir(input.kind === 'folder' ? join(dir, input.name) : dir, { recursive: true });
    this.uploads.set(id, {
      id,
      role: input.role,
      kind: input.kind,
      path: join(dir, input.name),
      expectedBytes: input.bytes,
      expectedFiles: input.files,
      received: 0,
      files: new Map(),
    });
    return { uploadId: id };
  }

  private async uploadChunk(input: UiOutputOfInput<'uploadChunk'>): Promise<{ received: number }> {
    const upload = this.uploads.get(input.uploadId);
    if (!upload) throw new DeskGridError(ErrorCode.NotFound, 'that upload is unknown: drop the file again');
    const name = basename(upload.path);
    if (upload.kind === 'file' ? input.path !== name : !isSafeRelativePath(input.path)) {
      throw new DeskGridError(ErrorCode.Usage, `"${input.path}" is not a file name that can be uploaded`);
    }
    const data = Buffer.from(input.data, 'base64');
    if (upload.received + data.length > upload.expectedBytes) {
      throw new DeskGridError(
        ErrorCode.TooLarge,
        `${name} is larger than announced (${upload.expectedBytes} bytes): drop it again`,
      );
    }
    const had = upload.files.get(input.path);
    if (had === undefined && upload.files.size >= upload.expectedFiles) {
      throw new DeskGridError(ErrorCode.TooLarge, `${name} holds more files than announced`);
    }
    if ((had ?? 0) !== input.offset) {
      throw new DeskGridError(
        ErrorCode.Usage,
        `${input.path}: the upload's pieces arrived out of order (expected byte ${had ?? 0}, got ${input.offset})`,
      );
    }
    const target = upload.kind === 'file' ? upload.path : join(upload.path, ...input.path.split('/'));
    await mkdir(join(target, '..'), { recursive: true });
    const handle = await open(target, input.offset === 0 ? 'w' : 'a');
    try {
      await handle.write(data);
    } finally {
      await handle.close();
    }
    upload.files.set(input.path, input.offset + data.length);
    upload.received += data.length;
    return { received: upload.received };
  }

  private uploadsDir(): string {
    return join(this.options.home, 'uploads');
  }

  /** Whether a batch that has not ended runs on this upload (its script or its dataset). */
  private uploadInUse(id: string): boolean {
    const dir = join(this.uploadsDir(), id) + sep;
    return this.batches.some(
      (tracked) =>
        (tracked.state === 'preparing' || tracked.state === 'running' || tracked.state === 'cancelling') &&
        [tracked.submitted.computation, tracked.submitted.dataset].some((path) => path?.startsWith(dir)),
    );
  }

  private async storage(): Promise<StorageView> {
    const usage = await this.options.cluster.storage.usage();
    return {
      parts: usage.map((part) => ({
        name: part.name,
        bytes: part.bytes,
        entries: part.entries,
        maxBytes: part.maxBytes,
        maxAgeDays: part.maxAgeMs / DAY_MS,
        inUseEntries: part.inUseEntries,
        clearable: part.clearable,
      })),
    };
  }

  /** The path on this node of a script or dataset. */
  private sourcePath(source: Source, role: 'script' | 'dataset'): string {
    if (source.type === 'path') return resolve(source.path);
    const upload = this.uploads.get(source.uploadId);
    if (!upload) throw new DeskGridError(ErrorCode.NotFound, `that ${role} upload is unknown: drop it again`);
    if (upload.role !== role) {
      throw new DeskGridError(ErrorCode.Usage, `${basename(upload.path)} was dropped as the ${upload.role}`);
    }
    if (upload.received !== upload.expectedBytes || upload.files.size !== upload.expectedFiles) {
      throw new DeskGridError(
        ErrorCode.Usage,
        `${basename(upload.path)} has not finished uploading (${upload.received} of ${upload.expectedBytes} bytes)`,
      );
    }
    return upload.path;
  }

  // ----- batches

  private async preview(
    script: Source,
    dataset: Source | null,
    options: BatchOptions,
  ): Promise<BatchPreview> {
    const scriptPath = this.sourcePath(script, 'script');
    const datasetPath = dataset === null ? null : this.sourcePath(dataset, 'dataset');
    const outline = await outlinePythonFile(scriptPath);
    const chosen = chosenComputation(scriptPath, outline, options.function);
    const python = outline === null ? {} : { python: { ...outline, function: chosen.function } };
    const computation = await resolveComputation(chosen.computation, {
      stdin: options.stdin ?? false,
      cacheDir: dataPaths(this.options.home).computationCache,
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

  private async start(script: Source, dataset: Source | null, options: BatchOptions): Promise<BatchInfo> {
    const scriptPath = this.sourcePath(script, 'script');
    const { computation } = chosenComputation(
      scriptPath,
      await outlinePythonFile(scriptPath),
      options.function,
    );
    const datasetPath = dataset === null ? null : this.sourcePath(dataset, 'dataset');
    // Checks what can be checked before a batch exists, so that mistakes come back as the answer.
    const opened =
      datasetPath === null
        ? null
        : await openDataset({
            path: datasetPath,
            ...(options.split === undefined ? {} : { split: options.split }),
          });
    const title =
      datasetPath === null ? basename(computation) : `${basename(computation)} over ${basename(datasetPath)}`;
    const tracked = this.submit(
      { computation, dataset: datasetPath, mode: opened?.mode ?? null, options },
      title,
      null,
    );
    // A module that does not load fails while the batch is prepared: say so in the answer
    // rather than later. Prepared means its outputs folder is known.
    for (let waited = 0; waited < PREPARE_WAIT_MS; waited += PREPARE_POLL_MS) {
      if (tracked.batch.outputsDir !== null || tracked.endedAt !== null) break;
      await delay(PREPARE_POLL_MS);
    }
    if (tracked.state === 'failed') {
      throw new DeskGridError(ErrorCode.Usage, tracked.error ?? 'the batch could not start');
    }
    return this.info(tracked);
  }

  private submit(submitted: Submitted, title: string, retryOf: string | null, inputs?: unknown[]): Tracked {
    const { options } = submitted;
    const id = randomUUID();
    const out =
      options.out !== undefined && retryOf === null
        ? options.out
        : newRunFolder(this.options.home, submitted.computation, id.slice(0, 8));
    // Batches from a program's inputs cannot be resumed from their folder: no marker for those.
    const marker = inputs === undefined ? writeUnfinishedMarker(out, title, submitted) : null;
    const batch = this.options.cluster.submit({
      computation: submitted.computation,
      ...(inputs !== undefined
        ? { inputs }
        : submitted.dataset === null
          ? {}
          : { dataset: submitted.dataset, ...(options.split === undefined ? {} : { split: options.split }) }),
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
      ...(options.retries === undefined ? {} : { retries: options.retries }),
      reentrant: options.reentrant ?? true,
      stdin: options.stdin ?? false,
      ...(options.requires === undefined ? {} : { requires: options.requires }),
      out,
    });
    return this.track(batch, { id, title, submitted, retryOf, marker });
  }

  /**
   * Continues the batches this UI started that had not ended when the node or app last stopped
   * (killed, crashed, machine off): nothing that finished runs again, and the results the nodes
   * kept meanwhile are collected. Returns how many were resumed.
   */
  resumeUnfinished(): number {
    let resumed = 0;
    for (const found of unfinishedMarkers(dataPaths(this.options.home).runs)) {
      const batch = this.options.cluster.resume(found.dir);
      this.track(batch, {
        id: randomUUID(),
        title: found.title,
        submitted: found.submitted,
        retryOf: null,
        marker: found.path,
      });
      resumed += 1;
    }
    return resumed;
  }

  private track(
    batch: Batch,
    started: {
      id: string;
      title: string;
      submitted: Submitted;
      retryOf: string | null;
      marker: string | null;
    },
  ): Tracked {
    const { id, title, submitted, retryOf, marker } = started;
    const tracked: Tracked = {
      id,
      title,
      batch,
      submitted,
      state: 'running',
      error: null,
      startedAt: Date.now(),
      endedAt: null,
      retryOf,
      results: [],
      positions: new Map(),
      sorted: [],
      perNode: new Map(),
      nodeHistory: [],
      throughput: [],
      finishedAtLastSample: 0,
      lastSampleAt: Date.now(),
      pendingRows: [],
      pendingProgress: new Map(),
      pendingProvisional: new Map(),
    };
    batch.on('result', (result) => {
      tracked.positions.set(result.index, tracked.results.length);
      tracked.results.push(result);
      // A cancelled job says nothing of the node it was meant for.
      if (result.status !== 'cancelled') {
        const counts = tracked.perNode.get(result.node) ?? { done: 0, failed: 0 };
        if (result.status === 'done') counts.done += 1;
        else counts.failed += 1;
        tracked.perNode.set(result.node, counts);
      }
      tracked.pendingRows.push(rowOf(result));
      tracked.pendingProgress.delete(result.index);
      tracked.pendingProvisional.delete(result.index);
    });
    batch.on('progress', (progress) =>
      tracked.pendingProgress.set(progress.index, { fraction: progress.fraction, note: progress.note }),
    );
    batch.on('provisional', (provisional) =>
      tracked.pendingProvisional.set(provisional.index, previewText(provisional.value)),
    );
    batch.done.then(
      () => this.ended(tracked, null),
      (error: unknown) => this.ended(tracked, error instanceof Error ? error.message : String(error)),
    );
    // Ended one way or another (a batch that cannot resume included): not to be resumed again;
    // unless another process holds the folder: the marker is that process's batch's.
    if (marker !== null) {
      void batch.done.then(
        () => rm(marker, { force: true }),
        (error: unknown) =>
          (error as { code?: unknown }).code === ErrorCode.Locked ? undefined : rm(marker, { force: true }),
      );
    }
    this.batches.push(tracked);
    while (this.batches.length > KEPT_BATCHES) {
      const oldest = this.batches.findIndex((candidate) => candidate.endedAt !== null);
      if (oldest < 0) break;
      this.batches.splice(oldest, 1);
    }
    this.emit('event', { type: 'batch', batch: this.info(tracked) });
    return tracked;
  }

  private ended(tracked: Tracked, error: string | null): void {
    tracked.state = error === null ? 'ended' : 'failed';
    tracked.error = error;
    tracked.endedAt = Date.now();
    closeThroughput(tracked);
    this.flush(tracked);
    this.emit('event', { type: 'batch', batch: this.info(tracked) });
  }

  private tracked(id: string): Tracked {
    const found = this.batches.find((tracked) => tracked.id === id);
    if (!found) throw new DeskGridError(ErrorCode.NotFound, 'that batch is no longer known to this node');
    return found;
  }

  private info(tracked: Tracked): BatchInfo {
    const stats = tracked.batch.stats();
    const finished = stats.done + stats.failed + stats.timeout + stats.cancelled + stats.abandoned;
    const elapsedS = ((tracked.endedAt ?? Date.now()) - tracked.startedAt) / 1000;
    const recent = tracked.throughput.slice(-RECENT_S);
    const recentRate =
      recent.length > 0 ? recent.reduce((sum, sample) => sum + sample.rate, 0) / recent.length : 0;
    const rate =
      tracked.endedAt === null && recent.length >= 3 ? recentRate : finished / Math.max(elapsedS, 0.001);
    const left = stats.total === null ? null : stats.total - finished;
    const perNode: BatchInfo['perNode'] = {};
    const busy = new Map(this.options.cluster.stats().nodes.map((node) => [node.id, node.busy]));
    for (const [node, counts] of tracked.perNode) {
      perNode[node] = { ...counts, running: tracked.endedAt === null ? (busy.get(node) ?? 0) : 0 };
    }
    return {
      id: tracked.id,
      title: tracked.title,
      state: tracked.state,
      error: tracked.error,
      total: stats.total,
      queued: stats.queued,
      running: stats.running,
      done: stats.done,
      failed: stats.failed,
      timeout: stats.timeout,
      cancelled: stats.cancelled,
      abandoned: stats.abandoned,
      retried: stats.retried,
      startedAt: tracked.startedAt,
      endedAt: tracked.endedAt,
      // Over the whole batch once ended, cancelled jobs left out: they were never run.
      ratePerSecond:
        tracked.endedAt === null ? rate : (finished - stats.cancelled) / Math.max(elapsedS, 0.001),
      etaSeconds: left !== null && rate > 0 && tracked.endedAt === null ? left / rate : null,
      out: tracked.batch.out,
      perNode,
      throughput: tracked.throughput,
      retryOf: tracked.retryOf,
    };
  }

  private tick(): void {
    this.ticks += 1;
    const secondTick = this.ticks % Math.round(1000 / TICK_MS) === 0;
    for (const tracked of this.batches) {
      if (tracked.endedAt !== null) continue;
      if (secondTick) sample(tracked);
      this.flush(tracked);
      this.emit('event', { type: 'batch', batch: this.info(tracked) });
    }
    if (secondTick) this.pushNodes();
  }

  /** Sends the results, progress and provisional values gathered since the last tick. */
  private flush(tracked: Tracked): void {
    if (tracked.pendingRows.length > 0) {
      this.emit('event', { type: 'results', batchId: tracked.id, rows: tracked.pendingRows.splice(0) });
    }
    for (const [index, progress] of tracked.pendingProgress) {
      this.emit('event', { type: 'job-progress', batchId: tracked.id, index, ...progress });
    }
    tracked.pendingProgress.clear();
    for (const [index, value] of tracked.pendingProvisional) {
      this.emit('event', { type: 'provisional', batchId: tracked.id, index, value });
    }
    tracked.pendingProvisional.clear();
  }

  private results(input: UiOutputOfInput<'getResults'>): UiOutput<'getResults'> {
    const tracked = this.tracked(input.batchId);
    const search = input.search?.trim().toLowerCase() ?? '';
    const rows: ResultRow[] = [];
    let matching = 0;
    for (const result of input.order === 'index' ? byIndex(tracked) : tracked.results) {
      if (input.status !== undefined && result.status !== input.status) continue;
      const row = rowOf(result);
      if (search !== '' && !matches(row, search, this.nodeNames.get(row.node))) continue;
      if (matching >= input.offset && rows.length < input.limit) rows.push(row);
      matching += 1;
    }
    return { matching, total: tracked.results.length, rows };
  }

  private async job(batchId: string, index: number): Promise<JobDetail> {
    const tracked = this.tracked(batchId);
    const position = tracked.positions.get(index);
    const result = position === undefined ? undefined : tracked.results[position];
    if (!result) throw new DeskGridError(ErrorCode.NotFound, `job ${index} has no result yet`);
    const line = JSON.parse(toResultLine(result)) as { input: unknown; value: unknown };
    const outputsDir = tracked.batch.outputsDir;
    const outputFiles = outputsDir === null ? [] : await listFiles(join(outputsDir, String(index)));
    return {
      batchId,
      index,
      status: result.status,
      input: JSON.stringify(line.input ?? null, null, 2),
      value: JSON.stringify(line.value ?? null, null, 2),
      stdout: result.stdout,
      stderr: result.stderr,
      error: result.error,
      exitCode: result.exitCode,
      node: result.node,
      nodeName: this.nodeNames.get(result.node) ?? result.node.slice(0, 8),
      attempts: result.attempts,
      startedAt: result.startedAt,
      endedAt: result.endedAt,
      outputFiles,
      outputsDir: outputsDir === null ? null : join(outputsDir, String(index)),
    };
  }

  private retryFailed(batchId: string): { batch: BatchInfo } {
    const tracked = this.tracked(batchId);
    if (tracked.endedAt === null) {
      throw new DeskGridError(ErrorCode.Usage, 'wait for the batch to end before retrying its failed jobs');
    }
    const failed = tracked.results.filter((result) => RETRYABLE.has(result.status));
    if (failed.length === 0) throw new DeskGridError(ErrorCode.Usage, 'no job of this batch failed');
    if (tracked.submitted.mode === 'files') {
      throw new DeskGridError(
        ErrorCode.Usage,
        'the jobs of a folder dataset cannot be retried one by one yet: run the batch again',
      );
    }
    const title = `retry of ${failed.length} failed ${failed.length === 1 ? 'job' : 'jobs'} of ${tracked.title}`;
    const retry = this.submit(
      tracked.submitted,
      title,
      tracked.id,
      failed.sort((a, b) => a.index - b.index).map((result) => result.input),
    );
    return { batch: this.info(retry) };
  }

  private async exportResults(batchId: string, format: 'csv' | 'jsonl'): Promise<UiOutput<'exportResults'>> {
    const tracked = this.tracked(batchId);
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

  // ----- settings

  private settings(): SettingsView {
    const { cluster, home } = this.options;
    const saved = loadSettings(home);
    const running = this.options.joinCode ?? savedJoinCode(home);
    const savedCode = saved.joinCode === undefined ? null : parseJoinCode(saved.joinCode);
    const pending = savedCode?.ok && savedCode.code !== running ? formatJoinCode(savedCode.code) : null;
    const sharing = cluster.sharing();
    return {
      nodeId: cluster.nodeId,
      nodeName: cluster.identity.name,
      joinCode: running === null ? null : formatJoinCode(running),
      clusterId: running === null ? null : clusterId(running),
      pendingJoinCode: pending,
      cores: sharing.cores,
      coresAvailable: availableParallelism(),
      accepting: sharing.accepting,
      sharingAdjustable: true,
      peers: saved.peers ?? [],
      dataFolder: home,
      otherJobs: otherJobsOf(cluster.jobConfinement, saved),
    };
  }

  private setSettings(input: UiOutputOfInput<'setSettings'>): SettingsView {
    const { cluster, home } = this.options;
    if (input.joinCode !== undefined) {
      const parsed = parseJoinCode(input.joinCode);
      if (!parsed.ok) throw new DeskGridError(ErrorCode.JoinCode, parsed.reason);
    }
    // New peers are checked before anything changes, with the parser the node starts with (saved
    // ones stay as they are: a bad one is skipped with a warning at start, never blocks a save).
    const saved = new Set(loadSettings(home).peers ?? []);
    for (const peer of input.peers ?? []) if (!saved.has(peer)) canonicalPeer(peer);
    if (input.cores !== undefined || input.accepting !== undefined) {
      cluster.setSharing({
        ...(input.cores === undefined ? {} : { cores: input.cores }),
        ...(input.accepting === undefined ? {} : { accepting: input.accepting }),
      });
    }
    saveSettings(home, {
      ...(input.cores === undefined ? {} : { cores: input.cores }),
      ...(input.peers === undefined ? {} : { peers: input.peers }),
      ...(input.joinCode === undefined ? {} : { joinCode: input.joinCode }),
      ...(input.jobNetwork === undefined ? {} : { jobNetwork: input.jobNetwork }),
      ...(input.unconfinedJobs === undefined ? {} : { unconfinedJobs: input.unconfinedJobs }),
    });
    this.pushNodes();
    return this.settings();
  }
}

/**
 * How other people's jobs run here and what the owner saved; the confinement is decided at start,
 * so a saved change waits for a restart. Where jobs run confined, the unconfined choice changes
 * nothing until confinement stops working, so it never asks for a restart.
 */
function otherJobsOf(running: Cluster['jobConfinement'], saved: Settings): OtherJobs {
  const savedNetwork = saved.jobNetwork ?? true;
  const savedUnconfined = saved.unconfinedJobs ?? 'refuse';
  if (running === null) {
    return {
      mode: null,
      network: savedNetwork,
      warning: null,
      savedNetwork,
      savedUnconfined,
      restartNeeded: false,
    };
  }
  const policyChanged =
    (running.mode === 'refused' && savedUnconfined === 'accept') ||
    (running.mode === 'unconfined' && savedUnconfined === 'refuse');
  return {
    mode: running.mode,
    network: running.network,
    warning: running.warning,
    savedNetwork,
    savedUnconfined,
    restartNeeded: policyChanged || savedNetwork !== running.network,
  };
}

/** The join code this node would start with; a damaged one is no code to show. */
function savedJoinCode(home: string): string | null {
  try {
    return resolveJoinCode({ home })?.code ?? null;
  } catch {
    return null;
  }
}

const RETRYABLE = new Set(['failed', 'timeout', 'abandoned']);

const UNIT: Record<string, string> = {
  lines: 'line',
  csv: 'CSV row',
  jsonl: 'JSON line',
  json: 'array element',
  files: 'file',
  range: 'number',
};

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

/** The batch's results by job index; sorted once per new results (a finished batch: once). */
function byIndex(tracked: Tracked): JobResult[] {
  if (tracked.sorted.length !== tracked.results.length) {
    tracked.sorted = [...tracked.results].sort((a, b) => a.index - b.index);
  }
  return tracked.sorted;
}

function rowOf(result: JobResult): ResultRow {
  return {
    index: result.index,
    status: result.status,
    input: previewText(result.input),
    value: result.status === 'done' ? previewText(result.value) : '',
    error: result.error === null ? null : previewText(result.error.message),
    node: result.node,
    attempts: result.attempts,
    durationMs:
      result.startedAt === null || result.endedAt === null
        ? null
        : Math.max(0, result.endedAt - result.startedAt),
  };
}

function matches(row: ResultRow, search: string, nodeName: string | undefined): boolean {
  return [row.input, row.value, row.error ?? '', row.node, nodeName ?? '', String(row.index)].some((text) =>
    text.toLowerCase().includes(search),
  );
}

/** Samples shorter than this at the end are noise, not a rate. */
const LAST_SAMPLE_MIN_MS = 100;

/**
 * At the end: the last, partial second counts too, and a batch too short for two samples of its
 * own shows its average rate from start to end (else its chart would stay empty).
 */
function closeThroughput(tracked: Tracked): void {
  const end = tracked.endedAt ?? Date.now();
  if (end - tracked.lastSampleAt >= LAST_SAMPLE_MIN_MS) sample(tracked);
  if (tracked.throughput.length >= 2) return;
  const seconds = Math.max((end - tracked.startedAt) / 1000, 0.001);
  const rate = finishedCount(tracked) / seconds;
  tracked.throughput = [
    { at: 0, rate },
    { at: Math.round(seconds * 10) / 10, rate },
  ];
}

function finishedCount(tracked: Tracked): number {
  const stats = tracked.batch.stats();
  return stats.done + stats.failed + stats.timeout + stats.cancelled + stats.abandoned;
}

function sample(tracked: Tracked): void {
  const now = Date.now();
  const finished = finishedCount(tracked);
  const seconds = Math.max((now - tracked.lastSampleAt) / 1000, 0.001);
  tracked.throughput.push({
    at: Math.round((now - tracked.startedAt) / 100) / 10,
    rate: (finished - tracked.finishedAtLastSample) / seconds,
  });
  if (tracked.throughput.length > THROUGHPUT_SAMPLES) tracked.throughput.shift();
  tracked.finishedAtLastSample = finished;
  tracked.lastSampleAt = now;
  tracked.nodeHistory.push(
    new Map([...tracked.perNode].map(([node, counts]) => [node, counts.done + counts.failed])),
  );
  if (tracked.nodeHistory.length > RECENT_S + 1) tracked.nodeHistory.shift();
}

function nodeRate(tracked: Tracked, node: string): number {
  if (tracked.endedAt !== null) return 0;
  const first = tracked.nodeHistory[0];
  const last = tracked.nodeHistory.at(-1);
  if (!first || !last || tracked.nodeHistory.length < 2) return 0;
  return ((last.get(node) ?? 0) - (first.get(node) ?? 0)) / (tracked.nodeHistory.length - 1);
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

function megabytes(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function writeUnfinishedMarker(out: string, title: string, submitted: Submitted): string {
  mkdirSync(out, { recursive: true });
  const path = join(out, UNFINISHED_MARKER);
  writeFileSync(path, JSON.stringify({ title, submitted }));
  return path;
}

/** The UI's batches under `runs` that never ended; an unreadable marker is skipped, not fatal. */
function unfinishedMarkers(
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
