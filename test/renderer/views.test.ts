// The views as the user meets them, mounted in happy-dom over a stand-in engine: names and roles
// (what a screen reader and the end-to-end test find), order, and the virtualized results table.

import { flushSync, mount, unmount, type Component } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeInfo } from '../../shared/ui-api.js';
import { AppState } from '../../renderer/src/lib/app-state.svelte.js';
import BatchView from '../../renderer/src/views/BatchView.svelte';
import NodesView from '../../renderer/src/views/NodesView.svelte';
import ResultsView from '../../renderer/src/views/ResultsView.svelte';
import SettingsView from '../../renderer/src/views/SettingsView.svelte';
import SubmitView from '../../renderer/src/views/SubmitView.svelte';
import StoragePanel from '../../renderer/src/components/StoragePanel.svelte';
import ThroughputChart from '../../renderer/src/components/ThroughputChart.svelte';
import { FakeEngine, batchInfo } from './fake-engine.js';

let mounted: ReturnType<typeof mount> | null = null;

afterEach(() => {
  if (mounted) void unmount(mounted);
  mounted = null;
  document.body.innerHTML = '';
});

function show(component: Component<{ app: AppState }>, app: AppState): HTMLElement {
  const target = document.createElement('div');
  document.body.append(target);
  mounted = mount(component, { target, props: { app } });
  flushSync();
  return target;
}

async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn += 1) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    flushSync();
  }
}

function node(overrides: Partial<NodeInfo>): NodeInfo {
  return {
    id: 'x'.repeat(64),
    name: 'node',
    os: 'linux',
    cores: 4,
    busy: 1,
    state: 'trusted',
    inUse: true,
    addresses: ['10.0.0.2'],
    running: 1,
    done: 10,
    failed: 2,
    ratePerSecond: 3.5,
    lastSeen: Date.now(),
    ...overrides,
  };
}

describe('NodesView', () => {
  it('shows a card per node in the given order, with its state and counts, live', () => {
    const app = new AppState(new FakeEngine(0));
    app.nodes = [
      node({ id: 'a'.repeat(64), name: 'front-desk', state: 'this computer', lastSeen: null }),
      node({ id: 'b'.repeat(64), name: 'lab-pc' }),
      node({ id: 'c'.repeat(64), name: 'old-pc', state: 'other cluster', inUse: false }),
    ];
    const view = show(NodesView, app);
    const cards = [...view.querySelectorAll('article')];
    expect(cards.map((card) => card.getAttribute('aria-label'))).toEqual(['front-desk', 'lab-pc', 'old-pc']);
    expect(cards[0]?.textContent).toContain('This computer');
    expect(cards[1]?.textContent).toContain('In use');
    expect(cards[2]?.textContent).toContain('Other cluster');
    expect(cards[1]?.querySelectorAll('.core.busy')).toHaveLength(1);
    expect(view.textContent).toContain('2 computers sharing 8 cores');
    app.nodes = [node({ id: 'b'.repeat(64), name: 'lab-pc', done: 11 })];
    flushSync();
    expect(view.querySelectorAll('article')).toHaveLength(1);
    expect(view.querySelector('article dd.ok')?.textContent).toBe('11');
  });

  it('says why a node in use shares nothing now, and until when, on its card', () => {
    const app = new AppState(new FakeEngine(0));
    const at18 = new Date();
    at18.setHours(at18.getHours() + 2, 0, 0, 0);
    const hour = String(at18.getHours()).padStart(2, '0');
    app.nodes = [
      node({ id: 'b'.repeat(64), name: 'lab-pc', cores: 0, busy: 0 }),
      node({
        id: 'c'.repeat(64),
        name: 'vm',
        cores: 0,
        busy: 0,
        notSharing: { reason: 'outside-hours', until: at18.getTime() },
      }),
    ];
    const view = show(NodesView, app);
    const [plain, idle] = [...view.querySelectorAll('article')];
    expect(plain?.querySelector('[role="status"]')).toBeNull();
    expect(idle?.querySelector('[role="status"]')?.textContent).toBe(
      `Shares nothing now: outside its sharing hours until ${hour}:00`,
    );
  });
});

