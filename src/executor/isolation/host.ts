/**
 * Small facts about the host that both isolators need: users from
 * /etc/passwd, process start times from /proc, executables on PATH, disk usage
 * of a directory tree (like `du`), and signal names.
 */
import { constants as osConstants } from 'node:os';
import { promises as fsp, readFileSync, accessSync, constants as fsConstants, lchownSync, lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { LocusError } from '../../core/errors.js';

/** A resolved account to run a workload as. */
export interface HostUser {
  readonly name: string | undefined;
  readonly uid: number;
  readonly gid: number;
}

/**
 * Resolve a user name or numeric uid through /etc/passwd. A numeric uid with
 * no entry is allowed (gid = uid), because images often run as bare ids.
 */
export function resolveUser(user: string, passwd = readPasswd()): HostUser {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length < 4) continue;
    if (f[0] === user || f[2] === user) return { name: f[0], uid: Number(f[2]), gid: Number(f[3]) };
  }
  if (/^\d+$/.test(user)) return { name: undefined, uid: Number(user), gid: Number(user) };
  throw new LocusError('INVALID_FIELD', `unknown user '${user}' (not in /etc/passwd)`, { field: 'user' });
}

let passwdCache: { mtimeMs: number; size: number; text: string } | undefined;

/** /etc/passwd, read again only when it changed (a stat per launch instead of a read). */
function readPasswd(): string {
  try {
    const st = statSync('/etc/passwd');
    if (passwdCache === undefined || passwdCache.mtimeMs !== st.mtimeMs || passwdCache.size !== st.size) {
      passwdCache = { mtimeMs: st.mtimeMs, size: st.size, text: readFileSync('/etc/passwd', 'utf8') };
    }
    return passwdCache.text;
  } catch {
    return '';
  }
}

/** The start time (clock ticks since boot) of a live process, or undefined when it is gone. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/** Executables found lately (name and PATH → path, when): most containers run the same few programs. */
const foundExecutables = new Map<string, { at: number; path: string }>();
const FOUND_TTL_MS = 5000;

/** Find an executable on a PATH string, or undefined. A find is remembered for a few seconds. */
export function findExecutable(name: string, pathEnv: string, now = Date.now()): string | undefined {
  if (name.includes('/')) return name;
  const key = `${name}\0${pathEnv}`;
  const hit = foundExecutables.get(key);
  if (hit !== undefined && now - hit.at <= FOUND_TTL_MS) return hit.path;
  const path = searchPath(name, pathEnv);
  if (path !== undefined) {
    if (foundExecutables.size >= 256) foundExecutables.clear();
    foundExecutables.set(key, { at: now, path });
  } else {
    foundExecutables.delete(key);
  }
  return path;
}

function searchPath(name: string, pathEnv: string): string | undefined {
  for (const dir of pathEnv.split(':')) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** The PATH used when a spec gives none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Entries a disk-usage walk reads synchronously before it goes on through the thread pool. */
export const SYNC_WALK_ENTRIES = 512;

/**
 * Bytes allocated on disk under a directory tree, counting each inode once
 * (hard links) and not following symlinks — what `du -s` reports.
 *
 * The first `syncEntries` entries are read with synchronous calls: most
 * sandboxes hold a handful of files, and each asynchronous call is two thread
 * switches, which on a small VM cost more than the call itself (a 900-entry
 * walk: 42–85 ms of CPU asynchronously, 10 ms synchronously). Past that budget
 * the walk goes on asynchronously, so a sandbox of many files does not hold the
 * event loop.
 */
export async function diskUsageBytes(root: string, syncEntries = SYNC_WALK_ENTRIES): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  let budget = syncEntries;
  const count = (st: Stats): boolean => {
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return false;
    seen.add(key);
    total += st.blocks * 512;
    return st.isDirectory();
  };
  const walk = async (path: string): Promise<void> => {
    let names: string[];
    if (budget > 0) {
      budget--;
      try {
        if (!count(lstatSync(path))) return;
        names = readdirSync(path);
      } catch {
        return;
      }
    } else {
      try {
        if (!count(await fsp.lstat(path))) return;
        names = await fsp.readdir(path);
      } catch {
        return;
      }
    }
    for (const n of names) await walk(join(path, n));
  };
  await walk(root);
  return total;
}

/** A signal's name from its number (`9` → `SIGKILL`), or undefined. */
export function signalName(num: number): string | undefined {
  for (const [name, n] of Object.entries(osConstants.signals)) if (n === num) return name;
  return undefined;
}

/** A signal's number from its name, or undefined. */
export function signalNumber(name: string): number | undefined {
  const n = (osConstants.signals as Record<string, number | undefined>)[name];
  return n;
}

/** A tree with at most this many entries at its top, none a directory, is given away synchronously (chownTree). */
const SMALL_TREE_ENTRIES = 16;

/**
 * Change the owner of a tree (the sandbox) so the workload's user can write it. A sandbox an agent
 * has just made holds only the links to its volumes: it is done with a few synchronous calls.
 * Walked through libuv's thread pool, its calls queued behind the agent's checkpoint fsyncs while
 * a placement pass ran, on the way from a new executor's launch to its process (CPU profile of a
 * cold bench:short run; that way took 25 ms after this change against 34 before, in one run each).
 */
export async function chownTree(root: string, uid: number, gid: number): Promise<void> {
  // A directory's entries before the directory itself: until it is the user's, nothing of the
  // user's can swap an entry for a link to a file it would then be given.
  try {
    const st = lstatSync(root);
    if (!st.isDirectory()) {
      lchownSync(root, uid, gid);
      return;
    }
    const top = readdirSync(root, { withFileTypes: true });
    if (top.length <= SMALL_TREE_ENTRIES && !top.some((e) => e.isDirectory())) {
      for (const e of top) lchownSync(join(root, e.name), uid, gid);
      lchownSync(root, uid, gid);
      return;
    }
  } catch {
    // Gone or unreadable: the walk below reports what it can.
  }
  const walk = async (path: string, top: boolean): Promise<void> => {
    let st;
    try {
      st = await fsp.lstat(path);
    } catch (err) {
      // An entry that vanished meanwhile is no one's to give; the tree itself must be there.
      if (top) throw err;
      return;
    }
    if (st.isDirectory()) for (const n of await fsp.readdir(path)) await walk(join(path, n), false);
    await fsp.lchown(path, uid, gid);
  };
  await walk(root, true);
}

/** Sleep ms (polling loops in I/O code, never in decision code). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
