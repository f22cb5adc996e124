/**
 * The default work dir of `locus local`: inside the state dir when others
 * can traverse it, /var/lib/locus/local when running as root with a private
 * state dir (root's home is mode 700 and workloads run as `nobody`).
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, itWith } from '../harness/requires.js';
import { writeCheckpoint } from '../../src/local/checkpoint.js';
import { closeStateDir, defaultLocalWorkDir, traversableByOthers, workloadRootFor } from '../../src/local/work-dir.js';

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

describe('closing a state dir to other users', () => {
  const base = mkdtempSync(join(tmpdir(), 'locus-closedir-'));
  chmodSync(base, 0o755);
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const mode = (p: string): number => statSync(p).mode & 0o7777;

  it('tightens an open state dir: listing refused, traversal kept, its files its own', () => {
    const dir = join(base, 'open');
    mkdirSync(join(dir, 'outputs'), { recursive: true });
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'outputs'), 0o1777);
    writeFileSync(join(dir, 'framework-id'), 'fw\n', { mode: 0o644 });
    writeFileSync(join(dir, 'run.sh'), 'true\n', { mode: 0o755 });
    const r = closeStateDir(dir, { privateFiles: true });
    expect(r.skipped).toBeUndefined();
    expect(mode(dir)).toBe(0o711);
    expect(mode(join(dir, 'framework-id'))).toBe(0o600);
    expect(mode(join(dir, 'run.sh'))).toBe(0o700);
    // What tasks are given beneath it keeps its own mode.
    expect(mode(join(dir, 'outputs'))).toBe(0o1777);
    expect(traversableByOthers(join(dir, 'outputs'))).toBe(true);
    expect([...r.tightened].sort()).toEqual([dir, join(dir, 'framework-id'), join(dir, 'run.sh')].sort());
    // Done once: a second start finds nothing to change.
    expect(closeStateDir(dir, { privateFiles: true }).tightened).toEqual([]);
  });

  it('leaves files alone without privateFiles (a work dir whose topology executors read)', () => {
    const dir = join(base, 'work');
    mkdirSync(dir);
    chmodSync(dir, 0o775);
    writeFileSync(join(dir, 'topology.json'), '{}', { mode: 0o644 });
    closeStateDir(dir, { privateFiles: false });
    expect(mode(dir)).toBe(0o711);
    expect(mode(join(dir, 'topology.json'))).toBe(0o644);
  });

  it('creates a missing one closed, and never opens a private one', () => {
    const fresh = join(base, 'new', 'state');
    closeStateDir(fresh, { privateFiles: true });
    expect(mode(fresh)).toBe(0o711 & ~process.umask());
    const priv = join(base, 'private');
    mkdirSync(priv);
    chmodSync(priv, 0o700);
    expect(closeStateDir(priv, { privateFiles: true }).tightened).toEqual([]);
    expect(mode(priv)).toBe(0o700);
  });

  it('leaves a shared directory (sticky, like /tmp) as it is and says why', () => {
    const shared = join(base, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const r = closeStateDir(shared, { privateFiles: true });
    expect(r.skipped).toMatch(/sticky/);
    expect(mode(shared)).toBe(0o1777);
  });

  itWith([ROOT], 'leaves a directory another user owns as it is and says why (gives one away: needs root)', () => {
    const theirs = join(base, 'theirs');
    mkdirSync(theirs);
    chmodSync(theirs, 0o755);
    chownSync(theirs, 65534, 65534);
    const r = closeStateDir(theirs, { privateFiles: true });
    expect(r.skipped).toMatch(/owned by uid 65534/);
    expect(mode(theirs)).toBe(0o755);
  });
});

describe('checkpoints', () => {
  const base = mkdtempSync(join(tmpdir(), 'locus-checkpoint-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('are their owner\'s alone unless a mode is given, also over a leftover temporary file', () => {
    const cp = join(base, 'meta', 'agent.json');
    // A crash left the temporary file behind, world-readable.
    mkdirSync(join(base, 'meta'));
    writeFileSync(`${cp}.tmp-${process.pid}`, 'half', { mode: 0o644 });
    writeCheckpoint(cp, { id: 'a' });
    expect(statSync(cp).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(cp, 'utf8'))).toEqual({ id: 'a' });
    const topology = join(base, 'topology.json');
    writeCheckpoint(topology, { agents: [] }, 0o644);
    expect(statSync(topology).mode & 0o777).toBe(0o644);
  });
});
