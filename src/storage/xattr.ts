/**
 * Reading one extended attribute of many files with `getfattr` (Node has no
 * xattr API). Files are batched so a thousand files cost a few processes,
 * not a thousand. Virtual xattrs (`trusted.glusterfs.pathinfo`,
 * `ceph.file.layout`) are not listed by `getfattr -d`; they are asked by name.
 */
import { chunks, mapLimit } from './concurrency.js';
import { runTool, ToolError } from './exec.js';

/** Options for a batch read. */
export interface XattrOptions {
  readonly timeoutMs: number;
  readonly batchSize?: number;
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly getfattrBin?: string;
}

/** getfattr escapes unusual bytes in names as \ooo (octal) and a backslash as \\. */
function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (c === '\\' && s[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parse `getfattr --absolute-names -e text -n NAME files…` output into path → value. */
export function parseGetfattr(output: string, attr: string): Map<string, string> {
  const out = new Map<string, string>();
  let file: string | undefined;
  for (const line of output.split('\n')) {
    if (line.startsWith('# file: ')) {
      file = unescapeGetfattr(line.slice('# file: '.length));
      continue;
    }
    if (file !== undefined && line.startsWith(`${attr}=`)) {
      let v = line.slice(attr.length + 1);
      if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      // getfattr escapes the value too; the value of a virtual xattr may end in NUL.
      out.set(file, unescapeGetfattr(v).replace(/\0+$/, ''));
    }
  }
  return out;
}

/**
 * The attribute of each file; files without it (or that failed) are absent
 * from the map and their getfattr complaint is kept in `errors`.
 */
export async function readXattrs(files: readonly string[], attr: string, options: XattrOptions): Promise<{ values: Map<string, string>; errors: Map<string, string> }> {
  const values = new Map<string, string>();
  const errors = new Map<string, string>();
  await mapLimit(chunks(files, options.batchSize ?? 200), options.concurrency ?? 4, async (batch) => {
    let stdout: string;
    let stderr = '';
    try {
      stdout = await runTool(options.getfattrBin ?? 'getfattr', ['--absolute-names', '-e', 'text', '-n', attr, '--', ...batch], {
        timeoutMs: options.timeoutMs,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (err) {
      // getfattr exits 1 when any file failed but still prints the others.
      if (!(err instanceof ToolError) || err.timedOut) throw err;
      stdout = err.stdout;
      stderr = err.stderr;
    }
    for (const [k, v] of parseGetfattr(stdout, attr)) values.set(k, v);
    for (const f of batch) {
      if (values.has(f)) continue;
      const line = stderr.split('\n').find((l) => l.startsWith(`getfattr: ${f}:`));
      errors.set(f, line === undefined ? 'attribute missing' : line.slice(`getfattr: ${f}: `.length));
    }
  });
  return { values, errors };
}
