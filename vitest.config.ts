import { defineConfig } from 'vitest/config';

// Integration suites share real kernel resources (cgroups, loopback ports,
// Ceph and Gluster daemons) and this machine has two cores, so files run one
// at a time; tests inside a file may still be concurrent where they opt in.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    reporters: ['default'],
    globalSetup: ['test/harness/global-setup.ts'],
  },
});
