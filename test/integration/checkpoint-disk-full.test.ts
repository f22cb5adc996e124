/**
 * Checkpoints on a full disk (the chaos suite's fill-disk fills an agent's): the write fails,
 * the checkpoint in place stays whole, and no half-written temporary file is left to fill the
 * disk further. A real 256 KiB tmpfs, filled by the test.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from '../../src/local/checkpoint.js';
import { ROOT, describeWith } from '../harness/requires.js';

describeWith([ROOT], 'a checkpoint written to a full disk', () => {
  let disk: string;
  let mounted = false;

  beforeAll(() => {
    disk = mkdtempSync(join(tmpdir(), 'locus-cp-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', disk]);
    mounted = true;
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', ['-l', disk]);
    rmSync(disk, { recursive: true, force: true });
  });

  it('fails with ENOSPC, keeps the old checkpoint whole and leaves no temporary file', () => {
    const path = join(disk, 'agent.json');
    writeCheckpoint(path, { id: 'S0', tasks: [] });
    // Fill what is left, then ask for a checkpoint larger than any space that remains.
    try {
      writeFileSync(join(disk, 'filler'), Buffer.alloc(1024 * 1024));
    } catch {
      // full now, as intended
    }
    const big = { id: 'S0', tasks: Array.from({ length: 2000 }, (_, i) => ({ id: `task-${i}`, note: 'x'.repeat(64) })) };
    expect(() => writeCheckpoint(path, big)).toThrow(/ENOSPC/);
    expect(readCheckpoint(path)).toEqual({ id: 'S0', tasks: [] });
    expect(readdirSync(disk).filter((n) => n.includes('.tmp-'))).toEqual([]);
    // Space back: the next write goes through.
    rmSync(join(disk, 'filler'));
    writeCheckpoint(path, big);
    expect((readCheckpoint(path) as { tasks: unknown[] }).tasks).toHaveLength(2000);
  });
});
