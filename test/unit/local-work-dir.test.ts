/**
 * The default work dir of `locus local`: inside the state dir when others
 * can traverse it, /var/lib/locus/local when running as root with a private
 * state dir (root's home is mode 700 and workloads run as `nobody`).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultLocalWorkDir, traversableByOthers, workloadRootFor } from '../../src/local/work-dir.js';

describe('local work dir', () => {
  const base = mkdtempSync(join(tmpdir(), 'locus-workdir-'));
  chmodSync(base, 0o755);
  const open = join(base, 'open', '.locus');
  const privateHome = join(base, 'home');
  mkdirSync(open, { recursive: true });
  mkdirSync(join(privateHome, '.locus'), { recursive: true });
  chmodSync(privateHome, 0o700);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('tells traversable paths (every existing ancestor o+x) from private ones', () => {
    expect(traversableByOthers(open)).toBe(true);
    expect(traversableByOthers(join(open, 'not', 'there', 'yet'))).toBe(true);
    expect(traversableByOthers(join(privateHome, '.locus'))).toBe(false);
    expect(traversableByOthers(join(privateHome, '.locus', 'missing'))).toBe(false);
  });

  it('moves to /var/lib/locus only for root with a private state dir', () => {
    const home = join(privateHome, '.locus');
    expect(workloadRootFor(open, true, home)).toBe(open);
    // The default state dir maps to the system root itself, shared by `up` and `local`...
    expect(workloadRootFor(home, true, home)).toBe('/var/lib/locus');
    // ...any other private state dir to a directory of its own beneath it.
    const other = workloadRootFor(join(privateHome, 'demo'), true, home);
    expect(other).toMatch(/^\/var\/lib\/locus\/demo-[0-9a-f]{8}$/);
    expect(workloadRootFor(join(privateHome, 'demo'), true, home)).toBe(other);
    expect(workloadRootFor(home, false, home)).toBe(home);
  });

  it('defaults to <LOCUS_HOME>/local and says when it moved', () => {
    expect(defaultLocalWorkDir({ LOCUS_HOME: open }, true)).toEqual({ workDir: join(open, 'local'), stateDir: open, moved: false });
    expect(defaultLocalWorkDir({ LOCUS_HOME: join(privateHome, '.locus') }, true)).toEqual({ workDir: '/var/lib/locus/local', stateDir: join(privateHome, '.locus'), moved: true });
    expect(defaultLocalWorkDir({ LOCUS_HOME: join(privateHome, '.locus') }, false).moved).toBe(false);
  });
});
