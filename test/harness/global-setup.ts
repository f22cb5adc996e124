/**
 * Runs once before the suite: checks that the binaries the integration tests
 * need are installed, so a missing package fails loudly instead of as a
 * confusing timeout deep inside one test, and builds the CLI the tests spawn.
 */
import { execFileSync } from 'node:child_process';
import { ensureBuilt } from './build.js';

export default function setup(): void {
  const required = ['redis-server'];
  const missing = required.filter((bin) => {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(`missing binaries for the test suite: ${missing.join(', ')} (run 'npm test', which installs them)`);
  }
  // Integration tests spawn the built CLI; build it once here rather than in every file.
  ensureBuilt();
}
