/**
 * Expanding a path (a file, a directory or a glob) into the files it names,
 * over any backend that can stat and list. Directories are walked
 * recursively; inside them, names starting with `_` or `.` are skipped
 * (Hadoop's convention for markers like `_SUCCESS` and checksum files).
 */
import { mapLimit } from './concurrency.js';

/** A file or directory as a backend lists it. */
export interface Entry {
  /** Absolute path within the backend's namespace (starts with '/'). */
  readonly path: string;
  readonly type: 'file' | 'dir';
  readonly size: number;
}

/** What a backend offers for expansion. */
export interface Lister {
  /** The entry at path, or undefined when it does not exist. */
  stat(path: string): Promise<Entry | undefined>;
  /** The children of a directory. */
  list(dir: string): Promise<Entry[]>;
}

/** Whether a path contains glob characters. */
export function hasGlob(path: string): boolean {
  return /[*?[{]/.test(path);
}

/** A glob segment (`*`, `?`, `[a-z]`, `{a,b}`) as a RegExp matching one path segment. */
export function globToRegExp(segment: string): RegExp {
  let re = '';
  let inBraces = false;
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = segment.slice(i + 1, end).replace(/\\/g, '\\\\');
        re += body.startsWith('!') || body.startsWith('^') ? `[^${body.slice(1)}]` : `[${body}]`;
        i = end;
      }
    } else if (c === '{') {
      inBraces = true;
      re += '(?:';
    } else if (c === '}' && inBraces) {
      inBraces = false;
      re += ')';
    } else if (c === ',' && inBraces) re += '|';
    else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  if (inBraces) re += ')';
  return new RegExp(`^${re}$`);
}

const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const join = (dir: string, name: string): string => (dir.endsWith('/') ? dir + name : `${dir}/${name}`);

/** Hidden names, as Hadoop's inputs have them: a stage's `_SUCCESS` marker, `.locus-staging`, `.crc` files. */
function isHidden(name: string): boolean {
  return name.startsWith('_') || name.startsWith('.');
}

/** Recursively list the files under a directory (hidden names skipped), sorted by path. */
export async function walkFiles(dir: string, lister: Lister, concurrency: number): Promise<Entry[]> {
  const files: Entry[] = [];
  let level: string[] = [dir];
  // Breadth-first by level so each level's directories are listed concurrently.
  while (level.length > 0) {
    const listed = await mapLimit(level, concurrency, (d) => lister.list(d));
    const next: string[] = [];
    for (const children of listed) {
      for (const e of children) {
        const name = baseName(e.path);
        if (isHidden(name)) continue;
        if (e.type === 'dir') next.push(e.path);
        else files.push(e);
      }
    }
    level = next;
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The files a path names: itself if a file, everything under it if a
 * directory, every match if a glob (matched directories are walked).
 * Returns undefined when nothing exists at a non-glob path.
 */
export async function expandPath(path: string, lister: Lister, concurrency = 8): Promise<Entry[] | undefined> {
  if (!hasGlob(path)) {
    const e = await lister.stat(path);
    if (e === undefined) return undefined;
    return e.type === 'file' ? [e] : await walkFiles(e.path, lister, concurrency);
  }
  const segments = path.split('/').filter((s) => s !== '');
  let current: Entry[] = [{ path: '/', type: 'dir', size: 0 }];
  for (const [i, seg] of segments.entries()) {
    const last = i === segments.length - 1;
    if (!hasGlob(seg)) {
      const stats = await mapLimit(current, concurrency, (c) => lister.stat(join(c.path, seg)));
      current = stats.filter((e): e is Entry => e !== undefined && (last || e.type === 'dir'));
      continue;
    }
    const re = globToRegExp(seg);
    // A wildcard matches no hidden name (`.x`, `_x`: a stage's staging directory, a commit
    // marker), as the directory walk skips them, unless the pattern itself begins with one.
    const hiddenToo = isHidden(seg);
    const listed = await mapLimit(current.filter((c) => c.type === 'dir'), concurrency, (c) => lister.list(c.path));
    current = listed.flat().filter((e) => {
      const name = baseName(e.path);
      return (hiddenToo || !isHidden(name)) && re.test(name) && (last || e.type === 'dir');
    });
  }
  const out: Entry[] = [];
  for (const e of current) {
    if (e.type === 'file') out.push(e);
    else out.push(...(await walkFiles(e.path, lister, concurrency)));
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
