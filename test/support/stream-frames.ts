// The messages that send bytes as one chunked stream (see chunk-streams.ts), for tests that
// speak the wire protocol by hand: the opening message, `chunk`s, then `stream-end` with the
// SHA-256 of the bytes (or the one given: a test that lies about them).

import { createHash } from 'node:crypto';

export type WireMessage = [header: object, body?: Buffer];

export function streamMessages(
  opening: { stream: number } & Record<string, unknown>,
  bytes: Buffer,
  options: { sha256?: string; chunkBytes?: number } = {},
): WireMessage[] {
  const chunkBytes = options.chunkBytes ?? 1024 * 1024;
  const messages: WireMessage[] = [[opening]];
  for (let offset = 0; offset < bytes.length; offset += chunkBytes)
    messages.push([
      { t: 'chunk', stream: opening.stream, offset },
      bytes.subarray(offset, offset + chunkBytes),
    ]);
  const sha256 = options.sha256 ?? createHash('sha256').update(bytes).digest('hex');
  messages.push([{ t: 'stream-end', stream: opening.stream, bytes: bytes.length, sha256 }]);
  return messages;
}