describe('node names', () => {
  it('shows the short id beside the name of computers that share one, everywhere', () => {
    const engine = new FakeEngine(3);
    const app = new AppState(engine);
    app.nodes = [
      node({ id: `3f9a1c2e${'0'.repeat(56)}`, name: 'vm', state: 'this computer', lastSeen: null }),
      node({ id: `77b0d4e1${'0'.repeat(56)}`, name: 'vm' }),
      node({ id: 'c'.repeat(64), name: 'lab-pc' }),
    ];
    const view = show(NodesView, app);
    expect([...view.querySelectorAll('article')].map((card) => card.getAttribute('aria-label'))).toEqual([
      'vm (3f9a-1c2e)',
      'vm (77b0-d4e1)',
      'lab-pc',
    ]);
    expect(view.querySelector('article h2')?.textContent).toBe('vm (3f9a-1c2e)');
    // A name that no longer collides is shown alone again.
    app.nodes = [node({ id: `77b0d4e1${'0'.repeat(56)}`, name: 'vm' })];
    flushSync();
    expect(view.querySelector('article')?.getAttribute('aria-label')).toBe('vm');
  });
});

describe('StoragePanel', () => {
  it('shows what the data folder keeps with its bounds, and clears only what may be cleared', async () => {
    const engine = new FakeEngine(0);
    const part = { maxAgeDays: 7, inUseEntries: 0, clearable: true };
    engine.storage = {
      parts: [
        { ...part, name: 'kept', bytes: 3 * 1024 ** 2, entries: 12, maxBytes: 1024 ** 3, clearable: false },
        { ...part, name: 'files', bytes: 1536, entries: 2, maxBytes: 4 * 1024 ** 3 },
        { ...part, name: 'uploads', bytes: 2048, entries: 1, maxBytes: 4 * 1024 ** 3, inUseEntries: 1 },
      ],
    };
    const view = show(StoragePanel, new AppState(engine));
    await settle();
    const items = [...view.querySelectorAll('[aria-label="Storage"] li')];
    expect(items.map((item) => item.getAttribute('aria-label'))).toEqual([
      'Results kept for absent submitters',
      'Input files other submitters sent',
      'Uploaded scripts and datasets',
    ]);
    expect(items[0]?.textContent).toContain('3.0 MB in 12 items');
    expect(items[0]?.textContent).toContain('Up to 1.0 GB; gone after 7 days unused');
    expect(items[0]?.querySelector('button')).toBeNull();
    expect(items[2]?.textContent).toContain('1 item in use');
    const clear = view.querySelector<HTMLButtonElement>(
      'button[aria-label="Clear input files other submitters sent"]',
    );
    clear?.click();
    await settle();
    expect(engine.calls.filter((call) => call.name === 'clearStorage').map((call) => call.input)).toEqual([
      { parts: ['files'] },
    ]);
    expect(view.querySelector('[role="status"]')?.textContent).toBe('Freed 1.5 KB.');
    expect(items[1]?.textContent).toContain('0 B in 0 items');
    expect(clear?.disabled).toBe(true);
  });
});

describe('ThroughputChart', () => {
  it('draws an ended batch across the whole chart, however short', () => {
    const target = document.createElement('div');
    document.body.append(target);
    mounted = mount(ThroughputChart, {
      target,
      props: {
        samples: [
          { at: 0, rate: 40 },
          { at: 0.4, rate: 40 },
        ],
        ended: true,
      },
    });
    flushSync();
    expect(target.querySelector('polyline')).not.toBeNull();
    expect(target.textContent).not.toContain('Measuring');
    expect(target.textContent).toContain('0.4 s');
  });
});

describe('SubmitView', () => {
  it('offers a Script and a Dataset input and a Run button that waits for a script', () => {
    const view = show(SubmitView, new AppState(new FakeEngine(0)));
    const inputs = [...view.querySelectorAll('input[type="file"]')].map((input) =>
      input.getAttribute('aria-label'),
    );
    expect(inputs).toEqual(['Script', 'Script folder', 'Dataset', 'Dataset folder']);
    const run = [...view.querySelectorAll('button')].find((button) => button.textContent?.trim() === 'Run');
    expect(run?.disabled).toBe(true);
    expect(view.querySelector('[aria-label="Script drop zone"]')).not.toBeNull();
  });
});

