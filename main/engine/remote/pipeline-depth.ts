// How many jobs a submitter keeps queued on a node ahead of its cores, so that none waits for
// the network: enough to cover about PIPELINE_TARGET_MS of work per core, from the jobs'
// measured durations (an EWMA), and never more than MAX_DEPTH_PER_CORE.

const PIPELINE_TARGET_MS = 8;
const MAX_DEPTH_PER_CORE = 64;

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
    const depth = Math.ceil(PIPELINE_TARGET_MS / Math.max(average, 0.05));
    return (
      cores * Math.min(MAX_DEPTH_PER_CORE, Math.max(1, depth)) + (average >= PIPELINE_TARGET_MS ? cores : 0)
    );
  }
}
