// The rows of the results table, fetched a page at a time as the user scrolls, so that a batch of
// 100 000 results costs only the rows on screen. A change of filter or search starts over.

import type { DeskGridApi, ResultOrder, ResultRow, UiInput } from '../../../shared/ui-api.js';
import { errorText } from './api.js';

export const PAGE_SIZE = 200;
export type StatusFilter = 'all' | ResultRow['status'];

export class ResultsTable {
  batchId = $state<string | null>(null);
  status = $state<StatusFilter>('all');
  search = $state('');
  order = $state<ResultOrder>('finished');
  /** Rows that match the filter, and rows of the batch. */
  matching = $state(0);
  total = $state(0);
  error = $state<string | null>(null);
  /** Bumped when a page arrives, so that rows re-render. */
  version = $state(0);
  // Plain maps on purpose: pages are many and large, and `version` tells the views of changes.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private pages = new Map<number, ResultRow[]>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private loading = new Map<number, Promise<void>>();
  /** Answers to an older query are dropped. */
  private generation = 0;

  constructor(private readonly api: DeskGridApi) {}

  /** Shows another batch or filter: forgets every page and loads the first. */
  reset(
    batchId: string | null,
    status: StatusFilter,
    search: string,
    order: ResultOrder = 'finished',
  ): Promise<void> {
    this.batchId = batchId;
    this.status = status;
    this.search = search;
    this.order = order;
    this.generation += 1;
    this.pages.clear();
    this.loading.clear();
    this.matching = 0;
    this.total = 0;
    this.version += 1;
    return this.load(0);
  }

  /** The row at a position, when its page has arrived. */
  rowAt(position: number): ResultRow | undefined {
    void this.version;
    return this.pages.get(Math.floor(position / PAGE_SIZE))?.[position % PAGE_SIZE];
  }

  /** Loads the pages that hold rows first..last (inclusive) that are not loaded yet. */
  ensure(first: number, last: number): Promise<void> {
    const pages: Promise<void>[] = [];
    for (let page = Math.floor(first / PAGE_SIZE); page <= Math.floor(last / PAGE_SIZE); page += 1) {
      if (!this.pages.has(page)) pages.push(this.load(page));
    }
    return Promise.all(pages).then(() => undefined);
  }

  /**
   * New results arrived: reloads the counts and the pages in view. In finish order rows only get
   * added at the end; by index they land anywhere, so every page out of view is stale.
   */
  refresh(first: number, last: number): Promise<void> {
    const pages = [0];
    for (
      let page = Math.max(1, Math.floor(first / PAGE_SIZE));
      page <= Math.floor(last / PAGE_SIZE);
      page += 1
    ) {
      pages.push(page);
    }
    // Pages out of view may have grown too: a partial one is fetched again when next shown.
    for (const [page, rows] of this.pages) {
      if (rows.length < PAGE_SIZE || (this.order === 'index' && !pages.includes(page)))
        this.pages.delete(page);
    }
    return Promise.all(pages.map((page) => this.load(page, true))).then(() => undefined);
  }

  private load(page: number, force = false): Promise<void> {
    const batchId = this.batchId;
    if (batchId === null) return Promise.resolve();
    const pending = this.loading.get(page);
    if (pending && !force) return pending;
    const generation = this.generation;
    const query: UiInput<'getResults'> = { batchId, offset: page * PAGE_SIZE, limit: PAGE_SIZE };
    if (this.status !== 'all') query.status = this.status;
    if (this.search.trim() !== '') query.search = this.search.trim();
    if (this.order !== 'finished') query.order = this.order;
    const loading = this.api.call('getResults', query).then(
      (answer) => {
        if (generation !== this.generation) return;
        this.pages.set(page, answer.rows);
        this.matching = answer.matching;
        this.total = answer.total;
        this.error = null;
        this.version += 1;
      },
      (error: unknown) => {
        if (generation === this.generation) this.error = errorText(error);
      },
    );
    const tracked = loading.finally(() => {
      if (this.loading.get(page) === tracked) this.loading.delete(page);
    });
    this.loading.set(page, tracked);
    return tracked;
  }
}
