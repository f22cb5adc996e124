/**
 * CPU time and resident memory per process group, from one pass over /proc shared by every
 * container of a process isolator.
 *
 * Why: the process isolator knows a workload only as a process group (no cgroup), and the
 * processes of a group are found only by reading every /proc/<pid>/stat. Each container used to
 * make that pass itself, four times a second, with a file read through libuv's thread pool per
 * process: C containers on a host of P processes cost 4·C·P reads a second. Twenty sleeping
 * containers on a host of about 100 processes kept a whole core busy (1,032 ms of CPU a second;
 * 22 ms with one shared pass: bench/results/dispatch-2026-12-07-s12.notes.md). Now one pass, at
 * most every `maxAgeMs`, answers all of them. The reads are synchronous: /proc is in memory and never waits for a device, and a read
 * handed to the thread pool costs more in thread switches than the read (local-fs.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** One process group's share of a pass. */
export interface GroupUsage {
  /** utime + stime + cutime + cstime of its processes, in clock ticks. */
  readonly ticks: number;
  /** Resident pages of its processes. */
  readonly rssPages: number;
}

/** The fields of a /proc/<pid>/stat text after its command (which may hold spaces and parentheses). */
export function statFields(text: string): string[] | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  return text.slice(close + 2).trim().split(' ');
}

/** Sum a pass's stat texts by process group. Field indexes count from the state (field 3 of proc(5)). */
export function usageByGroup(stats: Iterable<string>): Map<number, GroupUsage> {
  const byGroup = new Map<number, { ticks: number; rssPages: number }>();
  for (const text of stats) {
    const f = statFields(text);
    if (f === undefined || f.length < 22) continue;
    // Index 2 is the process group; 11..14 utime, stime, cutime, cstime; 21 rss in pages.
    const group = Number(f[2]);
    const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    const rss = Number(f[21]);
    if (!Number.isFinite(group) || !Number.isFinite(ticks) || !Number.isFinite(rss)) continue;
    const u = byGroup.get(group);
    if (u) {
      u.ticks += ticks;
      u.rssPages += rss;
    } else {
      byGroup.set(group, { ticks, rssPages: rss });
    }
  }
  return byGroup;
}

/** Every process's stat text (a process that ends during the pass is left out). */
function readAllStats(): string[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const c = n.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    try {
      out.push(readFileSync(`/proc/${n}/stat`, 'latin1'));
    } catch {
      // Ended since the listing.
    }
  }
  return out;
}

/**
 * A pass may take at most this share of the time: on a host of thousands of processes one pass
 * blocks the event loop for tens of milliseconds, and passes every 250 ms would hold it a good
 * part of the time (BullMQ's lock renewals and the heartbeat wait behind it).
 */
const MAX_PASS_SHARE = 0.05;

/**
 * Process-group usage from passes over /proc, each at most `maxAgeMs` old when read, or older
 * where passes are slow (MAX_PASS_SHARE).
 */
export class ProcessGroupSampler {
  private last: { readonly at: number; readonly byGroup: Map<number, GroupUsage>; readonly tookMs: number } | undefined;

  constructor(
    private readonly maxAgeMs: number,
    private readonly readStats: () => Iterable<string> = readAllStats,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The group's usage (undefined: no process of it was found), from the latest pass or a new one.
   * `bornAt`: when the group's first process was started; a pass begun before then cannot have
   * seen it, so a new one is taken (once: the next is after it).
   */
  usageOf(group: number, bornAt?: number): GroupUsage | undefined {
    const at = this.now();
    if (this.last === undefined || (bornAt !== undefined && this.last.at < bornAt) || at - this.last.at >= Math.max(this.maxAgeMs, this.last.tookMs / MAX_PASS_SHARE)) {
      const byGroup = usageByGroup(this.readStats());
      this.last = { at, byGroup, tookMs: this.now() - at };
    }
    return this.last.byGroup.get(group);
  }
}
