// Results of short jobs leave a node together: those that end in the same turn of the event loop
// (a worker's answers arrive several per read) go as one `results` message, their bodies back to
// back. One frame, one header to encode and one message to check per group instead of per job;
// a lone result waits for nothing but the end of the turn it ended in (a microtask, no timer).
// Large results go alone, as `result`, so that a group never nears the frame limit.

import type { RemoteResult } from '../../../shared/wire-protocol.js';

/** A result with a body at least this large goes alone. */
const ALONE_BYTES = 64 * 1024;
/** A group is sent once it holds this many results or body bytes, even mid-turn. */
const MAX_GROUP = 4096;
const MAX_GROUP_BYTES = 1024 * 1024;

export class ResultCoalescer {
  private headers: RemoteResult[] = [];
  private parts: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;

  /** @param send writes one message (the connection's send) */
  constructor(private readonly send: (header: object, body: readonly Buffer[]) => void) {}

  add(header: RemoteResult, parts: readonly Buffer[]): void {
    const size = parts.reduce((sum, part) => sum + part.length, 0);
    if (size >= ALONE_BYTES) {
      this.send(header, parts);
      return;
    }
    this.headers.push(header);
    this.parts.push(...parts);
    this.bytes += size;
    if (this.headers.length >= MAX_GROUP || this.bytes >= MAX_GROUP_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** Sends what is held now. */
  flush(): void {
    this.scheduled = false;
    const [only, ...more] = this.headers;
    if (only === undefined) return;
    if (more.length === 0) this.send(only, this.parts);
    else this.send({ t: 'results', results: this.headers }, this.parts);
    this.headers = [];
    this.parts = [];
    this.bytes = 0;
  }
}
