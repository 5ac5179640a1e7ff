// How many jobs a submitter keeps queued on a node ahead of its cores, so that none waits for
// the network: enough to cover about PIPELINE_TARGET_MS of work per core, from the jobs'
// measured durations (an EWMA), and never more than MAX_DEPTH_PER_CORE. Jobs longer than that
// keep up to QUEUE_TARGET_MS of work queued per core beside the running one (at least one job,
// at most MAX_QUEUED_PER_CORE): the node is topped up once half of it is free (remote-node.ts),
// so 50 ms jobs then travel two to a `run` message instead of one. A message per job cost the
// node a wakeup and a journal transaction for each (the office bench's 50 ms jobs); jobs of
// QUEUE_TARGET_MS or more still wait at most one behind the running one.

const PIPELINE_TARGET_MS = 8;
const MAX_DEPTH_PER_CORE = 64;
const QUEUE_TARGET_MS = 150;
const MAX_QUEUED_PER_CORE = 3;

export class PipelineDepth {
  private durationEwmaMs: number | null = null;

  /** A job ran this long on the node. */
  observe(durationMs: number): void {
    this.durationEwmaMs =
      this.durationEwmaMs === null ? durationMs : this.durationEwmaMs * 0.8 + durationMs * 0.2;
  }

  /** Jobs the node should hold at once, queued and running, given the cores it shares. */
  capacity(cores: number): number {
    if (cores === 0) return 0;
    const average = this.durationEwmaMs;
    if (average === null) return cores * 2;
    if (average >= PIPELINE_TARGET_MS) {
      const queued = Math.max(1, Math.min(MAX_QUEUED_PER_CORE, Math.floor(QUEUE_TARGET_MS / average)));
      return cores * (1 + queued);
    }
    const depth = Math.ceil(PIPELINE_TARGET_MS / Math.max(average, 0.05));
    return cores * Math.min(MAX_DEPTH_PER_CORE, Math.max(1, depth));
  }
}
