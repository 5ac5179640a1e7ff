// The terminal progress bars of `deskgrid run`: done and failed counts, rate and time left, and
// once a second node takes part, one line per node (jobs done and running there), redrawn a few
// times a second from the batch's stats (never once per job).

import { MultiBar, type SingleBar } from 'cli-progress';
import type { Batch } from '../engine/index.js';

const REDRAW_INTERVAL_MS = 200;

const NODE_FORMAT = '  {bar} {name}: {done} done, {running} running';

export class ProgressDisplay {
  private readonly bars: MultiBar;
  private readonly bar: SingleBar;
  private readonly nodeBars = new Map<string, SingleBar>();
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly batch: Batch,
    stream: NodeJS.WriteStream,
    private readonly nameOf: (node: string) => string,
  ) {
    this.bars = new MultiBar({
      stream,
      format: '{bar} {value}/{totalText} jobs | {done} done, {failed} failed | {rate}/s | ETA {etaText}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      fps: 5,
    });
    this.bar = this.bars.create(1, 0, this.payload());
    this.timer = setInterval(() => this.redraw(), REDRAW_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.redraw();
    this.bars.stop();
  }

  private redraw(): void {
    const stats = this.batch.stats();
    const finished = stats.done + stats.failed + stats.timeout + stats.cancelled + stats.abandoned;
    const total = Math.max(stats.total ?? finished + stats.queued + stats.running, 1);
    this.bar.setTotal(total);
    this.bar.update(finished, this.payload());
    if (stats.nodes.length < 2) return;
    for (const node of stats.nodes) {
      const payload = { name: this.nameOf(node.node), done: node.done, running: node.running };
      const shown = node.done + node.failed;
      const bar = this.nodeBars.get(node.node);
      if (bar) {
        bar.setTotal(total);
        bar.update(shown, payload);
      } else {
        this.nodeBars.set(node.node, this.bars.create(total, shown, payload, { format: NODE_FORMAT }));
      }
    }
  }

  private payload() {
    const stats = this.batch.stats();
    const finished = stats.done + stats.failed + stats.timeout + stats.cancelled + stats.abandoned;
    const rate = stats.ratePerSecond;
    const left = stats.total === null ? null : stats.total - finished;
    return {
      totalText: stats.total === null ? '?' : String(stats.total),
      done: stats.done,
      failed: stats.failed + stats.timeout,
      rate: rate >= 10 ? Math.round(rate) : rate.toFixed(1),
      etaText: left === null || rate === 0 ? '?' : formatSeconds(left / rate),
    };
  }
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600)
    return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
