/**
 * chownTree (src/executor/isolation/host.ts) gives a sandbox to the workload's user: a small flat
 * tree (a sandbox an agent just made, with its volume links) and a deep one alike, every entry
 * including symlinks themselves (never what they point to). Needs root to give files away.
 */
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { chownTree } from '../../src/executor/isolation/host.js';
import { ROOT, describeWith } from '../harness/requires.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'locus-chown-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describeWith([ROOT], 'chownTree (gives files away: needs root)', () => {
  it('gives a flat sandbox and its links (not their targets) to the user', async () => {
    const target = join(dir, 'target');
    writeFileSync(target, 'x');
    const sb = join(dir, 'sandbox');
    mkdirSync(sb);
    writeFileSync(join(sb, 'stdout'), '');
    symlinkSync(target, join(sb, 'volume'));
    await chownTree(sb, 4242, 4343);
    for (const p of [sb, join(sb, 'stdout'), join(sb, 'volume')]) expect([lstatSync(p).uid, lstatSync(p).gid], p).toEqual([4242, 4343]);
    expect(lstatSync(target).uid).toBe(0);
  });

  it('walks a tree with directories, and a wide one, to every entry', async () => {
    const sb = join(dir, 'deep');
    mkdirSync(join(sb, 'a', 'b'), { recursive: true });
    writeFileSync(join(sb, 'a', 'b', 'f'), 'x');
    const wide = join(dir, 'wide');
    mkdirSync(wide);
    for (let i = 0; i < 40; i++) writeFileSync(join(wide, `f${i}`), '');
    await chownTree(sb, 4242, 4242);
    await chownTree(wide, 4242, 4242);
    for (const p of [sb, join(sb, 'a'), join(sb, 'a', 'b'), join(sb, 'a', 'b', 'f'), wide, join(wide, 'f0'), join(wide, 'f39')]) expect(lstatSync(p).uid, p).toBe(4242);
  });
});
