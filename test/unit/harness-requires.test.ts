/**
 * The policy for missing test dependencies (test/harness/requires.ts): in CI
 * a missing dependency is a failure that says what to install; elsewhere a
 * skip that says so on one line. Never silent, never a pass.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decide, inCI, type Dependency } from '../harness/requires.js';

const present: Dependency = { name: 'Widget', install: 'apt-get install widget', missing: undefined };
const absent: Dependency = { name: 'Gadget', install: 'apt-get install gadget', missing: 'gadgetd is not installed' };
const alsoAbsent: Dependency = { name: 'Gizmo', install: 'apt-get install gizmo', missing: '/dev/gizmo is missing' };

describe('missing test dependencies', () => {
  const saved = { CI: process.env['CI'], PRETEND: process.env['LOCUS_TEST_PRETEND_MISSING'] };
  afterEach(() => {
    for (const [k, v] of [['CI', saved.CI], ['LOCUS_TEST_PRETEND_MISSING', saved.PRETEND]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('runs when everything is present, in CI or not', () => {
    expect(decide('suite', [present], true)).toEqual({ kind: 'run' });
    expect(decide('suite', [present], false)).toEqual({ kind: 'run' });
    expect(decide('suite', [], true)).toEqual({ kind: 'run' });
  });

  it('fails in CI, naming each missing dependency, why, and how to install it', () => {
    const d = decide('Ceph suite', [present, absent, alsoAbsent], true);
    expect(d.kind).toBe('fail');
    expect(d).toEqual({
      kind: 'fail',
      message: 'Ceph suite needs Gadget: gadgetd is not installed (install: apt-get install gadget)\n'
        + 'Ceph suite needs Gizmo: /dev/gizmo is missing (install: apt-get install gizmo)',
    });
  });

  it('skips outside CI with one SKIPPED line naming the suite and the reasons', () => {
    expect(decide('Ceph suite', [absent, alsoAbsent], false)).toEqual({
      kind: 'skip',
      line: 'SKIPPED Ceph suite: Gadget missing: gadgetd is not installed (install: apt-get install gadget); '
        + 'Gizmo missing: /dev/gizmo is missing (install: apt-get install gizmo)',
    });
  });

  it('reads CI the way CI services set it', () => {
    for (const [value, ci] of [['true', true], ['1', true], ['TRUE', true], ['', false], ['0', false], ['false', false]] as const) {
      process.env['CI'] = value;
      expect(inCI(), `CI=${value}`).toBe(ci);
    }
    delete process.env['CI'];
    expect(inCI()).toBe(false);
    expect(decide('suite', [absent])).toMatchObject({ kind: 'skip' });
    process.env['CI'] = 'true';
    expect(decide('suite', [absent])).toMatchObject({ kind: 'fail' });
  });

  it('LOCUS_TEST_PRETEND_MISSING makes a present dependency count as missing', () => {
    process.env['LOCUS_TEST_PRETEND_MISSING'] = 'zookeeper, widget';
    expect(decide('suite', [present], false)).toEqual({
      kind: 'skip',
      line: 'SKIPPED suite: Widget missing: pretended missing (LOCUS_TEST_PRETEND_MISSING) (install: apt-get install widget)',
    });
  });
});
