// The UI's view of how other people's jobs run on this node, over real served clusters: confined
// by bubblewrap with the network cut, or refused where no sandbox works; and the owner's two
// choices saved in settings.json, shown as waiting for a restart, and in force after one, in the
// app's start and in deskgrid node's (whose flag overrides the saved choice).

import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateJoinCode } from '../../shared/join-code.js';
import { Cluster } from '../../main/engine/cluster.js';
import { loadSettings, saveSettings, savedJobChoices } from '../../main/engine/settings.js';
import { UiService } from '../../main/engine/ui/ui-service.js';
import { killGroup, startCli } from '../support/run-cli.js';
import { withoutSandbox } from '../support/served-node.js';
import { until } from '../support/until.js';

const started: Cluster[] = [];
const folders: string[] = [];

afterEach(async () => {
  for (const cluster of started.splice(0)) await cluster.destroy();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A node serving on loopback with what its settings.json says, as the app starts one. */
async function serve(home: string, code: string): Promise<Cluster> {
  const cluster = await Cluster.start({
    home,
    cores: 1,
    secret: code,
    serve: { host: '127.0.0.1', port: 0, ...savedJobChoices(home) },
  });
  started.push(cluster);
  return cluster;
}

function freshHome(): string {
  const folder = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-ui-confinement-')));
  folders.push(folder);
  return join(folder, 'node');
}

describe("the UI's view of other people's jobs", () => {
  it('shows them confined, saves the job network for the next start, and the restarted node uses it', async () => {
    const home = freshHome();
    const code = generateJoinCode();
    const ui = new UiService({ cluster: await serve(home, code), home });
    try {
      const before = (await ui.call('getSettings', {})).otherJobs;
      // Confined, so no warning, and nothing saved yet: the defaults are what runs.
      expect([before.mode, before.warning, before.restartNeeded]).toEqual(['bubblewrap', null, false]);
      expect([before.network, before.savedNetwork, before.savedUnconfined]).toEqual([true, true, 'refuse']);
      const after = await ui.call('setSettings', { jobNetwork: false });
      expect(after.otherJobs).toMatchObject({ network: true, savedNetwork: false, restartNeeded: true });
      expect(loadSettings(home).jobNetwork).toBe(false);
    } finally {
      ui.close();
    }
    await started.pop()?.destroy();
    const restarted = await serve(home, code);
    expect(restarted.jobConfinement).toMatchObject({ mode: 'bubblewrap', network: false });
    const again = new UiService({ cluster: restarted, home });
    try {
      expect((await again.call('getSettings', {})).otherJobs).toMatchObject({
        network: false,
        savedNetwork: false,
        restartNeeded: false,
      });
    } finally {
      again.close();
    }
  });

  it('says jobs are refused where nothing confines them, and accepting them unconfined takes a restart', async () => {
    const home = freshHome();
    const code = generateJoinCode();
    const ui = new UiService({ cluster: await withoutSandbox(() => serve(home, code)), home });
    try {
      const before = (await ui.call('getSettings', {})).otherJobs;
      expect(before).toMatchObject({ mode: 'refused', savedUnconfined: 'refuse', restartNeeded: false });
      expect(before.warning).toMatch(/cannot confine other people's jobs .* so it refuses them/);
      await expect(ui.call('setSettings', { unconfinedJobs: 'always' as 'accept' })).rejects.toMatchObject({
        code: 'DG_ERR_USAGE',
      });
      const after = await ui.call('setSettings', { unconfinedJobs: 'accept' });
      expect(after.otherJobs).toMatchObject({
        mode: 'refused',
        savedUnconfined: 'accept',
        restartNeeded: true,
      });
    } finally {
      ui.close();
    }
    await started.pop()?.destroy();
    const restarted = await withoutSandbox(() => serve(home, code));
    const again = new UiService({ cluster: restarted, home });
    try {
      const view = (await again.call('getSettings', {})).otherJobs;
      expect(view).toMatchObject({ mode: 'unconfined', restartNeeded: false });
      expect(view.warning).toMatch(/UNCONFINED/);
    } finally {
      again.close();
    }
  });

  it(
    'deskgrid node starts with the job network the settings saved, unless its flag says otherwise',
    { timeout: 120_000 },
    async () => {
      const home = freshHome();
      saveSettings(home, { joinCode: generateJoinCode(), jobNetwork: false });
      const common = ['node', '--port', '0', '--no-discovery', '--cores', '1'];
      for (const [flags, line] of [
        [[], 'confined (bubblewrap), network off'],
        [['--job-network', 'on'], 'confined (bubblewrap), network on'],
      ] as const) {
        const node = startCli([...common, ...flags], { home, timeLimitMs: 60_000 });
        try {
          await until(
            () => node.stdoutSoFar().includes("other people's jobs:"),
            'the node to say how jobs run',
            45_000,
          );
          expect(node.stdoutSoFar()).toContain(`other people's jobs: ${line}`);
        } finally {
          killGroup(node.pid);
          await node.result.catch(() => undefined);
        }
      }
    },
  );
});
