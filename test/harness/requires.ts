/**
 * What a suite needs from the machine, and the one policy for when it is
 * missing. A skipped suite is a promise not checked, so it must never be
 * silent:
 * - in CI (`CI` set to anything but '', '0' or 'false') a missing dependency
 *   FAILS: the suite is replaced by one failing test whose message names the
 *   dependency and how to install it;
 * - elsewhere the suite is skipped and one line goes to stderr:
 *   `SKIPPED <suite>: <why> (install: <how>)`.
 *
 * Use describeWith / itWith instead of describe.skipIf / it.runIf, and
 * checkWith for a group of assertions inside a test that only hold on a
 * capable host (instead of `if (linux) expect(...)`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import { detectIsolation } from '../../src/executor/isolation/index.js';

/** A thing the suite needs from this machine, probed once. */
export interface Dependency {
  /** What it is, as a person would name it ("ZooKeeper", "Ceph 16"). */
  readonly name: string;
  /** How to get it on Debian (what scripts/setup.sh installs). */
  readonly install: string;
  /** Undefined when present; otherwise why it is missing. */
  readonly missing: string | undefined;
}

/** Whether this run is CI, where a missing dependency is a failure, not a skip. */
export function inCI(): boolean {
  const v = (process.env['CI'] ?? '').trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

function hasCommand(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Every reason among `checks` that fails, joined; undefined when all pass. */
function firstMissing(checks: readonly (readonly [boolean, string])[]): string | undefined {
  const why = checks.filter(([ok]) => !ok).map(([, reason]) => reason);
  return why.length === 0 ? undefined : why.join('; ');
}

const isRoot = (): boolean => process.getuid?.() === 0;
const commands = (bins: readonly string[]): (readonly [boolean, string])[] =>
  bins.map((b) => [hasCommand(b), `${b} is not installed`] as const);

/** Running as root (cgroups, mounts, FUSE daemons need it). */
export const ROOT: Dependency = {
  name: 'root',
  install: 'run the suite as root (sudo npm test)',
  missing: isRoot() ? undefined : `running as uid ${String(process.getuid?.())}, not root`,
};

/** Debian's ZooKeeper (the jars test/harness/zk.ts starts) and a Java runtime. */
export const ZOOKEEPER: Dependency = {
  name: 'ZooKeeper',
  install: 'apt-get install zookeeper (scripts/setup.sh test does it)',
  missing: firstMissing([
    ...['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar'].map((j) => [existsSync(j), `${j} is missing`] as const),
    ...commands(['java']),
  ]),
};

/** A Ceph 16 cluster the harness can start (test/harness/ceph.ts): daemons, tools, FUSE, root. */
export const CEPH: Dependency = {
  name: 'Ceph 16',
  install: 'apt-get install ceph ceph-mon ceph-osd ceph-mds ceph-fuse, and run as root with /dev/fuse (scripts/setup.sh test)',
  missing: firstMissing([
    [isRoot(), 'not root'],
    ...commands(['ceph', 'ceph-mon', 'ceph-osd', 'ceph-mds', 'ceph-fuse', 'ceph-authtool', 'monmaptool', 'osdmaptool', 'rados']),
    [existsSync('/dev/fuse'), '/dev/fuse is missing'],
  ]),
};

/** A glusterd the harness can start (test/harness/gluster.ts): daemon, FUSE client, getfattr, root. */
export const GLUSTER: Dependency = {
  name: 'GlusterFS',
  install: 'apt-get install glusterfs-server glusterfs-client attr, and run as root with /dev/fuse (scripts/setup.sh test)',
  missing: firstMissing([
    [isRoot(), 'not root'],
    ...commands(['glusterd', 'glusterfs', 'getfattr', 'nsenter', 'unshare']),
    [existsSync('/dev/fuse'), '/dev/fuse is missing'],
  ]),
};

const isolation = await detectIsolation();

/**
 * Linux isolation (namespaces through bubblewrap, cgroups v1 or v2): what
 * `locus doctor` reports as `isolation: linux`. The reason is the detector's own.
 */
export const LINUX_ISOLATION: Dependency = {
  name: 'linux isolation (namespaces and cgroups)',
  install: 'run as root on Linux with cgroups mounted and bubblewrap installed (apt-get install bubblewrap); `locus doctor` says what is missing',
  missing: isolation.kind === 'linux' ? undefined : isolation.notes.join('; ') || 'detectIsolation() chose process isolation',
};

/**
 * Names given in LOCUS_TEST_PRETEND_MISSING (comma-separated, case-insensitive,
 * e.g. `ceph,zookeeper`) count as missing: how to see what a machine without
 * them does (the SKIPPED lines, or with CI=true the failures) without
 * uninstalling anything.
 */
function pretendMissing(d: Dependency): boolean {
  const names = (process.env['LOCUS_TEST_PRETEND_MISSING'] ?? '').split(',').map((x) => x.trim().toLowerCase()).filter((x) => x !== '');
  return names.some((n) => d.name.toLowerCase().startsWith(n));
}

function unmet(deps: readonly Dependency[]): Dependency[] {
  return deps
    .map((d) => (d.missing === undefined && pretendMissing(d) ? { ...d, missing: 'pretended missing (LOCUS_TEST_PRETEND_MISSING)' } : d))
    .filter((d) => d.missing !== undefined);
}

/** What to do with a suite, a test or a group of assertions that needs `deps`. */
export type Decision =
  | { readonly kind: 'run' }
  | { readonly kind: 'fail'; readonly message: string }
  | { readonly kind: 'skip'; readonly line: string };

/**
 * The policy, pure: run when everything is present; otherwise fail in CI
 * (the message names each dependency, why it is missing and how to install
 * it) or skip with one `SKIPPED <what>: ...` line.
 */
export function decide(what: string, deps: readonly Dependency[], ci: boolean = inCI()): Decision {
  const missing = unmet(deps);
  if (missing.length === 0) return { kind: 'run' };
  if (ci) {
    return { kind: 'fail', message: missing.map((d) => `${what} needs ${d.name}: ${d.missing ?? ''} (install: ${d.install})`).join('\n') };
  }
  const why = missing.map((d) => `${d.name} missing: ${d.missing ?? ''} (install: ${d.install})`).join('; ');
  return { kind: 'skip', line: `SKIPPED ${what}: ${why}` };
}

/**
 * `describe` for a suite that needs `deps`. All present: a plain describe.
 * Missing in CI: one failing test naming them. Missing elsewhere: skipped,
 * with one SKIPPED line on stderr.
 */
export function describeWith(deps: readonly Dependency[], name: string, body: () => void): void {
  const d = decide(name, deps);
  if (d.kind === 'run') {
    describe(name, body);
  } else if (d.kind === 'fail') {
    describe(name, () => {
      it('has what it needs', () => {
        throw new Error(d.message);
      });
    });
  } else {
    process.stderr.write(`${d.line}\n`);
    // The reason goes in the name too: vitest's own report shows it beside the skip.
    describe.skip(`${name} (${d.line})`, body);
  }
}

/** `it` for one test that needs `deps`, with the same policy as describeWith. */
export function itWith(deps: readonly Dependency[], name: string, fn: () => Promise<void> | void, timeoutMs?: number): void {
  const d = decide(name, deps);
  if (d.kind === 'run') {
    it(name, fn, timeoutMs);
  } else if (d.kind === 'fail') {
    it(name, () => {
      throw new Error(d.message);
    });
  } else {
    process.stderr.write(`${d.line}\n`);
    it.skip(`${name} (${d.line})`, fn, timeoutMs);
  }
}

/**
 * Assertions inside a running test that only hold where `deps` are present
 * (the workload's pid namespace, an OOM reason from cgroups). Present: run
 * them. Missing in CI: throw, failing the test. Missing elsewhere: one
 * SKIPPED line, and the rest of the test goes on.
 */
export async function checkWith(deps: readonly Dependency[], what: string, assertions: () => Promise<void> | void): Promise<void> {
  const d = decide(what, deps);
  if (d.kind === 'run') await assertions();
  else if (d.kind === 'fail') throw new Error(d.message);
  else process.stderr.write(`${d.line}\n`);
}
