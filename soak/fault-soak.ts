// The fault soak: batches of short jobs run on a few `deskgrid node`s of one core (each in a
// network namespace of a private LAN: nothing leaves through this machine's interfaces) while a
// seeded schedule (schedule.ts) SIGKILLs and restarts nodes, cuts and restores their links,
// SIGKILLs the submitter and resumes its batch, and cancels jobs sent to the nodes. Each batch
// is judged when it ends (verdict.ts); batches follow each other until the schedule is dealt.
//
// `npm run soak` (soak/main.ts) runs a long one and prints one JSON line; a short one runs in the
// test suite (test/integration/fault-soak-netns.test.ts). Everything is bounded: each wait has a
// limit, the whole soak has a deadline, and the LAN is destroyed however the soak ends.

import Database from 'better-sqlite3';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateJoinCode } from '../shared/join-code.js';
import { createLan, type Lan } from '../test/support/netns.js';
import { FAULT_KINDS, makeSchedule, type Fault, type FaultKind } from './schedule.js';
import { SoakNode, SoakSubmitter, type SubmitterConfig } from './soak-processes.js';
import { FINDINGS, judge, type BatchVerdict, type Findings } from './verdict.js';

export interface SoakOptions {
  seed: number;
  /** Faults of each kind. */
  perKind: number;
  /** Nodes of one core each (the submitter gets a host of its own). */
  nodes: number;
  jobsPerBatch: number;
  /** How long each job sleeps. */
  jobMs: number;
  /** The soak gives up (and fails) after this long. */
  maxSeconds: number;
  /** Keep the work folder (logs, results) even when the soak passes. */
  keep?: boolean;
  /** Progress lines (faults dealt, batches judged); silent if absent. */
  progress?: (line: string) => void;
}

export interface SoakReport extends Findings {
  seed: number;
  nodes: number;
  faults: Record<FaultKind, number>;
  jobs: number;
  batches: number;
  seconds: number;
  cancelled: number;
  /** Submitter lives that ended because every node it used was lost (then resumed). */
  aborted: number;
  ok: boolean;
  /** Why the soak stopped early, if it did. */
  error?: string;
  /** The work folder, when kept. */
  folder?: string;
  examples?: string[];
}

/** A submitter drops a node it has not heard from for this long (peer-connection.ts). */
const SILENCE_MS = 3500;
/** No result and no fault for this long: the batch is stuck. */
const STALL_MS = 90_000;
const POLL_MS = 25;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class SoakError extends Error {}

