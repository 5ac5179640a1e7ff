// The UI end to end, as a user meets it: `deskgrid node --ui` on one host of a private LAN of
// network namespaces, with two more nodes as --peer, and Debian's Chromium (driven by
// playwright-core over a pipe) started inside the same namespace, so the UI's loopback-only
// server is reachable from it and from nothing else. The nodes appear; a script and a CSV are
// picked and dropped; the preview is right; the batch runs on more than one node; results and a
// failing job's stack trace show; a second batch is cancelled; the results export as CSV; a
// dataset that does not parse and a script that does not load are said with their error codes.
// Every view is saved as a screenshot under test-output/screenshots. Skipped, with the reason,
// where namespaces or Chromium are missing.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, NODE_PORT, type LanNode } from '../support/lan-nodes.js';
import { netnsUnavailableReason, type LanHost } from '../support/netns.js';
import { CLI_ENTRY, REPO_ROOT } from '../support/run-cli.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(REPO_ROOT, 'test-output', 'screenshots');
const reason =
  netnsUnavailableReason() ??
  (existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`) ??
  (existsSync(join(REPO_ROOT, 'dist', 'renderer', 'index.html'))
    ? null
    : 'the UI is not built (npm run build)');
if (reason !== null) console.warn(`[ui] end-to-end UI tests skipped: ${reason}`);

const CODE = generateJoinCode();
const ROWS = 120;
const BAD_ROW = 17;
/** Each job takes ~150 ms, so that every node gets work and a batch lasts long enough to cancel. */
const SCRIPT = `export default async function (row, ctx) {
  ctx.progress(0.5, 'adding up');
  await new Promise((resolve) => setTimeout(resolve, 150));
  if (row.customer === 'bad') throw new Error('no price for row ' + row.qty);
  return { customer: row.customer, total: Number(row.qty) * Number(row.price) };
}
`;

const grid = new LanNodes({ discovery: false });
let uiNode: LanNode;
let context: BrowserContext;
let page: Page;
const cspViolations: string[] = [];
const pageErrors: string[] = [];
let work = '';

async function startUiNode(on: LanHost, peers: LanHost[]): Promise<{ node: LanNode; url: string }> {
  // Started by hand rather than with grid.startNode, for --ui and --peer.
  const home = grid.homeOf(`node-${on.name}`);
  writeFileSync(join(home, 'settings.json'), JSON.stringify({ name: 'front-desk' }));
  const args = [CLI_ENTRY, 'node', '--secret', CODE, '--listen', on.address, '--port', String(NODE_PORT)];
  args.push('--cores', '1', '--ui', ...peers.flatMap((peer) => ['--peer', `${peer.address}:${NODE_PORT}`]));
  const child = grid
    .theLan()
    .spawn(on, process.execPath, args, { env: grid.environment(home), cwd: REPO_ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const started = Date.now();
  for (;;) {
    const url = /^UI: open (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)$/m.exec(stdout)?.[1];
    if (url !== undefined) {
      const node: LanNode = {
        host: on,
        home,
        child,
        id: /^id: ([0-9a-f]{64})$/m.exec(stdout)?.[1] ?? '',
        stdout: () => stdout,
        stderr: () => stderr,
        output: () => stdout + stderr,
      };
      return { node, url };
    }
    if (child.exitCode !== null || Date.now() - started > 20_000) {
      throw new Error(`deskgrid node --ui did not print its URL\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

async function openView(name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Views' }).getByRole('button', { name }).click();
}

/** Drops a file on an element the way a browser does: dragenter, dragover, drop with a DataTransfer. */
async function dropFile(selector: string, name: string, text: string, type: string): Promise<void> {
  // Written as page code: this test's TypeScript has no DOM types.
  const transfer = await page.evaluateHandle(
    `(() => {
      const data = new DataTransfer();
      data.items.add(new File([${JSON.stringify(text)}], ${JSON.stringify(name)}, { type: ${JSON.stringify(type)} }));
      return data;
    })()`,
  );
  for (const event of ['dragenter', 'dragover', 'drop']) {
    await page.dispatchEvent(selector, event, { dataTransfer: transfer });
  }
}

function customersCsv(): string {
  let text = 'customer,qty,price\n';
  for (let n = 0; n < ROWS; n += 1) text += `${n === BAD_ROW ? 'bad' : `customer-${n}`},${n},2.5\n`;
  return text;
}

describe.skipIf(reason !== null)('the UI against deskgrid node --ui on a LAN of namespaces', () => {
  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await grid.open(3, 'ui-netns');
    work = grid.work;
    const names = ['workshop-pc', 'lab-pc'];
    const hosts = [grid.host(2), grid.host(3)];
    for (const [at, host] of hosts.entries()) {
      writeFileSync(
        join(grid.homeOf(`node-${host.name}`), 'settings.json'),
        JSON.stringify({ name: names[at] }),
      );
    }
    await Promise.all(hosts.map((host) => grid.startNode(host, { code: CODE, cores: 1 })));
    const started = await startUiNode(grid.host(1), hosts);
    uiNode = started.node;
    // Chromium runs inside the UI node's namespace: the UI listens on that namespace's loopback.
    const wrapper = join(await mkdtemp(join(work, 'chromium-')), 'chromium-in-namespace.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${grid.host(1).name} ${CHROMIUM} "$@"\n`);
    await chmod(wrapper, 0o755);
    context = await chromium.launchPersistentContext(join(work, 'chromium-profile'), {
      executablePath: wrapper,
      headless: true,
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(started.url);
  }, 90_000);

  afterAll(async () => {
    await context?.close();
    await grid.close();
  });

  it('shows this computer first, then both peers, live', { timeout: 60_000 }, async () => {
    const cards = page.getByRole('list').getByRole('article');
    await expect.poll(() => cards.count(), { timeout: 20_000 }).toBe(3);
    expect(await cards.first().getAttribute('aria-label')).toBe('front-desk');
    await expect
      .poll(() => cards.allTextContents())
      .toEqual([
        expect.stringContaining('This computer'),
        expect.stringContaining('In use'),
        expect.stringContaining('In use'),
      ]);
    expect(await cards.nth(1).getAttribute('aria-label')).toBe('lab-pc');
    expect(await cards.nth(2).getAttribute('aria-label')).toBe('workshop-pc');
    // The token left the address bar once read.
    expect(page.url()).not.toContain('token=');
    await shot('nodes');
  });

  it(
    'previews, runs on several nodes, and shows results and a stack trace',
    { timeout: 120_000 },
    async () => {
      await openView('Submit');
      const scriptFile = join(work, 'line-total.mjs');
      writeFileSync(scriptFile, SCRIPT);
      // The script is picked, the dataset dropped.
      await page.getByRole('button', { name: 'Script', exact: true }).setInputFiles(scriptFile);
      await dropFile('[aria-label="Dataset drop zone"]', 'customers.csv', customersCsv(), 'text/csv');
      const preview = page.getByRole('region', { name: 'Preview' });
      await expect
        .poll(() => preview.textContent(), { timeout: 20_000 })
        .toContain(`${ROWS} jobs, one per CSV row`);
      const firstInput = await preview.getByRole('listitem').first().textContent();
      expect(firstInput).toBe('{"customer":"customer-0","qty":"0","price":"2.5"}');
      await shot('submit');

      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await expect
        .poll(() => page.getByRole('heading', { level: 1 }).textContent())
        .toBe('line-total.mjs over customers.csv');
      // Per-node progress moves on more than one node while the batch runs.
      const nodesMoving = async () => {
        const counts = await page.locator('[aria-label="Progress per node"] .node-done').allTextContents();
        return counts.filter((count) => Number(count.replace(/\s/g, '')) > 0).length;
      };
      await expect.poll(nodesMoving, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
      await shot('batch-running');
      await expect
        .poll(() => page.getByText('Finished', { exact: true }).count(), { timeout: 60_000 })
        .toBe(1);
      expect(await page.locator('[aria-label="Progress per node"] li').count()).toBe(3);
      await shot('batch');

      await openView('Results');
      await expect
        .poll(() => page.getByText(`${ROWS} results`, { exact: true }).count(), { timeout: 20_000 })
        .toBe(1);
      const table = page.getByRole('table');
      expect(await table.getByRole('columnheader').allTextContents()).toEqual([
        '#',
        'Status',
        'Input',
        'Value or error',
        'Node',
        'Time',
      ]);
      await page.getByRole('combobox', { name: 'Status' }).selectOption('failed');
      await expect.poll(() => page.getByText(`1 of ${ROWS} results`, { exact: true }).count()).toBe(1);
      await page.getByRole('button', { name: `Job ${BAD_ROW} details` }).click();
      const stack = page.getByLabel('Stack trace');
      await expect.poll(() => stack.textContent()).toContain(`Error: no price for row ${BAD_ROW}`);
      expect(await stack.textContent()).toContain('line-total.mjs');
      await shot('results-failed-job');
      await page.getByRole('button', { name: 'Close job details' }).click();
      await page.getByRole('combobox', { name: 'Status' }).selectOption('all');
      await page.getByRole('searchbox', { name: 'Search' }).fill('customer-42');
      await expect.poll(() => page.getByText(`1 of ${ROWS} results`, { exact: true }).count()).toBe(1);
      expect(await table.getByRole('row').nth(1).textContent()).toContain('105');
      await page.getByRole('searchbox', { name: 'Search' }).fill('');
      await expect.poll(() => page.getByText(`${ROWS} results`, { exact: true }).count()).toBe(1);
      await shot('results');

      const download = page.waitForEvent('download');
      await page.getByRole('button', { name: 'Export CSV' }).click();
      const file = await download;
      expect(file.suggestedFilename()).toBe('results.csv');
      const saved = await file.path();
      const lines = readFileSync(saved, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(ROWS + 1);
      expect(lines[1]).toMatch(/^0,done,/);
      expect(lines[BAD_ROW + 1]).toContain(`failed`);
    },
  );

  it('cancels a second batch', { timeout: 120_000 }, async () => {
    await openView('Submit');
    // The files are still chosen: run the same batch again, then cancel it.
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const cancel = page.getByRole('button', { name: 'Cancel', exact: true });
    await expect.poll(() => cancel.isEnabled(), { timeout: 20_000 }).toBe(true);
    await expect
      .poll(
        async () =>
          Number(((await page.getByTestId('finished-count').textContent()) ?? '0').replace(/\s/g, '')),
        {
          timeout: 30_000,
        },
      )
      .toBeGreaterThan(0);
    await cancel.click();
    await expect.poll(() => page.getByText('Finished', { exact: true }).count(), { timeout: 60_000 }).toBe(1);
    await shot('batch-cancelled');
    const cancelled = Number(
      ((await page.getByTestId('cancelled-count').textContent()) ?? '0').replace(/\s/g, ''),
    );
    expect(cancelled).toBeGreaterThan(0);
    expect(await cancel.isDisabled()).toBe(true);
    await shot('batch-cancelled');
  });

  it(
    'says why a batch cannot run, with its error code: a dataset that does not parse, a script that does not load',
    { timeout: 90_000 },
    async () => {
      await openView('Submit');
      // Line 3 is not JSON: the preview says so under the dataset, with the dataset's code.
      await dropFile(
        '[aria-label="Dataset drop zone"]',
        'broken.jsonl',
        '{"n":1}\n{"n":2}\n{"n": oops\n',
        '',
      );
      const datasetAlert = page.getByRole('group', { name: 'Dataset drop zone' }).getByRole('alert');
      await expect
        .poll(() => datasetAlert.textContent(), { timeout: 20_000 })
        .toContain('line 3 is not valid JSON');
      expect(await datasetAlert.getByLabel('Error code').textContent()).toBe('DG_ERR_DATASET');
      await shot('submit-dataset-error');

      // A good dataset, and a script that throws as it loads: Run answers with the load's code.
      await dropFile('[aria-label="Dataset drop zone"]', 'customers.csv', customersCsv(), 'text/csv');
      const scriptFile = join(work, 'unlicensed.mjs');
      writeFileSync(scriptFile, "throw new Error('no licence file');\nexport default (row) => row;\n");
      await page.getByRole('button', { name: 'Script', exact: true }).setInputFiles(scriptFile);
      const preview = page.getByRole('region', { name: 'Preview' });
      await expect.poll(() => preview.textContent(), { timeout: 20_000 }).toContain('unlicensed.mjs:');
      expect(await preview.textContent()).toContain(`${ROWS} jobs, one per CSV row`);
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      const runAlert = preview.getByRole('alert');
      await expect.poll(() => runAlert.textContent(), { timeout: 30_000 }).toContain('no licence file');
      expect(await runAlert.getByLabel('Error code').textContent()).toBe('DG_ERR_MODULE_LOAD');
      await shot('submit-run-error');
    },
  );

  it('shows the settings with the join code hidden until asked', { timeout: 60_000 }, async () => {
    await openView('Settings');
    const code = page.getByLabel('Join code', { exact: true });
    await expect.poll(() => code.textContent()).toMatch(/^[•-]+$/);
    await page.getByRole('button', { name: 'Show' }).click();
    expect((await code.textContent())?.replace(/-/g, '')).toBe(CODE.replace(/-/g, ''));
    await page.getByRole('button', { name: 'Hide' }).click();
    await expect
      .poll(() => page.getByRole('switch', { name: 'Accept jobs from the cluster' }).isChecked())
      .toBe(true);
    // How other people's jobs run here, told without running the doctor.
    await expect
      .poll(() => page.locator('.jobs-status').textContent())
      .toBe("Other people's jobs: confined (bubblewrap), network on");
    expect(await page.getByRole('switch', { name: 'Let their jobs use the network' }).isChecked()).toBe(true);
    await page.getByRole('button', { name: 'Run checks' }).click();
    const findings = page.getByRole('list', { name: 'Doctor findings' });
    await expect.poll(() => findings.textContent(), { timeout: 30_000 }).toContain('join code set');
    expect(await findings.textContent()).toContain('LAN discovery is turned off');
    await shot('settings');
    // Dark follows the system's setting.
    await page.emulateMedia({ colorScheme: 'dark' });
    await openView('Batch');
    await shot('batch-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    // Nothing the page did broke its Content-Security-Policy or threw.
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(uiNode.stderr()).not.toMatch(/internal error/);
  });
});
