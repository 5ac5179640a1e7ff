// The jobs one submitter's session holds on this node, each described by one record: the pool's
// task, the submitter's id for it, the journal's name for it when its batch asked for its result
// to be kept, and whether it waits in the queue or runs. Queued jobs keep their arrival order;
// the scheduler takes them from the front (or the first one whose computation has room).

import type { Task } from '../pool/task.js';
import type { Tenancy } from '../pool/tenancy.js';
import type { JobRef } from './kept-results.js';

export interface SessionJob {
  readonly task: Task;
  /** The submitter's id for the job (from its `run`): every answer names the job by it. */
  readonly remoteId: number;
  /** The journal's name for the job, when its batch asked for results that outlive the connection. */
  readonly keep: JobRef | null;
  state: 'queued' | 'running';
}

export class SessionJobs {
  private readonly queue: SessionJob[] = [];
  /** Every job held, queued or running, by its task's id. */
  private readonly byTask = new Map<number, SessionJob>();
  private runningCount = 0;

  get queued(): number {
    return this.queue.length;
  }

  get running(): number {
    return this.runningCount;
  }

  get empty(): boolean {
    return this.byTask.size === 0;
  }

  get(task: Task): SessionJob | undefined {
    const job = this.byTask.get(task.id);
    return job?.task === task ? job : undefined;
  }

  all(): IterableIterator<SessionJob> {
    return this.byTask.values();
  }

  /** A new job at the back of the queue. */
  enqueue(job: SessionJob): void {
    job.state = 'queued';
    this.queue.push(job);
    this.byTask.set(job.task.id, job);
  }

  /** A running job whose worker gave it back untried: first in line again. */
  requeue(job: SessionJob): void {
    if (job.state === 'running') this.runningCount -= 1;
    job.state = 'queued';
    this.queue.unshift(job);
    this.byTask.set(job.task.id, job);
  }

  /** Takes the first queued job `fits` accepts (any, without `fits`), marking it running. */
  take(fits?: (tenancy: Tenancy) => boolean): SessionJob | undefined {
    const at = fits === undefined ? 0 : this.firstFitting(fits);
    const job = this.queue[at];
    if (!job) return undefined;
    this.queue.splice(at, 1);
    job.state = 'running';
    this.runningCount += 1;
    return job;
  }

  /** Forgets a job (it ended, or was cancelled or given back). */
  remove(job: SessionJob): void {
    if (this.byTask.get(job.task.id) !== job) return;
    this.byTask.delete(job.task.id);
    if (job.state === 'running') this.runningCount -= 1;
    else this.queue.splice(this.queue.indexOf(job), 1);
  }

  /** The job the submitter names `remoteId`, queued or running. */
  byRemoteId(remoteId: number): SessionJob | undefined {
    for (const job of this.byTask.values()) if (job.remoteId === remoteId) return job;
    return undefined;
  }

  /** Empties the queue (running jobs stay) and returns what it held. */
  takeQueued(): SessionJob[] {
    const queued = this.queue.splice(0);
    for (const job of queued) this.byTask.delete(job.task.id);
    return queued;
  }

  /** Index of the first queued job `fits` accepts (-1: none); asked once per computation. */
  private firstFitting(fits: (tenancy: Tenancy) => boolean): number {
    const refused = new Set<Tenancy>();
    for (const [at, job] of this.queue.entries()) {
      const tenancy = job.task.tenancy;
      if (tenancy === undefined || refused.has(tenancy)) continue;
      if (fits(tenancy)) return at;
      refused.add(tenancy);
    }
    return -1;
  }
}
