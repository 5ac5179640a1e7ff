// A stand-in for the engine behind the DeskGridApi, for the renderer's store and component tests
// (the real engine is tested through the UI server and end to end): a batch of any size whose
// rows are made on demand, and a record of every call made.

import type {
  BatchInfo,
  DeskGridApi,
  OtherJobs,
  ResultRow,
  StorageView,
  UiCallName,
  UiEvent,
  UiInput,
  UiOutput,
} from '../../shared/ui-api.js';

export function batchInfo(overrides: Partial<BatchInfo> = {}): BatchInfo {
  return {
    id: 'b1',
    title: 'score.mjs over customers.csv',
    state: 'running',
    error: null,
    errorCode: null,
    total: 100_000,
    queued: 0,
    running: 2,
    done: 0,
    failed: 0,
    timeout: 0,
    cancelled: 0,
    abandoned: 0,
    retried: 0,
    startedAt: Date.now(),
    endedAt: null,
    ratePerSecond: 0,
    etaSeconds: null,
    out: '/data/runs/x',
    perNode: {},
    throughput: [],
    retryOf: null,
    ...overrides,
  };
}

export function row(index: number): ResultRow {
  const failed = index % 10 === 3;
  return {
    index,
    status: failed ? 'failed' : 'done',
    input: `{"customer":"c${index}"}`,
    value: failed ? '' : String(index * 2),
    error: failed ? `no price for ${index}` : null,
    node: 'n1',
    attempts: 1,
    durationMs: 12,
  };
}

export class FakeEngine implements DeskGridApi {
  readonly calls: { name: UiCallName; input: unknown }[] = [];
  readonly listeners = new Set<(event: UiEvent) => void>();
  batches: BatchInfo[] = [];
  /** What getStorage answers; clearStorage empties the parts it names. */
  storage: StorageView = { parts: [] };
  /** How other people's jobs run, as getSettings answers; setSettings saves the two choices. */
  otherJobs: OtherJobs = {
    mode: 'bubblewrap',
    network: true,
    warning: null,
    savedNetwork: true,
    savedUnconfined: 'refuse',
    restartNeeded: false,
  };

  constructor(private readonly rows: number) {}

  call<N extends UiCallName>(name: N, input: UiInput<N>): Promise<UiOutput<N>> {
    this.calls.push({ name, input });
    return Promise.resolve(this.answer(name, input) as UiOutput<N>);
  }

  subscribe(listener: (event: UiEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  push(event: UiEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private answer(name: UiCallName, input: unknown): unknown {
    switch (name) {
      case 'getNodes':
        return { nodes: [] };
      case 'getBatches':
        return { batches: this.batches };
      case 'getResults': {
        const query = input as UiInput<'getResults'>;
        const all = Array.from({ length: this.rows }, (_, index) => index);
        const matching = all.filter(
          (index) => query.status === undefined || row(index).status === query.status,
        );
        return {
          matching: matching.length,
          total: this.rows,
          rows: matching.slice(query.offset, query.offset + query.limit).map(row),
        };
      }
      case 'setSettings': {
        const { jobNetwork, unconfinedJobs } = input as UiInput<'setSettings'>;
        const savedNetwork = jobNetwork ?? this.otherJobs.savedNetwork;
        const savedUnconfined = unconfinedJobs ?? this.otherJobs.savedUnconfined;
        this.otherJobs = { ...this.otherJobs, savedNetwork, savedUnconfined, restartNeeded: true };
        return this.answer('getSettings', {});
      }
      case 'getSettings':
        return {
          nodeId: 'a'.repeat(64),
          nodeName: 'front-desk',
          joinCode: null,
          clusterId: null,
          pendingJoinCode: null,
          cores: 2,
          coresAvailable: 4,
          accepting: true,
          sharingAdjustable: true,
          peers: [],
          dataFolder: '/data',
          otherJobs: this.otherJobs,
        };
      case 'getStorage':
        return this.storage;
      case 'clearStorage': {
        const { parts } = input as UiInput<'clearStorage'>;
        let freedBytes = 0;
        this.storage = {
          parts: this.storage.parts.map((part) => {
            if (!(parts as readonly string[]).includes(part.name)) return part;
            freedBytes += part.bytes;
            return { ...part, bytes: 0, entries: 0 };
          }),
        };
        return { freedBytes, storage: this.storage };
      }
      default:
        throw new Error(`the fake engine does not answer ${name}`);
    }
  }
}
