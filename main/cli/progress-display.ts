// The terminal progress bar of `deskgrid run`: done and failed counts, rate and time left,
// redrawn a few times a second from the batch's stats (never once per job).

import { SingleBar } from 'cli-progress';
import type { Batch } from '../engine/batch.js';

const REDRAW_INTERVAL_MS = 200;

export class ProgressDisplay {
  private readonly bar: SingleBar;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly batch: Batch,
    stream: NodeJS.WriteStream,
  ) {
    this.bar = new SingleBar({
      stream,
      format: '{bar} {value}/{totalText} jobs | {done} done, {failed} failed | {rate}/s | ETA {etaText}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      fps: 5,
    });
    this.bar.start(1, 0, this.payload());
    this.timer = setInterval(() => this.redraw(), REDRAW_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.redraw();
    this.bar.stop();
  }

  private redraw(): void {
    const stats = this.batch.stats();
    const finished = stats.done + stats.failed + stats.timeout + stats.cancelled + stats.abandoned;
    const total = stats.total ?? finished + stats.queued + stats.running;
    this.bar.setTotal(Math.max(total, 1));
    this.bar.update(finished, this.payload());
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
