// Both worker launchers start a confined worker when asked (the desktop app's through a child
// process of its own binary run as Node, as utility processes cannot be sandboxed): the worker
// answers in a pid namespace of its own, runs a job in its job folder, and cannot read a file of
// the node's user outside what its plan binds; killed at any moment of its start, it leaves no
// process behind. Skipped where this machine cannot confine.

import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UtilityProcessLauncher } from '../../main/app/utility-process-launcher.js';
import type { WorkerLauncher } from '../../main/engine/index.js';
import { ChildProcessLauncher } from '../../main/engine/pool/child-process-launcher.js';
import { checkConfinement, type Confinement } from '../../main/engine/sandbox/confinement-check.js';
import type { Sandbox } from '../../main/engine/sandbox/sandbox-plan.js';
import { standInUtilityFork } from '../support/utility-process-stand-in.js';

let confinement: Confinement = { ok: false, reason: 'not checked yet' };
let work = '';
/** Outside /tmp (which a sandbox replaces): a file of the node's user that no plan binds. */
let secretDir = '';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'deskgrid-confined-launch-'));
  secretDir = mkdtempSync('/var/tmp/deskgrid-owner-');
  writeFileSync(join(secretDir, 'secret.txt'), 'OWNER-ONLY');
  confinement = await checkConfinement(work);
  if (!confinement.ok) console.warn(`[sandbox] confined launch tests skipped: ${confinement.reason}`);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(secretDir, { recursive: true, force: true });
});

const launchers: Array<[string, () => WorkerLauncher]> = [
  ['child processes', () => new ChildProcessLauncher()],
  ['utility processes', () => new UtilityProcessLauncher(standInUtilityFork)],
];

describe.each(launchers)('a confined worker (%s)', (_name, makeLauncher) => {
  it('runs in its own pid namespace and reads nothing outside its plan', async (context) => {
    if (!confinement.ok) context.skip();
    if (!confinement.ok) return;
    const bundle = join(work, `bundle-${_name.replace(' ', '-')}`);
    const jobs = join(work, `jobs-${_name.replace(' ', '-')}`);
    mkdirSync(bundle);
    mkdirSync(jobs);
    const entry = join(bundle, 'peek.mjs');
    writeFileSync(
      entry,
      `import { readFileSync } from 'node:fs';\nexport default (path) => { try { return readFileSync(path, 'utf8'); } catch (e) { return e.code; } };\n`,
    );
    const sandbox: Sandbox = {
      confiner: confinement.confiner,
      plan: { readOnly: [bundle], readWrite: [jobs], network: false },
    };
    const channel = makeLauncher().launch({ sandbox });
    expect(channel.ownPidNamespace).toBe(true);
    const messages: Array<Record<string, unknown>> = [];
    const exited = new Promise<void>((resolve) => channel.onExit(() => resolve()));
    const result = new Promise<Record<string, unknown>>((resolve, reject) => {
      channel.onMessage((raw) => {
        const message = raw as Record<string, unknown>;
        messages.push(message);
        if (message['t'] === 'ready') {
          channel.send({ t: 'load', computation: { kind: 'module', id: 'peek', entry } });
          channel.send({
            t: 'runs',
            runs: [
              {
                id: 1,
                computationId: 'peek',
                index: 0,
                attempt: 1,
                input: join(secretDir, 'secret.txt'),
                inputIsFile: false,
                jobDir: join(jobs, '1'),
                maxValueBytes: null,
              },
            ],
          });
        }
        if (message['t'] === 'result') resolve(message);
      });
      void exited.then(() => reject(new Error(`worker exited: ${channel.stderrTail()}`)));
    });
    const answer = await result;
    expect(answer['value']).toBe('ENOENT');
    // Inside its own pid namespace the worker is one of the first few processes.
    const ready = messages.find((message) => message['t'] === 'ready');
    expect(ready?.['pid']).toBeLessThan(10);
    channel.kill();
    await exited;
  });

  it('killed at any moment of its start, leaves no process of its sandbox behind', async (context) => {
    if (!confinement.ok) context.skip();
    if (!confinement.ok) return;
    // A path named only in these sandboxes' command lines, to find what they leave behind.
    const jobs = join(work, `killed-early-${_name.replace(' ', '-')}`);
    mkdirSync(jobs);
    const sandbox: Sandbox = {
      confiner: confinement.confiner,
      plan: { readOnly: [], readWrite: [jobs], network: false },
    };
    const launcher = makeLauncher();
    // Killed from the moment it is spawned to 40 ms later: bwrap's setup of the sandbox (where
    // its init had not yet armed --die-with-parent) falls in there.
    for (let attempt = 0; attempt < 40; attempt += 1) {
      const channel = launcher.launch({ sandbox });
      const exited = new Promise<void>((resolve) => channel.onExit(() => resolve()));
      await new Promise((resolve) => setTimeout(resolve, (attempt * 7) % 41));
      channel.kill();
      await exited;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    const left = processesNaming(jobs);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    expect(left).toEqual([]);
  });
});

/** Processes whose command line holds `text`. */
function processesNaming(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
