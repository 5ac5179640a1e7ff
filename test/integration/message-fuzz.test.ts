// Fuzzing the message handlers of both ends with seeded, bounded streams of random and mutated
// frames: a `deskgrid node` process gets thousands of them from proven members of its cluster
// (each round a fresh connection, so that a frame that gets the sender dropped does not end the
// fuzzing), and a submitter's side of a connection (RemoteNode) gets thousands from a fake node
// that answers its load and run. Each round ends with the node told why it was dropped or with an
// answer to a last, valid question; at the end the node process lives and still serves, and the
// submitter side never threw. A malicious node cannot crash a `deskgrid run` either: a null
// header or a provisional value that is not v8 data gets that node dropped with a reason.

import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer } from 'node:net';
import { createServer, connect as tlsConnect, type Server, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { proofKey } from '../../main/engine/identity/cluster-key.js';
import { loadIdentity, type NodeIdentity } from '../../main/engine/identity/node-identity.js';
import { hashFileSet } from '../../main/engine/remote/file-set.js';
import { RemoteNode } from '../../main/engine/remote/remote-node.js';
import { nextTaskId, type Task, type TaskOwner } from '../../main/engine/pool/task.js';
import { PeerConnection } from '../../main/engine/transport/peer-connection.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../../shared/wire-protocol.js';
import { OFFER_TEMPLATE, frameOf, fuzzFrame, seeded } from '../support/fuzz.js';
import { startCli, type RunningCli } from '../support/run-cli.js';
import { streamMessages } from '../support/stream-frames.js';
import { until } from '../support/until.js';

const CODE = generateJoinCode();
const ROUNDS = 120;
const FRAMES_PER_ROUND = 25;
const MODULE = 'export default (x) => x;\n';
// eslint-disable-next-line no-control-regex -- control characters are what must not reach a terminal
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;
const HOSTILE_NAME = 'fake\u001b]0;owned\u0007\u001b[2J\u009b31m\u202e';

let work = '';
let attacker: NodeIdentity;
let nodeCli: RunningCli;
let nodePort = 0;

beforeAll(async () => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-fuzz-')));
  attacker = loadIdentity(join(work, 'attacker')).identity;
  nodeCli = startCli(
    ['node', '--secret', CODE, '--listen', '127.0.0.1', '--port', '0', '--no-discovery', '--cores', '1'],
    { home: join(work, 'node'), timeLimitMs: 600_000 },
  );
  const port = await until(
    () => /^listening on 127\.0\.0\.1:(\d+)$/m.exec(nodeCli.stdoutSoFar())?.[1],
    'the node to listen',
  );
  nodePort = Number(port);
}, 60_000);

