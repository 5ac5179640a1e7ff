// What the whole window shows, kept live from the engine's events: the nodes, the batches of
// this session, the progress of running jobs, warnings. Views read it; only `apply` changes it
// from events, so that a view never has to reload.

import type { BatchInfo, DeskGridApi, NodeInfo, ResultRow, UiEvent } from '../../../shared/ui-api.js';
import { errorText } from './api.js';
import { nodeLabels, shortId } from './node-labels.js';

export type ViewName = 'nodes' | 'submit' | 'batch' | 'results' | 'settings';

/** Results shown on the batch view as they arrive. */
const RECENT_RESULTS = 8;
const MAX_WARNINGS = 5;

export interface Warning {
  id: number;
  message: string;
}

export class AppState {
  view = $state<ViewName>('nodes');
  nodes = $state<NodeInfo[]>([]);
  /** Newest first. */
  batches = $state<BatchInfo[]>([]);
  /** The batch the batch and results views show. */
  selectedBatchId = $state<string | null>(null);
  warnings = $state<Warning[]>([]);
  /** Running jobs' progress and provisional values, for the selected batch. */
  jobProgress = $state<Record<number, { fraction: number; note: string | null }>>({});
  provisional = $state<Record<number, string>>({});
  recentResults = $state<ResultRow[]>([]);
  /** Bumped when results of the selected batch arrive, so the results table refreshes. */
  resultsVersion = $state(0);
  /** Node id -> its name, with its short id beside it when names collide. */
  readonly nodeLabels = $derived(nodeLabels(this.nodes));
  connected = $state(true);
  loadError = $state<string | null>(null);
  private warningIds = 0;

  constructor(readonly api: DeskGridApi) {}

  get selectedBatch(): BatchInfo | undefined {
    return this.batches.find((batch) => batch.id === this.selectedBatchId) ?? this.batches[0];
  }

  /** What to call a node (a node no longer listed: its short id). */
  nodeLabel(id: string): string {
    return this.nodeLabels.get(id) ?? shortId(id);
  }

  /** Loads the current state and follows the events; returns the function that stops. */
  start(): () => void {
    const stop = this.api.subscribe((event) => this.apply(event));
    void this.reload();
    return stop;
  }

  async reload(): Promise<void> {
    try {
      const [nodes, batches] = await Promise.all([
        this.api.call('getNodes', {}),
        this.api.call('getBatches', {}),
      ]);
      this.nodes = nodes.nodes;
      for (const batch of batches.batches.reverse()) this.upsertBatch(batch);
      this.loadError = null;
    } catch (error) {
      this.loadError = errorText(error);
    }
  }

  apply(event: UiEvent): void {
    switch (event.type) {
      case 'nodes':
        this.nodes = event.nodes;
        return;
      case 'batch':
        this.upsertBatch(event.batch);
        return;
      case 'results': {
        if (event.batchId !== this.selectedBatch?.id) return;
        this.recentResults = [...event.rows.slice(-RECENT_RESULTS).reverse(), ...this.recentResults].slice(
          0,
          RECENT_RESULTS,
        );
        const finished = event.rows.map((row) => String(row.index));
        this.jobProgress = without(this.jobProgress, finished);
        this.provisional = without(this.provisional, finished);
        this.resultsVersion += 1;
        return;
      }
      case 'job-progress':
        if (event.batchId === this.selectedBatch?.id) {
          this.jobProgress[event.index] = { fraction: event.fraction, note: event.note };
        }
        return;
      case 'provisional':
        if (event.batchId === this.selectedBatch?.id) this.provisional[event.index] = event.value;
        return;
      case 'warning':
        this.warn(event.message);
        return;
    }
  }

  warn(message: string): void {
    this.warningIds += 1;
    this.warnings = [...this.warnings, { id: this.warningIds, message }].slice(-MAX_WARNINGS);
  }

  dismissWarning(id: number): void {
    this.warnings = this.warnings.filter((warning) => warning.id !== id);
  }

  /** Shows a batch on the batch and results views. */
  select(batchId: string): void {
    if (this.selectedBatchId === batchId) return;
    this.selectedBatchId = batchId;
    this.jobProgress = {};
    this.provisional = {};
    this.recentResults = [];
    this.resultsVersion += 1;
  }

  private upsertBatch(batch: BatchInfo): void {
    const at = this.batches.findIndex((known) => known.id === batch.id);
    if (at >= 0) {
      this.batches[at] = batch;
      return;
    }
    this.batches = [batch, ...this.batches];
    // A new batch is the one to watch.
    this.select(batch.id);
  }
}

function without<T>(record: Record<number, T>, keys: readonly string[]): Record<number, T> {
  return Object.fromEntries(Object.entries(record).filter(([key]) => !keys.includes(key)));
}
