// The engine side of the UI API (shared/ui-api.ts): every call the UI makes, validated on
// receipt and handed to the room that owns it, and the events the UI watches (nodes, batch
// progress, new results, warnings), pushed at most a few times a second whatever the job rate.
// The HTTP server (ui-server.ts) and the desktop app's IPC gateway both sit on this one class.
// The rooms: uploads.ts (files a browser sends), ui-batches.ts (batches started, followed,
// retried, resumed; tracked-batch.ts, batch-results.ts, batch-preview.ts and
// unfinished-batches.ts beside it), node-list.ts (the nodes shown), node-settings.ts (settings,
// doctor, storage).

import { EventEmitter } from 'node:events';
import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { generateJoinCode } from '../../../shared/join-code.js';
import {
  UI_CALLS,
  type UiCallName,
  type UiEvent,
  type UiInput,
  type UiOutput,
} from '../../../shared/ui-api.js';
import type { Cluster } from '../cluster.js';
import { dataPaths } from '../paths.js';
import { exportResults, jobDetail, resultsPage } from './batch-results.js';
import { previewBatch } from './batch-preview.js';
import { NodeList } from './node-list.js';
import {
  changeSettings,
  doctorFindings,
  settingsView,
  storageView,
  type NodeContext,
} from './node-settings.js';
import { UiBatches } from './ui-batches.js';
import { Uploads, type UploadLimits } from './uploads.js';

/** How often progress and new results are pushed. */
const TICK_MS = 500;

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

type Handlers = { [N in UiCallName]: (input: UiOutputOfInput<N>) => Promise<UiOutput<N>> | UiOutput<N> };
/** A call's input after validation (defaults applied). */
type UiOutputOfInput<N extends UiCallName> = v.InferOutput<(typeof UI_CALLS)[N]['input']>;

export class UiService extends EventEmitter<UiServiceEvents> {
  private readonly uploads: Uploads;
  private readonly batches: UiBatches;
  private readonly nodeList: NodeList;
  private readonly node: NodeContext;
  private readonly timer: NodeJS.Timeout;
  private lastNodes = '';
  private ticks = 0;
  private readonly handlers: Handlers;

  constructor(private readonly options: UiServiceOptions) {
    super();
    const { cluster, home } = options;
    this.node = { cluster, home, joinCode: options.joinCode ?? null };
    this.uploads = new Uploads(home, options.uploadLimits);
    this.batches = new UiBatches(cluster, home, (event) => this.emit('event', event));
    this.nodeList = new NodeList(cluster, () => this.batches.current());
    // Uploads go with the rest of the data folder's bounds; a running batch's stay.
    cluster.storage.add({
      name: 'uploads',
      dir: this.uploads.dir,
      inUse: (id) => this.batches.uses(this.uploads.folderOf(id)),
      removed: (id) => this.uploads.forget(id),
    });
    cluster.on('warning', this.onWarning);
    cluster.on('node', this.onNode);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    const nameOf = (id: string) => this.nodeList.nameOf(id);
    this.handlers = {
      getNodes: () => ({ nodes: this.nodeList.list() }),
      beginUpload: (input) => this.uploads.begin(input),
      uploadChunk: (input) => this.uploads.chunk(input),
      previewBatch: (input) =>
        previewBatch(
          this.uploads.pathOf(input.script, 'script'),
          input.dataset === null ? null : this.uploads.pathOf(input.dataset, 'dataset'),
          input.options,
          dataPaths(home).computationCache,
        ),
      startBatch: async (input) => ({
        batch: await this.batches.start(
          this.uploads.pathOf(input.script, 'script'),
          input.dataset === null ? null : this.uploads.pathOf(input.dataset, 'dataset'),
          input.options,
        ),
      }),
      cancelBatch: (input) => ({ batch: this.batches.cancel(input.batchId) }),
      cancelJob: (input) => ({ cancelled: this.batches.find(input.batchId).batch.cancel(input.index) }),
      getBatches: () => ({ batches: this.batches.infos().reverse() }),
      getResults: (input) => resultsPage(this.batches.find(input.batchId), input, nameOf),
      getJob: (input) => jobDetail(this.batches.find(input.batchId), input.index, nameOf),
      retryFailed: (input) => ({ batch: this.batches.retryFailed(input.batchId) }),
      exportResults: (input) => exportResults(this.batches.find(input.batchId), input.format),
      openResultsFolder: async (input) => {
        const out = this.batches.find(input.batchId).batch.out;
        if (out === null) throw new DeskGridError(ErrorCode.NotFound, 'this batch has no results folder');
        return { path: out, opened: (await this.options.openPath?.(out)) ?? false };
      },
      getSettings: () => settingsView(this.node),
      setSettings: (input) => {
        const settings = changeSettings(this.node, input);
        this.pushNodes();
        return settings;
      },
      createJoinCode: () => ({ joinCode: generateJoinCode() }),
      runDoctor: async () => ({ findings: await doctorFindings(this.node) }),
      getStorage: () => storageView(cluster),
      clearStorage: async (input) => {
        const freedBytes = await cluster.storage.clear(input.parts);
        return { freedBytes, storage: await storageView(cluster) };
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
      { type: 'nodes', nodes: this.nodeList.list() },
      ...this.batches.infos().map((batch): UiEvent => ({ type: 'batch', batch })),
    ];
  }

  /**
   * Continues the batches this UI started that had not ended when the node or app last stopped
   * (killed, crashed, machine off). Returns how many were resumed.
   */
  resumeUnfinished(): number {
    return this.batches.resumeUnfinished();
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

  private tick(): void {
    this.ticks += 1;
    const secondTick = this.ticks % Math.round(1000 / TICK_MS) === 0;
    this.batches.push(secondTick);
    if (secondTick) this.pushNodes();
  }

  private pushNodes(): void {
    const nodes = this.nodeList.list();
    const text = JSON.stringify(nodes);
    if (text === this.lastNodes) return;
    this.lastNodes = text;
    this.emit('event', { type: 'nodes', nodes });
  }
}
