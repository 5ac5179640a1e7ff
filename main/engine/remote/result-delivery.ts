// How a job's end reaches its submitter, on the node's side of a session: in the result's own
// frame, or as a chunked stream for a large one (result-packing.ts decides). A result of a batch
// that asked for it waits in the node's journal until the submitter acknowledges it; with the
// submitter gone, it goes to the journal, and on to a connection of the same submitter that
// claimed its batch. Small results ending in the same turn leave as one message
// (result-coalescer.ts).

import type { ResultMessage } from '../../../shared/worker-protocol.js';
import type { RemoteResult } from '../../../shared/wire-protocol.js';
import { createLogger } from '../log.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import type { ChunkStreams } from './chunk-streams.js';
import type { JobRef, KeptResults, KeptRow } from './kept-results.js';
import { ResultCoalescer } from './result-coalescer.js';
import { packResult, type PackedResult } from './result-packing.js';
import type { SessionJob } from './session-jobs.js';

const log = createLogger('session');

/** What the delivery needs of its session. */
export interface DeliveryLine {
  connection: PeerConnection;
  streams: ChunkStreams;
  kept: KeptResults;
  /** Largest frame the submitter accepts. */
  maxResultBytes: number;
  /** connected; ended (the connection is gone); detached (gone, and jobs of kept batches run on). */
  state(): 'connected' | 'ended' | 'detached';
  /** The live connection of the same submitter that claimed this batch, if any. */
  adopterOf(batch: string): { sendKept(row: KeptRow): void } | undefined;
}

/**
 * A result sent and not yet acknowledged: its copy waits in the journal under `key` (null when
 * the journal had no room: then the job is reported lost if the submitter vanishes first).
 */
interface Unacked {
  ref: JobRef;
  key: number | null;
}

export class ResultDelivery {
  private readonly unacked = new Map<number, Unacked>();
  private readonly coalescer: ResultCoalescer;

  constructor(private readonly line: DeliveryLine) {
    this.coalescer = new ResultCoalescer((header, body) => line.connection.send(header, body));
  }

  /** Sends the small results held for the end of this turn now (before a goodbye). */
  flush(): void {
    this.coalescer.flush();
  }

  /** Whether a result of this batch was sent and not yet acknowledged. */
  awaitsAcknowledgement(batch: string): boolean {
    for (const held of this.unacked.values()) if (held.ref.batch === batch) return true;
    return false;
  }

  /** Resolves once the result is on its way (a streamed one: once its last chunk went out). */
  async send(job: SessionJob, result: ResultMessage): Promise<void> {
    const packed = await packResult(job.remoteId, job.task.jobDir, result, this.line.maxResultBytes);
    if (!packed.streamed) {
      this.deliver(job, packed);
      return;
    }
    await this.deliverStreamed(job, packed.header, packed.streamed);
  }

  /**
   * A large result streams to a connected submitter. It cannot wait in the journal (its files
   * may be gigabytes): if the submitter vanishes first, the job is reported lost and runs again.
   */
  private async deliverStreamed(
    job: SessionJob,
    header: RemoteResult,
    streamed: NonNullable<PackedResult['streamed']>,
  ): Promise<void> {
    const tooLarge = `its output files (${Math.round(streamed.size / 1048576)} MB) are too large to keep for an absent submitter`;
    if (this.line.state() !== 'connected') {
      if (job.keep) this.line.kept.lost([job.keep], tooLarge);
      return;
    }
    const stream = this.line.streams.nextId();
    this.line.connection.send({ ...header, stream });
    if (job.keep) this.unacked.set(header.id, { ref: job.keep, key: null });
    try {
      await this.line.streams.send(stream, streamed.bytes, streamed.size);
    } catch (error) {
      log.warn('a result could not be streamed', { error: String(error) });
    }
  }

  /**
   * Sends a result, holding it until acknowledged when its batch asked to be kept; with the
   * submitter gone, writes it to the journal instead (and on to a connection that claimed it).
   */
  deliver(job: SessionJob, { header, parts }: PackedResult): void {
    const ref = job.keep;
    if (!ref) {
      if (this.line.state() === 'connected') this.coalescer.add(header, parts);
      return;
    }
    log.debug('job finished', { ...ref, status: header.status, kept: this.line.state() === 'detached' });
    // Stored without the connection's job id: a later connection names the job by batch and index.
    const stored = JSON.stringify({ ...header, t: undefined, id: undefined });
    if (this.line.state() !== 'detached') {
      this.coalescer.add(header, parts);
      const key = this.line.kept.hold(ref, stored, Buffer.concat(parts));
      this.unacked.set(header.id, { ref, key });
      return;
    }
    const body = Buffer.concat(parts);
    const key = this.line.kept.keep(ref, stored, body);
    if (key !== null) this.line.adopterOf(ref.batch)?.sendKept({ ...ref, key, header: stored, body });
  }

  /** The submitter acknowledged these results (`result` ids, `kept` keys): the journal forgets them. */
  acknowledged(ids: number[], keptKeys: number[]): void {
    const refs: JobRef[] = [];
    const keys = [...keptKeys];
    for (const id of ids) {
      const held = this.unacked.get(id);
      if (!held) continue;
      this.unacked.delete(id);
      if (held.key === null) refs.push(held.ref);
      else keys.push(held.key);
    }
    this.line.kept.forgotten(refs);
    if (keys.length > 0) this.line.kept.handedOver(this.line.connection.peerId, keys);
  }

  /**
   * The connection is gone. Unacknowledged results are in the journal already; those that did
   * not fit (or streamed) are reported lost, so that the submitter runs them again.
   */
  connectionEnded(): void {
    const unkept = [...this.unacked.values()].filter((held) => held.key === null);
    if (unkept.length > 0)
      this.line.kept.lost(
        unkept.map((held) => held.ref),
        this.line.kept.noRoom(),
      );
    this.unacked.clear();
  }
}