describe('BatchView', () => {
  it('cancels a running batch, and offers no Cancel once it ended', async () => {
    const engine = new FakeEngine(0);
    let cancelled = '';
    const answer = engine.call.bind(engine);
    engine.call = (name, input) => {
      if (name === 'cancelBatch') {
        cancelled = (input as { batchId: string }).batchId;
        return Promise.resolve({ batch: batchInfo({ state: 'cancelling' }) });
      }
      return answer(name, input);
    };
    const app = new AppState(engine);
    app.apply({
      type: 'batch',
      batch: batchInfo({
        done: 25_000,
        total: 100_000,
        perNode: { n1: { done: 25_000, failed: 0, running: 2 } },
      }),
    });
    const view = show(BatchView, app);
    expect(view.querySelector('[role="progressbar"]')?.getAttribute('aria-valuetext')).toBe('25%');
    expect(view.querySelector('[data-testid="finished-count"]')?.textContent).toBe('25 000');
    const cancel = [...view.querySelectorAll('button')].find(
      (button) => button.textContent?.trim() === 'Cancel',
    );
    expect(cancel?.disabled).toBe(false);
    cancel?.click();
    await settle();
    expect(cancelled).toBe('b1');
    app.apply({ type: 'batch', batch: batchInfo({ state: 'ended', endedAt: Date.now(), cancelled: 5 }) });
    flushSync();
    expect(cancel?.disabled).toBe(true);
    expect(view.querySelector('[data-testid="cancelled-count"]')?.textContent).toBe('5');
  });

  it('says why a batch failed, with its error code', () => {
    const app = new AppState(new FakeEngine(0));
    const error = 'numbers.jsonl: line 31 is not valid JSON';
    app.apply({
      type: 'batch',
      batch: batchInfo({ state: 'failed', endedAt: Date.now(), error, errorCode: 'DG_ERR_DATASET' }),
    });
    const view = show(BatchView, app);
    const alert = [...view.querySelectorAll('[role="alert"]')].find((node) =>
      node.textContent?.includes(error),
    );
    expect(alert?.querySelector('[aria-label="Error code"]')?.textContent).toBe('DG_ERR_DATASET');
  });

  it('cancels one job in progress', async () => {
    const engine = new FakeEngine(0);
    const calls: unknown[] = [];
    const answer = engine.call.bind(engine);
    engine.call = (name, input) => {
      if (name === 'cancelJob') {
        calls.push(input);
        return Promise.resolve({ cancelled: true });
      }
      return answer(name, input);
    };
    const app = new AppState(engine);
    app.apply({ type: 'batch', batch: batchInfo({ total: 10 }) });
    app.jobProgress = { 3: { fraction: 0.5, note: 'half way' } };
    const view = show(BatchView, app);
    const button = view.querySelector<HTMLButtonElement>('[aria-label="Cancel job 3"]');
    expect(button).not.toBeNull();
    button?.click();
    await settle();
    expect(calls).toEqual([{ batchId: 'b1', index: 3 }]);
  });
});

describe('ResultsView', () => {
  it('puts 100 000 results in a real table that renders only the rows in view', async () => {
    const engine = new FakeEngine(100_000);
    const app = new AppState(engine);
    app.apply({
      type: 'batch',
      batch: batchInfo({ state: 'ended', endedAt: Date.now(), done: 90_000, failed: 10_000 }),
    });
    const view = show(ResultsView, app);
    await settle();
    const table = view.querySelector('table');
    expect(table?.getAttribute('aria-rowcount')).toBe('100001');
    const rows = view.querySelectorAll('tbody tr:not(.spacer)');
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(100);
    expect([...view.querySelectorAll('th')].map((th) => th.textContent)).toEqual([
      '#',
      'Status',
      'Input',
      'Value or error',
      'Node',
      'Time',
    ]);
    expect(view.textContent).toContain('100 000 results');
    // Scrolled to the middle: the rows there are fetched and shown, still only a screenful.
    const scroller = view.querySelector<HTMLElement>('.scroller');
    if (!scroller) throw new Error('no scroller');
    scroller.scrollTop = 50_000 * 34;
    scroller.dispatchEvent(new Event('scroll'));
    await settle();
    const shown = [...view.querySelectorAll('tbody tr:not(.spacer) td:first-child')].map((cell) =>
      Number(cell.textContent),
    );
    expect(shown).toContain(50_000);
    expect(shown.length).toBeLessThan(100);
    // The first page, then the two pages around row 50 000: nothing in between.
    expect(
      engine.calls
        .filter((call) => call.name === 'getResults')
        .map((call) => (call.input as { offset: number }).offset),
    ).toEqual([0, 49_800, 50_000]);
  });

  it('sorts a finished batch by job index and a running one in finish order, or as the user picks', async () => {
    const engine = new FakeEngine(500);
    const app = new AppState(engine);
    app.apply({ type: 'batch', batch: batchInfo({ state: 'running', total: 500 }) });
    const view = show(ResultsView, app);
    await settle();
    const orders = () =>
      engine.calls
        .filter((call) => call.name === 'getResults')
        .map((call) => (call.input as { order?: string }).order ?? 'finished');
    expect(orders()).toEqual(['finished']);
    app.apply({ type: 'batch', batch: batchInfo({ state: 'ended', endedAt: Date.now(), done: 500 }) });
    await settle();
    expect(orders()).toEqual(['finished', 'index']);
    const select = view.querySelector<HTMLSelectElement>('select[aria-label="Order"]');
    expect(select?.value).toBe('index');
    if (!select) throw new Error('no order select');
    select.value = 'finished';
    select.dispatchEvent(new Event('change', { bubbles: true }));
    await settle();
    expect(orders()).toEqual(['finished', 'index', 'finished']);
  });
});