/** Runs the soak and reports; never throws for what it finds, only for a LAN it cannot build. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const soak = new Soak(options);
  try {
    return await soak.run();
  } finally {
    await soak.close();
  }
}

class Soak {
  private readonly started = Date.now();
  private readonly work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-soak-')));
  private readonly secret = generateJoinCode();
  private readonly schedule: Fault[];
  private readonly dealt = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<
    FaultKind,
    number
  >;
  private lan: Lan | null = null;
  private nodes: SoakNode[] = [];
  /** Nodes whose link is cut for longer than the silence after which a submitter drops them. */
  private readonly longCuts = new Set<SoakNode>();
  /** Until when a submitter kill waits, for a cancel sent towards a cut-off node to play out. */
  private cutCancelUntil = 0;
  /** Restarts and link restores under way. */
  private readonly recoveries = new Set<Promise<void>>();
  private verdicts: BatchVerdict[] = [];
  private aborted = 0;
  private failed = false;

  constructor(private readonly options: SoakOptions) {
    this.schedule = makeSchedule({ seed: options.seed, perKind: options.perKind, nodes: options.nodes });
  }

  async run(): Promise<SoakReport> {
    const say = this.options.progress ?? (() => undefined);
    say(
      `soak: seed ${this.options.seed}, ${this.options.nodes} nodes, ${this.options.perKind} faults of each kind ` +
        `(${this.schedule.length} in all), ${this.options.jobsPerBatch} jobs of ${this.options.jobMs} ms per batch; ` +
        `work folder ${this.work}`,
    );
    writeFileSync(join(this.work, 'schedule.json'), `${JSON.stringify(this.schedule, null, 1)}\n`);
    let error: string | undefined;
    try {
      await this.setUp();
      let next = 0;
      for (let batch = 1; next < this.schedule.length; batch += 1) {
        next = await this.runBatch(batch, next);
      }
    } catch (caught) {
      this.failed = true;
      error = caught instanceof Error ? caught.message : String(caught);
      say(`soak: stopped: ${error}`);
    }
    return this.report(error);
  }

  async close(): Promise<void> {
    await this.lan?.destroy();
    if (!this.failed && !this.options.keep) rmSync(this.work, { recursive: true, force: true });
  }

  private async setUp(): Promise<void> {
    this.lan = await createLan(this.options.nodes + 1);
    const lan = this.lan;
    mkdirSync(join(this.work, 'logs'));
    writeFileSync(
      join(this.work, 'sleep.mjs'),
      `export default async (n) => {\n  await new Promise((resolve) => setTimeout(resolve, ${this.options.jobMs}));\n  return n;\n};\n`,
    );
    this.nodes = lan.hosts.slice(1).map((host, at) => {
      const home = join(this.work, `node-${at + 1}`);
      return new SoakNode(at + 1, host, lan, home, join(this.work, 'logs'), this.secret);
    });
    await Promise.all(this.nodes.map((node) => node.start()));
  }

  private checkDeadline(): void {
    if (Date.now() - this.started > this.options.maxSeconds * 1000) {
      throw new SoakError(`the soak ran past its ${this.options.maxSeconds} s limit`);
    }
  }

  /** One batch, with faults from `next` on until it ends; returns where the schedule stands. */
  private async runBatch(number: number, next: number): Promise<number> {
    const lan = this.lan;
    const host = lan?.hosts[0];
    if (lan === null || host === undefined) throw new SoakError('no LAN');
    const out = join(this.work, `batch-${number}`);
    const config: SubmitterConfig = {
      secret: this.secret,
      peers: this.nodes.map((node) => node.peer),
      computation: join(this.work, 'sleep.mjs'),
      jobs: this.options.jobsPerBatch,
      out,
      resume: false,
    };
    const home = join(this.work, 'submitter');
    const lives: SoakSubmitter[] = [];
    const seenInDatabase = new Map<number, number>();
    const start = () => {
      lives.push(
        new SoakSubmitter(
          lan,
          host,
          home,
          join(this.work, 'logs', `batch-${number}-submitter-${lives.length + 1}`),
          lives.length + 1,
          {
            ...config,
            resume: existsSync(join(out, 'batch.db')),
          },
        ),
      );
    };
    start();
    const current = (): SoakSubmitter => {
      const life = lives.at(-1);
      if (life === undefined) throw new SoakError('no submitter');
      return life;
    };
    const ended = () => current().life.ended === 'summary';
    let lastChange = Date.now();
    let lastCount = 0;
    /** Resumes a submitter that gave up (every node it used was lost); watches for a stall. */
    const tend = () => {
      this.checkDeadline();
      const life = current().life;
      const count = lives.reduce((sum, each) => sum + each.life.results.length, 0);
      if (count !== lastCount) {
        lastCount = count;
        lastChange = Date.now();
      }
      if (Date.now() - lastChange > STALL_MS) {
        throw new SoakError(
          `batch ${number} made no progress for ${STALL_MS / 1000} s (seed ${this.options.seed})`,
        );
      }
      if (life.ended === 'failed' && !current().alive) {
        // The one way a batch may stop short: every node it used was lost at once. It is resumed.
        if (!/every node was lost/.test(life.failure ?? '')) {
          throw new SoakError(
            `submitter life ${life.number} of batch ${number} failed: ${life.failure ?? '?'}`,
          );
        }
        this.aborted += 1;
        start();
      } else if (life.ended === null && !current().alive && life.killedAt === null) {
        throw new SoakError(
          `submitter life ${life.number} of batch ${number} died by itself (seed ${this.options.seed})`,
        );
      }
    };
    const wait = async (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until && !ended()) {
        tend();
        await sleep(POLL_MS);
      }
    };

    while (next < this.schedule.length && !ended()) {
      const fault = this.schedule[next] as Fault;
      await wait(fault.gapMs);
      if (ended()) break;
      // A fault with nothing to hit now (no job of this submitter runs on a node, the submitter
      // just ended) is dealt later, in the next batch if this one ends first.
      const dealt = await this.deal(fault, {
        current,
        tend,
        killSubmitter: async () => {
          // A cancel sent towards a cut-off node is left to play out: the submitter must drop the
          // node and still end the job `cancelled` (killing it first would void the cancel).
          await wait(this.cutCancelUntil - Date.now());
          const life = current();
          if (!life.alive || life.life.ended !== null) return false;
          await life.kill();
          const at = Date.now();
          for (const index of recordedIn(out)) if (!seenInDatabase.has(index)) seenInDatabase.set(index, at);
          await wait(fault.downMs);
          start();
          return true;
        },
      });
      if (dealt) next += 1;
    }
    while (!ended()) await wait(1000);
    await current().life.exited;
    await this.recover();

    const key = lives.find((life) => life.life.key !== null)?.life.key ?? null;
    const verdict = judge({
      jobs: this.options.jobsPerBatch,
      lives: lives.map((life) => life.life),
      events: this.nodes.flatMap((node) => node.events.filter((event) => event.batch === key)),
      final: readResults(out),
      seenInDatabase,
    });
    this.verdicts.push(verdict);
    this.options.progress?.(
      `soak: batch ${number} judged after ${lives.length} submitter lives: ${JSON.stringify({ ...verdict, examples: undefined })}` +
        `; faults dealt ${JSON.stringify(this.dealt)}`,
    );
    return next;
  }

  /** Waits until every killed node runs again and every cut link is back. */
  private async recover(): Promise<void> {
    while (this.recoveries.size > 0) await Promise.all([...this.recoveries]);
  }

  private async deal(
    fault: Fault,
    batch: { current: () => SoakSubmitter; tend: () => void; killSubmitter: () => Promise<boolean> },
  ): Promise<boolean> {
    if (fault.kind === 'submitterKill') {
      const killed = await batch.killSubmitter();
      if (killed) this.count(fault, {});
      return killed;
    }
    if (fault.kind === 'cancel') {
      const submitter = batch.current();
      const key = submitter.life.key;
      if (key === null || !submitter.alive || submitter.life.ended !== null) return false;
      // A job this life sent to a node and has no result for: on its way, queued there, or
      // running (the nodes' logs lag too much on a loaded machine to aim at running ones only).
      const recorded = new Set(submitter.life.results.map((result) => result.index));
      const asked = new Set(submitter.life.cancels.map((cancel) => cancel.index));
      const candidates = [...new Set(submitter.life.dispatches.map((dispatch) => dispatch.index))].filter(
        (index) => !recorded.has(index) && !asked.has(index),
      );
      // Half the cancels go, where there is one, to a job sent to a node whose link is cut for
      // long enough that the submitter will drop the node: the cancel cannot reach it, and the
      // job must not run again elsewhere.
      const sentTo = new Map(submitter.life.dispatches.map((dispatch) => [dispatch.index, dispatch.node]));
      const cut = new Set(this.nodes.filter((node) => this.longCuts.has(node)).map((node) => node.id));
      const cutOff = candidates.filter((job) => cut.has(sentTo.get(job) ?? ''));
      const index =
        fault.pick < 0.5 && cutOff.length > 0
          ? cutOff[Math.floor(fault.pick * 2 * cutOff.length)]
          : candidates[Math.floor(fault.pick * candidates.length)];
      if (index === undefined) return false;
      // Counted once accepted: a cancel that lost the race to its job's end is tried again.
      const accepted = await submitter.cancel(index);
      if (accepted && cutOff.includes(index)) this.cutCancelUntil = Date.now() + 2 * SILENCE_MS;
      if (accepted) this.count(fault, { job: index });
      return accepted;
    }
    const node = await this.target(fault.node, batch.tend);
    if (fault.kind === 'nodeKill') {
      await node.kill();
      this.track(
        sleep(fault.downMs).then(() =>
          node.start().catch((error: unknown) => {
            throw new SoakError(`node ${node.number} did not come back: ${String(error)}`);
          }),
        ),
      );
    } else {
      const lan = this.lan;
      if (lan === null) throw new SoakError('no LAN');
      node.state = 'cut';
      await lan.linkDown(node.host);
      if (fault.downMs > SILENCE_MS) this.longCuts.add(node);
      this.track(
        sleep(fault.downMs)
          .then(() => lan.linkUp(node.host))
          .then(() => {
            node.state = 'up';
            this.longCuts.delete(node);
          }),
      );
    }
    this.count(fault, { node: node.number });
    return true;
  }

  /** Counts a fault dealt, and notes when and what it hit in faults.jsonl, for a post-mortem. */
  private count(fault: Fault, hit: Record<string, number>): void {
    this.dealt[fault.kind] += 1;
    const line = { t: Date.now(), kind: fault.kind, downMs: fault.downMs, ...hit };
    appendFileSync(join(this.work, 'faults.jsonl'), `${JSON.stringify(line)}\n`);
  }

  private track(recovery: Promise<void>): void {
    const tracked: Promise<void> = recovery.finally(() => this.recoveries.delete(tracked));
    tracked.catch(() => undefined);
    this.recoveries.add(tracked);
  }

  /**
   * The node a node fault hits: the scheduled one if it is up, else the next one up. At least two
   * nodes stay up, so that a submitter always has somewhere to run: with fewer, the fault waits.
   */
  private async target(wanted: number, tend: () => void): Promise<SoakNode> {
    for (;;) {
      tend();
      const up = this.nodes.filter((node) => node.state === 'up');
      if (up.length > 2) {
        for (let step = 0; step < this.nodes.length; step += 1) {
          const node = this.nodes[(wanted + step) % this.nodes.length];
          if (node?.state === 'up') return node;
        }
      }
      await sleep(POLL_MS);
    }
  }

  private report(error: string | undefined): SoakReport {
    const sum = (pick: (verdict: BatchVerdict) => number) =>
      this.verdicts.reduce((total, verdict) => total + pick(verdict), 0);
    const findings = Object.fromEntries(FINDINGS.map((name) => [name, sum((v) => v[name])])) as Findings;
    const report: SoakReport = {
      seed: this.options.seed,
      nodes: this.options.nodes,
      faults: { ...this.dealt },
      jobs: sum((v) => v.jobs),
      batches: this.verdicts.length,
      seconds: Math.round((Date.now() - this.started) / 100) / 10,
      ...findings,
      cancelled: sum((v) => v.cancelled),
      aborted: this.aborted,
      ok: false,
    };
    const clean = FINDINGS.every((name) => findings[name] === 0);
    report.ok = error === undefined && clean;
    if (!report.ok) this.failed = true;
    if (error !== undefined) report.error = error;
    if (this.failed || this.options.keep) report.folder = this.work;
    const examples = this.verdicts.flatMap((verdict) => verdict.examples);
    if (examples.length > 0) report.examples = examples.slice(0, 20);
    return report;
  }
}

/** Indices committed in a batch's batch.db (read while no submitter has it open). */
function recordedIn(out: string): number[] {
  const file = join(out, 'batch.db');
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare<[], { idx: number }>('SELECT idx FROM results')
      .all()
      .map((row) => row.idx);
  } finally {
    db.close();
  }
}

/** results.jsonl of a batch: index and status of each line. */
function readResults(out: string): Array<{ index: number; status: string }> {
  const file = join(out, 'results.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const result = JSON.parse(line) as { index: number; status: string };
      return { index: result.index, status: result.status };
    });
}
