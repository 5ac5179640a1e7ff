import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
  },
});
