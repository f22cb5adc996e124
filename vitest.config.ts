import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/**
 * Files that must not run beside another file: they share fixed kernel or
 * testbed resources (the 10.77.0.0/24 network namespaces, the Ceph and
 * Gluster daemons, cgroup limits and OOM kills), look for leftover processes
 * by command line, or judge recovery from faults that another file's load on
 * two cores would change: the chaos suite ran in the shared group for three
 * CI runs and in the third its cut-agent job failed (CI run 14), so it runs
 * alone again. The conformance suite runs in the shared group: everything it
 * starts is on free ports and its own directories.
 */
const EXCLUSIVE = [
  'test/integration/chaos.test.ts',
  'test/conformance/genuine-hosts.test.ts',
  'test/integration/hosts-*.test.ts',
  'test/integration/demo-hosts.test.ts',
  'test/integration/storage-ceph.test.ts',
  'test/integration/storage-gluster.test.ts',
  'test/integration/storage-remote-read.test.ts',
  'test/integration/compose.test.ts',
  'test/integration/isolation-*.test.ts',
  'test/integration/executor-failures.test.ts',
  'test/integration/executor-cancel.test.ts',
  'test/integration/executor-run.test.ts',
  'test/integration/jobs-cancel.test.ts',
  'test/integration/local-tenant-uids.test.ts',
];

const shared: TestProjectInlineConfiguration['test'] = {
  testTimeout: 60_000,
  hookTimeout: 180_000,
  pool: 'forks',
};

// The rest (unit tests, and integration files that bring their own Redis, local cluster and
// framework on free loopback ports) run two at a time first, one per core; then the exclusive
// files one at a time. Tests inside a file may still be concurrent where they opt in.
export default defineConfig({
  test: {
    reporters: ['default'],
    globalSetup: ['test/harness/global-setup.ts'],
    projects: [
      {
        test: {
          ...shared,
          name: 'shared',
          include: ['test/**/*.test.ts'],
          exclude: EXCLUSIVE,
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          ...shared,
          name: 'exclusive',
          include: EXCLUSIVE,
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