afterAll(async () => {
  nodeCli.child.kill('SIGTERM');
  await nodeCli.result.catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

function tls(port: number, localAddress?: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ...(localAddress === undefined ? {} : { localAddress }),
      cert: attacker.certPem,
      key: attacker.keyPem,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

const typeOf = (header: unknown): unknown => (header as { t?: unknown } | null)?.t;

describe('a node process fed fuzzed frames by members of its cluster', () => {
  it(
    `lives, tells each dropped sender why, and still serves after ${ROUNDS * FRAMES_PER_ROUND} frames`,
    { timeout: 300_000 },
    async () => {
      const random = seeded(1616);
      const data = Buffer.from(MODULE);
      const files = [{ path: 'main.mjs', size: data.length, mode: 0o644 }];
      const bundle = hashFileSet({ files, data: [data] });
      const value = serialize(21);
      const templates = [
        { t: 'load', computation: 'k', bundle, entry: 'main.mjs', kind: 'module', stdin: false },
        { t: 'bundle', bundle, files, stream: 1 },
        { t: 'chunk', stream: 1, offset: 0 },
        { t: 'stream-end', stream: 1, bytes: data.length, sha256: 'ab'.repeat(32) },
        { t: 'stream-ack', stream: 1, bytes: 10 },
        { t: 'stream-stop', stream: 1 },
        { t: 'have-files', request: 1, hashes: ['ab'.repeat(32)] },
        { t: 'file', hash: 'ab'.repeat(32), size: 3, stream: 2 },
        {
          t: 'run',
          batch: 'fuzz-batch',
          jobs: [
            {
              id: 1,
              computation: 'k',
              index: 0,
              attempt: 1,
              input: { kind: 'value', bytes: value.length },
              timeoutMs: null,
              maxMemoryBytes: null,
            },
          ],
        },
        { t: 'cancel', id: 1 },
        { t: 'ack', ids: [1], kept: [1] },
        { t: 'claim', batch: 'fuzz-batch' },
        { t: 'ping' },
        { t: 'pong' },
      ];
      let answered = 0;
      let toldWhy = 0;
      for (let round = 0; round < ROUNDS; round++) {
        // A source address per round: the node's limit on handshakes per address is not the subject here.
        const socket = await tls(nodePort, `127.0.${1 + Math.floor(round / 200)}.${2 + (round % 200)}`);
        const connection = await PeerConnection.establish(socket, {
          role: 'submitter',
          identity: { id: attacker.id, name: 'fuzzer', version: '0.1.0' },
          proofKey: proofKey(CODE),
          maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
        });
        const seen: unknown[] = [];
        let closed = false;
        connection.on('message', (header) => seen.push(header));
        connection.once('close', () => (closed = true));
        const frames = [
          frameOf(templates[0]),
          ...streamMessages({ t: 'bundle', bundle, files, stream: 1 }, data).map(([header, body]) =>
            frameOf(header, body),
          ),
        ];
        // Every tenth round sends nothing hostile: the node must answer it in full.
        const fuzzed = round % 10 === 0 ? 0 : FRAMES_PER_ROUND;
        for (let n = 0; n < fuzzed; n++) frames.push(fuzzFrame(random, templates));
        // The last, valid question: answered unless a frame before it got this sender dropped.
        frames.push(frameOf({ t: 'have-files', request: 1, hashes: ['cd'.repeat(32)] }));
        socket.write(Buffer.concat(frames));
        await until(
          () =>
            closed ||
            (seen.some(
              (header) =>
                typeOf(header) === 'files-missing' && JSON.stringify(header).includes('cd'.repeat(32)),
            ) &&
              (fuzzed > 0 || seen.some((header) => typeOf(header) === 'loaded'))),
          `round ${round}: an answer or a close`,
        );
        // A round with nothing hostile is answered in full (the bundle streams in beside the
        // question, so `loaded` may come before or after its answer).
        if (fuzzed === 0)
          expect(
            seen
              .map(typeOf)
              .filter((type) => type !== 'need-bundle' && type !== 'stream-ack')
              .sort(),
            `round ${round}`,
          ).toEqual(['files-missing', 'loaded', 'offer']);
        if (closed) {
          expect(
            seen.some((header) => typeOf(header) === 'reject'),
            `round ${round}: ${JSON.stringify(seen)}`,
          ).toBe(true);
          toldWhy += 1;
        } else answered += 1;
        connection.destroy();
      }
      // Both outcomes, many times: the fuzzing got past the checks as well as into them.
      expect(toldWhy).toBeGreaterThan(ROUNDS / 4);
      expect(answered).toBeGreaterThanOrEqual(ROUNDS / 10);
      expect(nodeCli.child.exitCode).toBeNull();
      expect(nodeCli.stderrSoFar()).not.toMatch(/TypeError|RangeError|Uncaught/);

      const submitter = await Cluster.start({
        home: join(work, 'honest'),
        local: false,
        secret: CODE,
        peers: [`127.0.0.1:${nodePort}`],
      });
      try {
        const module = join(work, 'double.mjs');
        writeFileSync(module, 'export default (n) => n * 2;\n');
        const batch = submitter.submit({ computation: module, inputs: [1, 2, 3] });
        const values: unknown[] = [];
        batch.on('result', (result) => values.push(result.value));
        expect(await batch.done).toMatchObject({ total: 3, done: 3, ok: true });
        expect(values.sort()).toEqual([2, 4, 6]);
      } finally {
        await submitter.close();
      }
    },
  );
});

/** A fake node: proves the join code, offers a core, and hands each connection to `play`. */
async function fakeNode(
  play: (connection: PeerConnection) => void,
): Promise<{ port: number; server: Server }> {
  const identity = loadIdentity(join(work, 'fake-node')).identity;
  const server = createServer({
    cert: identity.certPem,
    key: identity.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  server.on('secureConnection', (socket) => {
    socket.on('error', () => undefined);
    PeerConnection.establish(socket, {
      role: 'node',
      // Its name would clear a terminal and set its title, were it printed as it is.
      identity: { id: identity.id, name: HOSTILE_NAME, version: '0.1.0' },
      proofKey: proofKey(CODE),
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    }).then(
      (connection) => {
        connection.send({
          t: 'offer',
          cores: 1,
          runtimes: ['node'],
          platform: 'linux',
          arch: 'x64',
          release: '6',
          memoryMb: 1024,
          version: '0.1.0',
          name: HOSTILE_NAME,
        });
        play(connection);
      },
      () => undefined,
    );
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, server };
}

describe("a submitter's side of a connection fed fuzzed frames by a malicious node", () => {
  it(
    `never throws, for ${60 * FRAMES_PER_ROUND} frames after a load and a run`,
    { timeout: 300_000 },
    async () => {
      const random = seeded(6161);
      const module = join(work, 'identity.mjs');
      writeFileSync(module, MODULE);
      const templates = (id: number): Array<Record<string, unknown>> => {
        const result = {
          ok: true,
          status: 'done',
          error: null,
          stdout: '',
          stderr: '',
          exitCode: null,
          startedAt: 1,
          endedAt: 2,
          cpuMs: 1,
          valueBytes: 3,
          outputs: [],
        };
        return [
          { t: 'result', id, ...result },
          { t: 'result', id, ...result, outputs: [{ path: 'a.txt', size: 2, mode: 420 }] },
          { t: 'kept', key: 1, batch: 'b', index: 0, attempt: 1, ...result },
          { t: 'progress', id, fraction: 0.5, note: null },
          { t: 'provisional', id },
          { t: 'log', id, line: 'x' },
          { t: 'returned', id, reason: 'r' },
          { t: 'claimed', batch: 'b', running: [0], lost: [{ index: 0, reason: 'r' }] },
          { t: 'peers', nodes: [{ id: 'ab'.repeat(32), name: 'p', host: '127.0.0.1', port: 1 }] },
          { t: 'need-bundle', computation: 'k', bundle: 'ab'.repeat(32) },
          { t: 'files-missing', request: 1, hashes: [] },
          OFFER_TEMPLATE,
        ];
      };
      const fake = await fakeNode((connection) => {
        connection.on('message', (header) => {
          const message = header as { t: string; computation?: string; jobs?: Array<{ id: number }> };
          if (message.t === 'load') connection.send({ t: 'loaded', computation: message.computation ?? '' });
          if (message.t === 'run') {
            const id = message.jobs?.[0]?.id ?? 0;
            const frames: Buffer[] = [];
            for (let n = 0; n < FRAMES_PER_ROUND; n++) frames.push(fuzzFrame(random, templates(id)));
            // The end of the round, if the submitter's side is still listening.
            frames.push(frameOf({ t: 'claimed', batch: 'sentinel', running: [], lost: [] }));
            connection.socket.write(Buffer.concat(frames));
          }
        });
      });
      let dropped = 0;
      const events: string[] = [];
      const owner: TaskOwner = {
        onResult: () => events.push('result'),
        onFailure: () => events.push('failure'),
        onRequeue: () => events.push('requeue'),
        onLost: () => events.push('lost'),
        onProgress: () => events.push('progress'),
        onProvisional: () => events.push('provisional'),
        onLog: () => events.push('log'),
      };
      try {
        for (let round = 0; round < 60; round++) {
          let given = false;
          let ended = false;
          let closedWith: string | null | undefined = undefined;
          const jobDir = join(work, 'jobs', String(round));
          mkdirSync(jobDir, { recursive: true });
          const task: Task = {
            id: nextTaskId(),
            owner,
            computation: { kind: 'module', id: `fuzz-${round}`, entry: module },
            index: round,
            attempt: 1,
            input: round,
            inputIsFile: false,
            jobDir,
            timeoutMs: null,
            maxMemoryBytes: null,
            cancelRequested: false,
            node: null,
            keep: null,
          };
          const node = await RemoteNode.connect({
            address: { host: '127.0.0.1', port: fake.port },
            identity: { ...attacker, version: '0.1.0' },
            proofKey: proofKey(CODE),
            maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
            cacheDir: join(work, 'cache'),
            nextTask: () => (given ? undefined : ((given = true), task)),
            closed: (_node, error) => (closedWith = error?.message ?? null),
            keptFor: () => ({ workDir: join(work, 'kept'), adopt: () => events.push('kept') }),
            claimed: (_node, batch) => (batch === 'sentinel' ? (ended = true) : events.push('claimed')),
            peersShared: () => events.push('peers'),
          });
          node.pump();
          // The round is over once the node was dropped or its last frame came.
          await until(() => closedWith !== undefined || ended, `round ${round}`);
          if (closedWith !== undefined) dropped += 1;
          node.destroy();
        }
      } finally {
        fake.server.close();
      }
      expect(dropped).toBeGreaterThan(10);
      expect(events.length).toBeGreaterThan(10);
    },
  );

  for (const [what, misbehave] of [
    ['a frame whose header is null', (connection: PeerConnection) => connection.socket.write(frameOf(null))],
    [
      'a provisional value that is not v8 data',
      (connection: PeerConnection, id: number) =>
        connection.socket.write(frameOf({ t: 'provisional', id }, Buffer.from('not v8 at all'))),
    ],
  ] as const) {
    it(
      `drops a node that sends ${what}, and deskgrid run ends with a reason, not a crash`,
      { timeout: 60_000 },
      async () => {
        const fake = await fakeNode((connection) => {
          connection.on('message', (header) => {
            const message = header as { t: string; computation?: string; jobs?: Array<{ id: number }> };
            if (message.t === 'load')
              connection.send({ t: 'loaded', computation: message.computation ?? '' });
            if (message.t === 'run') misbehave(connection, message.jobs?.[0]?.id ?? 0);
          });
        });
        try {
          const module = join(work, 'slow.mjs');
          writeFileSync(module, 'export default async (n) => n;\n');
          const run = startCli(
            [
              'run',
              module,
              '--range',
              '0:2',
              '--peer',
              `127.0.0.1:${fake.port}`,
              '--secret',
              CODE,
              '--no-local',
            ],
            {
              home: join(work, `run-${what.length}`),
              timeLimitMs: 50_000,
            },
          );
          const result = await run.result;
          expect(result.stderr).not.toMatch(/TypeError|RangeError|at .*\.js:\d+/);
          // The node's name reached the terminal without its control characters.
          expect(result.stderr).toContain('fake]0;owned[2J31m');
          expect(result.stderr + result.stdout).not.toMatch(CONTROL_CHARACTERS);
          expect(result.stderr).toMatch(/DG_ERR_|malformed|unreadable|lost/);
          expect(result.code).not.toBe(0);
        } finally {
          fake.server.close();
        }
      },
    );
  }
});

describe('peer hints from a node', () => {
  it(
    'are tried only as IPv4 addresses on that node’s network, never as names it chose',
    { timeout: 60_000 },
    async () => {
      // Two listeners that only count who knocks: one named by host name, one by address.
      const knocks = { byName: 0, byAddress: 0 };
      const byName = createTcpServer((socket) => {
        knocks.byName += 1;
        socket.destroy();
      });
      const byAddress = createTcpServer((socket) => {
        knocks.byAddress += 1;
        socket.destroy();
      });
      const listen = (server: ReturnType<typeof createTcpServer>): Promise<number> =>
        new Promise((resolve) =>
          server.listen(0, '127.0.0.1', () => {
            const address = server.address();
            resolve(typeof address === 'object' && address !== null ? address.port : 0);
          }),
        );
      const [namePort, addressPort] = await Promise.all([listen(byName), listen(byAddress)]);
      const fake = await fakeNode((connection) => {
        connection.send({
          t: 'peers',
          nodes: [
            { id: '1'.repeat(64), name: 'by name', host: 'localhost', port: namePort },
            { id: '2'.repeat(64), name: 'by address', host: '127.0.0.1', port: addressPort },
          ],
        });
      });
      const submitter = await Cluster.start({
        home: join(work, 'hinted'),
        local: false,
        secret: CODE,
        peers: [`127.0.0.1:${fake.port}`],
      });
      try {
        await until(() => knocks.byAddress > 0, 'the hint by address to be tried');
        expect(knocks.byName).toBe(0);
      } finally {
        await submitter.destroy();
        fake.server.close();
        byName.close();
        byAddress.close();
      }
    },
  );
});
