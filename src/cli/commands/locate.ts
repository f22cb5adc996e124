/**
 * `locus locate <uri>...`: where the data of a URI lives. Prints each file's
 * splits with the hosts (and racks) holding them and a summary of how the
 * data spreads over hosts; `--json` prints only
 * `{"files":[{"uri","size","splits":[{"offset","length","hosts","racks"}]}]}`.
 */
import { processUser } from '../../app/config.js';
import type { FileLocations, SplitMode } from '../../core/blocks.js';
import { parseDurationMs } from '../../core/units.js';
import { defaultLocalWorkDir } from '../../local/work-dir.js';
import { loadHostMap } from '../../storage/hostmap.js';
import { createStorageRegistry, type StorageConfig } from '../../storage/registry.js';
import { CliUsageError, parseCommand } from '../args.js';

const HELP = `usage: locus locate <uri>... [--json] [--splits block|file] [backend options]

URIs:
  hdfs://namenode:9870/path      WebHDFS (the port is the NameNode's HTTP port)
  ceph://pool/object             RADOS object (globs over 'rados ls')
  cephfs:///path                 CephFS file or directory (needs --cephfs-mount)
  glusterfs://volume/path        GlusterFS (needs --gluster-mount VOL=PATH)
  file:///path                   files on this host
  local://dataset/path           a local dataset (see 'locus data put')
Directories are expanded recursively (names starting with _ or . skipped);
globs (*, ?, [..], {a,b}) are expanded.

options:
  --json                     print only {"files":[{uri,size,splits:[{offset,length,hosts,racks}]}]}
  --splits block|file        one split per block (default) or one per file
  --host-map FILE            JSON/YAML {hosts: {storage-host: agent-host}, racks: {agent-host: rack}}
  --timeout DUR              give up after this long (default 2m)
  --webhdfs-user NAME        user.name for WebHDFS (default: the user locate runs as)
  --webhdfs-token TOKEN      delegation token (secure clusters)
  --webhdfs-endpoint A=URL   WebHDFS base URL for an authority, e.g. nn:8020=http://nn:9870 (repeatable)
  --ceph-conf FILE           ceph.conf (default $CEPH_CONF, else /etc/ceph/ceph.conf)
  --ceph-keyring FILE        keyring (default: Ceph's usual lookup)
  --ceph-name NAME           client name, e.g. client.admin
  --cephfs-mount DIR         where CephFS is mounted on this host
  --gluster-mount VOL=DIR    where a GlusterFS volume is mounted (repeatable)
  --work-dir DIR             local cluster work directory (default: the one 'locus up' and
                             'locus local' use, as 'locus data put')
`;

const OPTIONS = {
  json: { type: 'boolean' },
  splits: { type: 'string' },
  'host-map': { type: 'string' },
  timeout: { type: 'string' },
  'webhdfs-user': { type: 'string' },
  'webhdfs-token': { type: 'string' },
  'webhdfs-endpoint': { type: 'string', multiple: true },
  'ceph-conf': { type: 'string' },
  'ceph-keyring': { type: 'string' },
  'ceph-name': { type: 'string' },
  'cephfs-mount': { type: 'string' },
  'gluster-mount': { type: 'string', multiple: true },
  'work-dir': { type: 'string' },
} as const;

function pairs(values: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const cut = v.indexOf('=');
    if (cut <= 0 || cut === v.length - 1) throw new CliUsageError(`--${flag} expects KEY=VALUE, got '${v}'`);
    out[v.slice(0, cut)] = v.slice(cut + 1);
  }
  return out;
}

