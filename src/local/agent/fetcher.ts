/**
 * The local agent's fetcher: what the genuine Mesos fetcher does with a
 * CommandInfo's `uris` before a container starts. Each URI (an absolute
 * path, `file://`, `http://` or `https://`) lands in the sandbox under its
 * base name (or `output_file`); archives are extracted there when `extract`
 * is not false; `executable` files get their execute bits.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One URI as CommandInfo carries it. */
export interface FetchUri {
  readonly value: string;
  readonly executable?: boolean;
  readonly extract?: boolean;
  readonly output_file?: string;
}

const ARCHIVE = /\.(tar|tgz|tar\.gz|tbz2|tar\.bz2|txz|tar\.xz|zip)$/i;

/** Fetch every URI into `sandbox`; throws with the genuine agent's wording on the first failure. */
export async function fetchUris(sandbox: string, containerId: string, uris: readonly FetchUri[]): Promise<void> {
  for (const u of uris) {
    try {
      await fetchOne(sandbox, u);
    } catch (err) {
      throw new Error(`Failed to fetch all URIs for container '${containerId}': ${u.value}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

async function fetchOne(sandbox: string, u: FetchUri): Promise<void> {
  const url = u.value.startsWith('/') ? new URL(`file://${u.value}`) : new URL(u.value);
  const name = u.output_file ?? basename(decodeURIComponent(url.pathname));
  if (name === '' || name.includes('/')) throw new Error(`no file name in '${u.value}'`);
  const target = join(sandbox, name);
  if (url.protocol === 'file:') {
    await copyFile(decodeURIComponent(url.pathname), target);
  } else if (url.protocol === 'http:' || url.protocol === 'https:') {
    const res = await fetch(url);
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(target));
  } else {
    throw new Error(`unsupported scheme '${url.protocol}'`);
  }
  if (u.extract !== false && ARCHIVE.test(name)) {
    if (/\.zip$/i.test(name)) await run('unzip', ['-q', '-o', target, '-d', sandbox]);
    else await run('tar', ['-xf', target, '-C', sandbox]);
  } else if (u.executable === true) {
    await chmod(target, 0o755);
  }
}
