// Captures what a JS job prints. Jobs run one at a time in a worker, so whatever reaches
// process.stdout/stderr while a job runs belongs to that job. Output is capped so a chatty
// job cannot exhaust the worker's memory.

import { MAX_CAPTURED_OUTPUT_BYTES } from '../shared/worker-protocol.js';

export class CappedText {
  private readonly chunks: string[] = [];
  private bytes = 0;
  private truncated = false;

  append(text: string): void {
    if (this.truncated) return;
    const size = Buffer.byteLength(text);
    if (this.bytes + size <= MAX_CAPTURED_OUTPUT_BYTES) {
      this.chunks.push(text);
      this.bytes += size;
      return;
    }
    const room = MAX_CAPTURED_OUTPUT_BYTES - this.bytes;
    this.chunks.push(Buffer.from(text).subarray(0, room).toString());
    this.chunks.push(`\n[deskgrid: output cut at ${MAX_CAPTURED_OUTPUT_BYTES} bytes]\n`);
    this.truncated = true;
  }

  appendBytes(chunk: Buffer): void {
    this.append(chunk.toString());
  }

  toString(): string {
    return this.chunks.join('');
  }
}

export interface Capture {
  stdout: CappedText;
  stderr: CappedText;
}

let current: Capture | null = null;

/** Routes process.stdout and process.stderr writes to the running job's capture, if any. */
export function installOutputCapture(): void {
  for (const [stream, pick] of [
    [process.stdout, (c: Capture) => c.stdout],
    [process.stderr, (c: Capture) => c.stderr],
  ] as const) {
    const original = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    const capturing = (chunk: unknown, ...rest: unknown[]): boolean => {
      if (!current) return original(chunk, ...rest);
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString();
      pick(current).append(text);
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    };
    stream.write = capturing;
  }
}

/** Starts capturing for a job; returns the capture to read when it ends. */
export function beginCapture(): Capture {
  current = { stdout: new CappedText(), stderr: new CappedText() };
  return current;
}

export function endCapture(): void {
  current = null;
}