function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n}B` : `${v.toFixed(v >= 100 ? 0 : 1)}${units[u]}`;
}

/** The human-readable report: files, splits, and the spread over hosts. */
export function formatReport(files: readonly FileLocations[]): string {
  const lines: string[] = [];
  const perHost = new Map<string, { splits: number; bytes: number }>();
  let totalBytes = 0;
  let totalSplits = 0;
  let unplaced = 0;
  for (const f of files) {
    lines.push(`${f.uri}  ${fmtBytes(f.size)}  ${f.splits.length} split${f.splits.length === 1 ? '' : 's'}`);
    for (const s of f.splits) {
      const racks = s.racks.length > 0 ? `  racks: ${s.racks.join(',')}` : '';
      lines.push(`  ${String(s.offset).padStart(12)} +${fmtBytes(s.length).padEnd(9)} hosts: ${s.hosts.join(',') || '-'}${racks}`);
      totalSplits++;
      totalBytes += s.length;
      if (s.hosts.length === 0) unplaced++;
      for (const h of s.hosts) {
        const e = perHost.get(h) ?? { splits: 0, bytes: 0 };
        e.splits++;
        e.bytes += s.length;
        perHost.set(h, e);
      }
    }
  }
  lines.push('', `summary: ${files.length} file${files.length === 1 ? '' : 's'}, ${fmtBytes(files.reduce((n, f) => n + f.size, 0))}, ${totalSplits} split${totalSplits === 1 ? '' : 's'}${unplaced > 0 ? `, ${unplaced} without hosts` : ''}`);
  const hosts = [...perHost.entries()].sort((a, b) => b[1].bytes - a[1].bytes || (a[0] < b[0] ? -1 : 1));
  const width = Math.max(4, ...hosts.map(([h]) => h.length));
  if (hosts.length > 0) lines.push(`  ${'host'.padEnd(width)}  splits  bytes      share of data`);
  for (const [h, e] of hosts) {
    const share = totalBytes === 0 ? 0 : (100 * e.bytes) / totalBytes;
    lines.push(`  ${h.padEnd(width)}  ${String(e.splits).padStart(6)}  ${fmtBytes(e.bytes).padEnd(9)}  ${share.toFixed(1)}%`);
  }
  return lines.join('\n');
}

/** Build the storage configuration from the command's flags. */
export async function storageConfigFromFlags(values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K] extends { type: 'boolean' } ? boolean : string }): Promise<StorageConfig> {
  // The framework's default (hdfs-user): the process's user, as Hadoop's clients send.
  // $USER is unset under systemd, cron and in containers, and without a user.name
  // the NameNode takes the caller for dr.who, so locate and jobs saw different files.
  const user = values['webhdfs-user'] ?? processUser();
  const token = values['webhdfs-token'];
  return {
    ...(values['host-map'] === undefined ? {} : { hostMap: await loadHostMap(values['host-map']) }),
    timeoutMs: values.timeout === undefined ? 120_000 : parseDurationMs(values.timeout, '--timeout'),
    webhdfs: {
      ...(user === undefined ? {} : { user }),
      ...(token === undefined ? {} : { delegationToken: token }),
      endpoints: pairs(values['webhdfs-endpoint'], 'webhdfs-endpoint'),
    },
    ceph: {
      ...(values['ceph-conf'] === undefined ? {} : { conf: values['ceph-conf'] }),
      ...(values['ceph-keyring'] === undefined ? {} : { keyring: values['ceph-keyring'] }),
      ...(values['ceph-name'] === undefined ? {} : { name: values['ceph-name'] }),
      ...(values['cephfs-mount'] === undefined ? {} : { cephfsMount: values['cephfs-mount'] }),
    },
    gluster: { mounts: pairs(values['gluster-mount'], 'gluster-mount') },
    // The same default as `locus up`/`locus local`/`locus data put` (see data.ts).
    local: { workDir: values['work-dir'] ?? defaultLocalWorkDir().workDir },
  };
}

/** Entry point. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP);
  if (parsed === undefined) return 0;
  const { values, positionals } = parsed;
  if (positionals.length === 0) throw new CliUsageError(`a URI is required\n${HELP.trimEnd()}`);
  const split = values.splits ?? 'block';
  if (split !== 'block' && split !== 'file') throw new CliUsageError(`--splits must be 'block' or 'file', got '${split}'`);
  const registry = createStorageRegistry(await storageConfigFromFlags(values));
  try {
    const results = await registry.resolveMany(positionals, { split: split satisfies SplitMode });
    const files = results.flat();
    if (values.json === true) {
      // Only the documented fields, in the documented order.
      const doc = { files: files.map((f) => ({ uri: f.uri, size: f.size, splits: f.splits.map((s) => ({ offset: s.offset, length: s.length, hosts: s.hosts, racks: s.racks })) })) };
      process.stdout.write(JSON.stringify(doc) + '\n');
    } else {
      process.stdout.write(formatReport(files) + '\n');
    }
    return 0;
  } finally {
    await registry.close();
  }
}
