import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    globalSetup: ['./test/support/global-setup.ts'],
    // Nothing a test starts may multicast on a real interface: tests that run discovery inside
    // their own network namespaces turn it back on for the processes they start there.
    env: { DESKGRID_DISCOVERY: 'off' },
    // Integration tests start real worker processes; two cores are shared by everything.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'engine',
          include: ['test/**/*.test.ts'],
          exclude: ['test/renderer/**'],
        },
      },
      {
        // The renderer's stores and components, compiled by Svelte for the browser, in happy-dom.
        extends: true,
        plugins: [svelte({ configFile: './renderer/svelte.config.js' })],
        resolve: { conditions: ['browser'] },
        test: { name: 'renderer', include: ['test/renderer/**/*.test.ts'], environment: 'happy-dom' },
      },
    ],
  },
});
