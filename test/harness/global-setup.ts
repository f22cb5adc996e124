/**
 * Runs once before the suite: checks that the binaries the integration tests
 * need are installed, so a missing package fails loudly instead of as a
 * confusing timeout deep inside one test.
 */
import { execFileSync } from 'node:child_process';

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
}
