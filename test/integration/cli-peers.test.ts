// `deskgrid peers` and the fallbacks of `deskgrid run` for networks without multicast: saved
// peers, and the last-known addresses of nodes used before (known-nodes.json). On 127.0.0.1
// only, against a node served in this process; discovery stays off (DESKGRID_DISCOVERY=off).

import {
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
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { errorLines, splitLines, startCli, type CliResult } from '../support/run-cli.js';
import { cliHome, details } from '../support/cli-home.js';
import { closedPort } from '../support/closed-port.js';
import { useTempFolder } from '../support/temp-folder.js';
import { until } from '../support/until.js';

const DOUBLE = fileURLToPath(new URL('../fixtures/engine/double.mjs', import.meta.url));
const CODE = generateJoinCode();

const tmp = useTempFolder();
const { home, deskgrid } = cliHome(tmp);

let nodeHome = '';
let node: Cluster;
let port = 0;

beforeAll(async () => {
  nodeHome = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-peers-node-')));
  node = await Cluster.start({
    home: nodeHome,
    cores: 1,
    secret: CODE,
    serve: { host: '127.0.0.1', port: 0 },
  });
  const address = node.address;
  if (address === null) throw new Error('the node does not serve');
  port = address.port;
});

afterAll(async () => {
  await node.destroy();
  rmSync(nodeHome, { recursive: true, force: true });
});

function resultNodes(run: CliResult): string[] {
  return splitLines(run.stdout).map((line) => (JSON.parse(line) as { node: string }).node);
}

describe('deskgrid peers', () => {
  it('adds, lists and removes peers; the port defaults to 7717; no duplicates', async () => {
    const empty = await deskgrid(['peers', 'list']);
    expect(empty.code, details(empty)).toBe(0);
    expect(empty.stdout).toBe('no saved peers\n');

    for (const address of ['10.1.2.3:9000', '10.1.2.4', '10.1.2.3:9000', '[fe80::1]']) {
      const added = await deskgrid(['peers', 'add', address]);
      expect(added.code, details(added)).toBe(0);
    }
    const listed = await deskgrid(['peers', 'list']);
    expect(splitLines(listed.stdout)).toEqual(['10.1.2.3:9000', '10.1.2.4:7717', '[fe80::1]:7717']);
    const settings = JSON.parse(readFileSync(join(home(), 'settings.json'), 'utf8')) as { peers: string[] };
    expect(settings.peers).toEqual(['10.1.2.3:9000', '10.1.2.4:7717', '[fe80::1]:7717']);

    const removed = await deskgrid(['peers', 'remove', '10.1.2.4']);
    expect(removed.code, details(removed)).toBe(0);
    const missing = await deskgrid(['peers', 'remove', '10.9.9.9:1']);
    expect(missing.code, details(missing)).toBe(1);
    expect(splitLines((await deskgrid(['peers', 'list'])).stdout)).toEqual([
      '10.1.2.3:9000',
      '[fe80::1]:7717',
    ]);
  });

  it.each(['10.1.2.3:99999', 'host:port', 'a:b:c', ':80'])(
    'refuses the bad address %s with exit 2 and one error line',
    async (address) => {
      const run = await deskgrid(['peers', 'add', address]);
      expect(run.code, details(run)).toBe(2);
      expect(splitLines(run.stderr)).toHaveLength(1);
      expect(run.stderr).toMatch(/^deskgrid: invalid peer/);
      expect(existsSync(join(home(), 'settings.json'))).toBe(false);
    },
  );

  it('deskgrid run uses a saved peer, then finds the node again through known-nodes.json', async () => {
    const added = await deskgrid(['peers', 'add', `127.0.0.1:${port}`]);
    expect(added.code, details(added)).toBe(0);
    // The code through the environment: the run must print no warning at all.
    const args = ['run', DOUBLE, '--range', '0:20', '--no-local', '--json'];
    const env = { DESKGRID_SECRET: CODE };
    const first = await deskgrid(args, { env });
    expect(first.code, details(first)).toBe(0);
    expect(resultNodes(first)).toEqual(Array<string>(20).fill(node.nodeId));

    const known = JSON.parse(readFileSync(join(home(), 'known-nodes.json'), 'utf8')) as {
      nodes: Array<{ id: string; host: string; port: number }>;
    };
    expect(known.nodes).toEqual([expect.objectContaining({ id: node.nodeId, host: '127.0.0.1', port })]);

    const removed = await deskgrid(['peers', 'remove', `127.0.0.1:${port}`]);
    expect(removed.code, details(removed)).toBe(0);
    const second = await deskgrid(args, { env });
    expect(second.code, details(second)).toBe(0);
    expect(resultNodes(second)).toEqual(Array<string>(20).fill(node.nodeId));
    expect(second.stderr).not.toMatch(/warning/);
  });

  it('the engine uses a node reached twice (by id after the proof) only once', async () => {
    const submitter = await Cluster.start({
      home: join(tmp.root, 'engine-home'),
      local: false,
      secret: CODE,
      peers: [`127.0.0.1:${port}`, `${node.nodeId}@127.0.0.1:${port}`],
    });
    try {
      expect(submitter.stats().nodes.map((used) => used.id)).toEqual([node.nodeId]);
      const results: string[] = [];
      const batch = submitter.submit({ computation: DOUBLE, inputs: [1, 2, 3] });
      batch.on('result', (result) => results.push(result.node));
      expect((await batch.done).done).toBe(3);
      expect(results).toEqual([node.nodeId, node.nodeId, node.nodeId]);
      expect(submitter.warnings).toEqual([]);
    } finally {
      await submitter.close();
    }
  });

  it('a saved peer that does not answer is a warning, and the run completes locally', async () => {
    const dead = await closedPort();
    const added = await deskgrid(['peers', 'add', `127.0.0.1:${dead}`]);
    expect(added.code, details(added)).toBe(0);
    const run = await deskgrid([
      'run',
      DOUBLE,
      '--range',
      '0:20',
      '--secret',
      CODE,
      '--cores',
      '1',
      '--json',
    ]);
    expect(run.code, details(run)).toBe(0);
    expect(run.stderr).toContain(`deskgrid: warning: cannot use 127.0.0.1:${dead}`);
    expect(new Set(resultNodes(run)).has(node.nodeId)).toBe(false);
    expect(resultNodes(run)).toHaveLength(20);
  });

  it('a saved peer without a port, or a bad one, does not stop deskgrid node --ui from starting', async () => {
    // As the UI saved them before (HOST without a port), and as a hand edit may leave them.
    mkdirSync(home(), { recursive: true });
    writeFileSync(join(home(), 'settings.json'), JSON.stringify({ peers: [`127.0.0.1`, 'a:b:c'] }));
    const ui = startCli(['node', '--ui', '--port', '0', '--no-discovery', '--cores', '1', '--secret', CODE], {
      home: home(),
      cwd: tmp.root,
    });
    try {
      await until(
        () => ui.stdoutSoFar().includes('UI: open') || ui.child.exitCode !== null,
        'the UI node to start or stop',
      );
      expect(ui.stdoutSoFar(), ui.stderrSoFar()).toContain('UI: open');
      const warnings = errorLines(ui.stderrSoFar());
      expect(warnings).toContain(
        'deskgrid: warning: ignoring a saved peer: invalid peer "a:b:c": write an IPv6 address in brackets, like [fe80::1]:7717 (use HOST, HOST:PORT or NODE-ID@HOST:PORT)',
      );
      // The port-less one was tried at the node port.
      expect(warnings.some((line) => line.startsWith('deskgrid: warning: cannot use 127.0.0.1:7717'))).toBe(
        true,
      );
    } finally {
      ui.child.kill('SIGTERM');
      await ui.result.catch(() => undefined);
    }
  });
});
