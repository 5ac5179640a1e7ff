// Proves at a node's start that its confiner works here, by running a confined Node process
// and asking it what it sees: the folder it was given is writable, the node's data folder and
// its owner's home are not there, and only the sandbox's own processes are. A node that cannot
// prove it says why (at start, in `deskgrid doctor`, in the UI) and, unless its owner accepts
// other people's jobs unconfined, refuses them.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findConfiner } from './confiner.js';
import type { Confiner } from './sandbox-plan.js';

const CHECK_TIMEOUT_MS = 20_000;

export type Confinement = { ok: true; mechanism: string; confiner: Confiner } | { ok: false; reason: string };

/** What the confined probe must find; it prints "ok" or what was wrong. */
const PROBE = `
const fs = require('node:fs');
const [writable, ...hidden] = process.argv.slice(1);
const wrong = [];
try { fs.writeFileSync(writable + '/probe', 'x'); } catch (e) { wrong.push('its own folder is not writable: ' + e.message); }
for (const path of hidden) if (fs.existsSync(path)) wrong.push(path + ' is visible');
if (process.platform === 'linux') {
  const pids = fs.readdirSync('/proc').filter((name) => /^\\d+$/.test(name));
  if (pids.length > 8) wrong.push('other processes are visible (' + pids.length + ')');
}
process.stdout.write(wrong.length === 0 ? 'ok' : wrong.join('; '));
`;

/** Checks this machine's confinement; `dataHome` is the node's data folder, which must stay hidden. */
export async function checkConfinement(
  dataHome: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Confinement> {
  const lookup = findConfiner(env);
  if (lookup.confiner === null) return { ok: false, reason: lookup.reason };
  const confiner = lookup.confiner;
  const folder = await mkdtemp(join(tmpdir(), 'deskgrid-confinement-'));
  try {
    const plan = { readOnly: [], readWrite: [folder], network: true };
    const line = confiner.wrap(
      { command: process.execPath, args: ['-e', PROBE, folder, dataHome, homedir()] },
      plan,
    );
    const answer = await run(line.command, line.args, {
      ...(process.versions['electron'] ? { ELECTRON_RUN_AS_NODE: '1' } : {}),
      PATH: env['PATH'] ?? '/usr/bin:/bin',
      ...confiner.environment(plan),
    });
    if (answer === 'ok') return { ok: true, mechanism: confiner.mechanism, confiner };
    return { ok: false, reason: `${confiner.mechanism} does not confine jobs here: ${answer}` };
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHECK_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve(`cannot start it: ${error.message}`);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && out !== '') resolve(out.trim());
      else
        resolve(`it exited with code ${code}: ${(err.trim() || out.trim()).split('\n').slice(-3).join(' ')}`);
    });
  });
}
