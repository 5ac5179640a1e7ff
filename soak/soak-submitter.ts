// The fault soak's submitter: one process (run inside a namespace, SIGKILLed and started again
// by the soak) that submits a batch through the Node API, or resumes it from its folder, and
// cancels single jobs when told to. The CLI cannot cancel one job, hence this small program.
//
//   node soak-submitter.js '{"secret":..,"peers":[..],"computation":..,"jobs":N,"out":DIR,"resume":bool}'
//
// Standard input: lines `cancel INDEX`. Standard output, one JSON object per line:
//   {"t":"started","key":..,"at":ms}            the batch runs (key: its name on the nodes)
//   {"t":"result","index":..,"status":..,"at":ms} a result, once it is committed to batch.db
//   {"t":"cancel","index":..,"accepted":bool,"at":ms}
//   {"t":"summary",...,"at":ms}                 the batch ended; the process then exits 0
// The data folder (DESKGRID_HOME) stays the same across restarts: the nodes keep results for
// this submitter's identity. The engine's log lines (DESKGRID_LOG) go to stderr.

import { createInterface } from 'node:readline';
import * as v from 'valibot';
import { Cluster } from '../main/engine/index.js';

const configSchema = v.object({
  secret: v.string(),
  peers: v.array(v.string()),
  computation: v.string(),
  jobs: v.pipe(v.number(), v.integer(), v.minValue(1)),
  out: v.string(),
  resume: v.boolean(),
});

function say(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...line, at: Date.now() })}\n`);
}

const config = v.parse(configSchema, JSON.parse(process.argv[2] ?? '{}'));
const cluster = await Cluster.start({ local: false, secret: config.secret, peers: config.peers });
const batch = config.resume
  ? cluster.resume(config.out)
  : cluster.submit({ computation: config.computation, range: `0:${config.jobs}`, out: config.out });

createInterface({ input: process.stdin }).on('line', (line) => {
  const match = /^cancel (\d+)$/.exec(line.trim());
  if (match === null) return;
  const index = Number(match[1]);
  say({ t: 'cancel', index, accepted: batch.cancel(index) });
});

let announced = false;
batch.on('result', (result) => {
  if (!announced) announce();
  say({ t: 'result', index: result.index, status: result.status, node: result.node });
});
// The key is known once the batch has started; a batch resumed with every job recorded starts
// and ends without a result.
const announce = (): void => {
  announced = true;
  say({ t: 'started', key: batch.key });
};
const timer = setInterval(() => {
  if (!announced && batch.key !== null) announce();
}, 20);

try {
  const summary = await batch.done;
  if (!announced) announce();
  say({ t: 'summary', ...summary });
} catch (error) {
  say({ t: 'failed', message: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
} finally {
  clearInterval(timer);
  await cluster.destroy();
  process.stdin.destroy();
}
