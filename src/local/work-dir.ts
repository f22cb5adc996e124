/**
 * Where the local cluster keeps its work dir by default. Workloads run as an
 * unprivileged user (`nobody`) when Locus runs as root, so sandboxes and
 * volumes must sit under directories others can traverse: root's home is
 * mode 700, and then /var/lib/locus is used instead, as Mesos uses
 * /var/lib/mesos. `locus up` applies the same rule (src/app/up.ts), so both
 * commands share one cluster state. Those directories are then closed so
 * that others pass through them but cannot list them (closeStateDir).
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from '../obs/log.js';

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

/** What `closeStateDir` did to a directory, for a log line at start-up. */
export interface ClosedStateDir {
  readonly dir: string;
  /** Paths whose modes were tightened (an earlier version left them open). */
  readonly tightened: readonly string[];
  /** Why the directory was left as it was (not this process's, or shared like /tmp). */
  readonly skipped?: string;
}

/** Bits taken from Locus's directories (others keep search, to pass through) and from its files. */
const GROUP_OTHER_READ_WRITE = 0o066;
const GROUP_OTHER_ALL = 0o077;
const STICKY = 0o1000;

/**
 * Create a state directory of Locus's, or tighten one an earlier version left open (0755), so
 * a task cannot see into it: the directory loses read and write for group and others, keeping
 * their search bit — a task still reaches by its full path what it is given beneath (its
 * sandbox, its output staging directory, the agents' data directories), but cannot list the
 * directory — and with `privateFiles` the files directly in it become the owner's alone.
 * Without a mount namespace (process isolation) a task sees every host path that permissions
 * allow, so these modes are what keeps Locus's state from it. Bits are only ever removed (a
 * private 0700 directory stays 0700, so `workloadRootFor` decides as before). A directory this
 * process does not own, or a shared one (sticky, like /tmp), is left alone and reported.
 */
export function closeStateDir(dir: string, options: { readonly privateFiles: boolean }): ClosedStateDir {
  // A directory made here is 0711 from the start (the umask can only take bits away).
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const uid = process.geteuid?.();
  const st = statSync(dir);
  if (uid !== undefined && st.uid !== uid) return { dir, tightened: [], skipped: `owned by uid ${st.uid}, not this process's ${uid}` };
  if ((st.mode & STICKY) !== 0) return { dir, tightened: [], skipped: 'a shared directory (sticky bit): not Locus\'s own' };
  const tightened: string[] = [];
  const mode = st.mode & 0o7777;
  if ((mode & GROUP_OTHER_READ_WRITE) !== 0) {
    chmodSync(dir, mode & ~GROUP_OTHER_READ_WRITE);
    tightened.push(dir);
  }
  if (options.privateFiles) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isFile()) continue;
      const path = join(dir, e.name);
      const f = lstatSync(path);
      if ((uid !== undefined && f.uid !== uid) || (f.mode & GROUP_OTHER_ALL) === 0) continue;
      chmodSync(path, f.mode & 0o7777 & ~GROUP_OTHER_ALL);
      tightened.push(path);
    }
  }
  return { dir, tightened };
}

/** `closeStateDir`, saying in the log what was tightened or why nothing could be (`what`: "state dir", "work dir"). */
export function closeStateDirLogged(dir: string, options: { readonly privateFiles: boolean }, logger: Logger, what: string): ClosedStateDir {
  const closed = closeStateDir(dir, options);
  if (closed.tightened.length > 0) logger.info({ tightened: closed.tightened }, `closed the ${what} to other users (listing${options.privateFiles ? ' and its files' : ''} refused, traversal kept)`);
  if (closed.skipped !== undefined) logger.warn({ dir, why: closed.skipped }, `the ${what} was left as it is: tasks may be able to list it`);
  return closed;
}
