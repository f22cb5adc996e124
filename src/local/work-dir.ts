/**
 * Where the local cluster keeps its work dir by default. Workloads run as an
 * unprivileged user (`nobody`) when Locus runs as root, so sandboxes and
 * volumes must sit under directories others can traverse: root's home is
 * mode 700, and then /var/lib/locus is used instead, as Mesos uses
 * /var/lib/mesos. `locus up` applies the same rule (src/app/up.ts), so both
 * commands share one cluster state.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';

/** The system-wide root used when the state dir is private. */
export const SYSTEM_WORKLOAD_ROOT = '/var/lib/locus';

/** Whether an unprivileged user can reach `path` (every existing ancestor is o+x). */
export function traversableByOthers(path: string): boolean {
  let p = resolve(path);
  for (;;) {
    if (existsSync(p) && (statSync(p).mode & 0o001) === 0) return false;
    const parent = dirname(p);
    if (parent === p) return true;
    p = parent;
  }
}

/**
 * The root for sandboxes, volumes and data: `stateDir` itself, unless we run
 * as root and it is not traversable by others. A non-root user's workloads
 * run as that user, so a private home is fine for them.
 */
export function workloadRootFor(
  stateDir: string,
  isRoot: boolean = process.getuid?.() === 0,
  defaultStateDir: string = resolve(process.env['LOCUS_HOME'] ?? join(homedir(), '.locus')),
): string {
  const dir = resolve(stateDir);
  if (!isRoot || traversableByOthers(dir)) return dir;
  // The default state dir maps to the system root itself (so `locus up` and `locus local`
  // share one cluster); any other private state dir gets its own directory beneath it, so
  // two of them (a demo and a test) never share datasets or outputs.
  if (dir === resolve(defaultStateDir)) return SYSTEM_WORKLOAD_ROOT;
  return join(SYSTEM_WORKLOAD_ROOT, `${basename(dir).replace(/[^A-Za-z0-9_.-]/g, '_')}-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`);
}

/** The default `locus local` work dir and why it is where it is. */
export interface DefaultWorkDir {
  readonly workDir: string;
  /** The state dir (`$LOCUS_HOME` or `~/.locus`) the work dir would normally live in. */
  readonly stateDir: string;
  /** True when the state dir was private and the system root was chosen. */
  readonly moved: boolean;
}

/** `<workload root>/local`, the directory `locus up` also uses. */
export function defaultLocalWorkDir(env: NodeJS.ProcessEnv = process.env, isRoot: boolean = process.getuid?.() === 0): DefaultWorkDir {
  const stateDir = resolve(env['LOCUS_HOME'] ?? join(homedir(), '.locus'));
  const root = workloadRootFor(stateDir, isRoot, stateDir);
  return { workDir: join(root, 'local'), stateDir, moved: root !== stateDir };
}