describe('SettingsView', () => {
  it('adds manual peers in the form the node reads, the port filled in, and says why one is wrong', async () => {
    const app = new AppState(new FakeEngine(0));
    const view = show(SettingsView, app);
    await settle();
    const input = [...view.querySelectorAll('label')]
      .find((label) => label.textContent?.includes('Peer address'))
      ?.querySelector('input');
    const form = input?.closest('form');
    if (!input || !form) throw new Error('no peer field');
    const add = (text: string) => {
      input.value = text;
      input.dispatchEvent(new Event('input'));
      form.dispatchEvent(new Event('submit', { cancelable: true }));
      flushSync();
    };
    add('office-pc');
    add('[fe80::2]:9000');
    add('office-pc:7717');
    expect([...view.querySelectorAll('.peers li .mono')].map((item) => item.textContent)).toEqual([
      'office-pc:7717',
      '[fe80::2]:9000',
    ]);
    add('a:b:c');
    expect(view.querySelector('[role="alert"]')?.textContent).toMatch(/^invalid peer "a:b:c": /);
    expect(view.querySelectorAll('.peers li')).toHaveLength(2);
  });

  it("shows how other people's jobs run here, and saves the owner's two choices for the next start", async () => {
    const engine = new FakeEngine(0);
    engine.otherJobs = { ...engine.otherJobs, network: false, savedNetwork: false };
    const view = show(SettingsView, new AppState(engine));
    await settle();
    const status = () => view.querySelector('.jobs-status')?.textContent;
    expect(status()).toBe("Other people's jobs: confined (bubblewrap), network off");
    // Where jobs are confined, refusing or accepting unconfined ones is no question.
    expect(view.querySelector('select[aria-label="Jobs that cannot be confined"]')).toBeNull();
    const network = [...view.querySelectorAll('label')]
      .find((label) => label.textContent?.includes('use the network'))
      ?.querySelector('input');
    if (!network) throw new Error('no job network switch');
    expect(network.checked).toBe(false);
    network.click();
    await settle();
    expect(engine.calls.filter((call) => call.name === 'setSettings').map((call) => call.input)).toEqual([
      { jobNetwork: true },
    ]);
    expect(view.textContent).toContain('take effect when this node restarts');

    const refusing = new FakeEngine(0);
    refusing.otherJobs = {
      ...refusing.otherJobs,
      mode: 'refused',
      warning: "this node cannot confine other people's jobs (no bubblewrap), so it refuses them",
    };
    if (mounted) void unmount(mounted);
    const second = show(SettingsView, new AppState(refusing));
    await settle();
    expect(second.querySelector('.jobs-status')?.textContent).toBe(
      "Other people's jobs: cannot be confined here: refused",
    );
    expect(second.textContent).toContain('no bubblewrap');
    const policy = second.querySelector<HTMLSelectElement>(
      'select[aria-label="Jobs that cannot be confined"]',
    );
    if (!policy) throw new Error('no unconfined choice');
    expect(policy.value).toBe('refuse');
    policy.value = 'accept';
    policy.dispatchEvent(new Event('change', { bubbles: true }));
    await settle();
    expect(refusing.calls.filter((call) => call.name === 'setSettings').map((call) => call.input)).toEqual([
      { unconfinedJobs: 'accept' },
    ]);
    expect(second.textContent).toContain('run unconfined');
  });
});
