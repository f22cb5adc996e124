/**
 * How idle this host's CPUs have been lately, from the first line of /proc/stat (not namespaced:
 * inside a container it still counts the host's CPUs, which is what held starts need to know).
 *
 * Why: a held start (start-gate.ts) spends CPU ahead, a shell and a FIFO per attempt, to take a
 * container's set-up off the moment its slot frees. On a host whose CPUs idle between waves of
 * short tasks that CPU is free and the waves follow each other sooner; on a host whose CPUs are
 * the bottleneck it is time taken from the tasks themselves (1,000 `sleep 0.2` tasks on three
 * agents of one 2-core machine took 7 % longer with held starts). `executor-held-starts: auto`
 * asks this sampler before each held start.
 */
import { readFileSync } from 'node:fs';

/** The busy and total jiffies of all CPUs, or undefined when the text is not /proc/stat's. */
export function parseProcStat(text: string): { readonly idle: number; readonly total: number } | undefined {
  const nl = text.indexOf('\n');
  const line = nl < 0 ? text : text.slice(0, nl);
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu' || f.length < 5) return undefined;
  const n = f.slice(1).map(Number);
  if (n.some((x) => !Number.isFinite(x))) return undefined;
  // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already in
  // user and nice, so it is left out of the total; a CPU waiting for I/O is idle.
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle: (n[3] ?? 0) + (n[4] ?? 0), total };
}

/** Samples /proc/stat at most every `everyMs` and answers the idle share between the last two samples. */
export class HostCpu {
  private last: { readonly at: number; readonly idle: number; readonly total: number } | undefined;
  private share: number | undefined;

  constructor(
    private readonly read: () => string = () => readFileSync('/proc/stat', 'utf8'),
    private readonly now: () => number = Date.now,
    private readonly everyMs = 200,
  ) {
    this.sample(this.now());
  }

  /**
   * The share (0 to 1) of the host's CPU time that was idle between the two latest samples (a
   * sample is taken when asked and the latest is `everyMs` old: while attempts keep asking, the
   * last 200-400 ms; after a quiet spell, that spell); undefined until there are two, or when
   * /proc/stat could not be read.
   */
  idle(): number | undefined {
    const at = this.now();
    if (this.last === undefined || at - this.last.at >= this.everyMs) this.sample(at);
    return this.share;
  }

  private sample(at: number): void {
    let s: ReturnType<typeof parseProcStat>;
    try {
      s = parseProcStat(this.read());
    } catch {
      s = undefined;
    }
    if (s === undefined) {
      this.share = undefined;
      return;
    }
    if (this.last !== undefined && s.total > this.last.total) this.share = Math.min(1, Math.max(0, (s.idle - this.last.idle) / (s.total - this.last.total)));
    this.last = { at, idle: s.idle, total: s.total };
  }
}

/**
 * The idle share of the host's CPUs below which `heldStarts: auto` starts containers directly. A
 * 2-core host running waves of 19 `sleep 0.2` tasks idles about half the time and gains from held
 * starts; three such agents on the same two cores idle under a tenth and lose.
 */
export const HELD_STARTS_MIN_IDLE = 0.3;

/** `heldStarts: auto`'s question before each held start: have the host's CPUs idled enough lately? */
export function holdWhileIdle(cpu: HostCpu): () => boolean {
  // Unknown (no second sample yet, or no /proc/stat): held, as asked.
  return () => (cpu.idle() ?? 1) >= HELD_STARTS_MIN_IDLE;
}
