/**
 * The location cache: resolved URIs kept for a TTL, invalidated by URI or
 * prefix, with concurrent lookups of the same key sharing one resolution.
 * Time comes from the Clock port so tests advance it instead of sleeping.
 */
import type { FileLocations } from '../core/blocks.js';
import type { Clock } from '../core/clock.js';

/** Cache settings. */
export interface LocationCacheOptions {
  readonly ttlMs: number;
  /** Oldest entries are dropped beyond this many URIs. */
  readonly maxEntries: number;
  readonly clock: Clock;
}

interface Entry {
  readonly at: number;
  readonly value: FileLocations[];
}

/** A TTL cache of resolutions keyed by (split mode, URI). */
export class LocationCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<FileLocations[]>>();
  private hitCount = 0;
  private missCount = 0;

  constructor(private readonly options: LocationCacheOptions) {}

  /** The cached value, or resolve it with `load` (sharing an in-flight load of the same key). */
  async get(split: string, uri: string, load: () => Promise<FileLocations[]>): Promise<FileLocations[]> {
    const key = `${split} ${uri}`;
    const now = this.options.clock.now();
    const hit = this.entries.get(key);
    if (hit !== undefined && now - hit.at < this.options.ttlMs) {
      this.hitCount++;
      return hit.value;
    }
    if (hit !== undefined) this.entries.delete(key);
    const pending = this.inflight.get(key);
    if (pending !== undefined) {
      this.hitCount++;
      return await pending;
    }
    this.missCount++;
    const p = load();
    this.inflight.set(key, p);
    try {
      const value = await p;
      // An invalidation during the load removed the in-flight marker: do not store stale data.
      if (this.inflight.get(key) === p && this.options.ttlMs > 0) {
        this.entries.set(key, { at: this.options.clock.now(), value });
        this.evict();
      }
      return value;
    } finally {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    }
  }

  /** Drop entries: all, or those whose URI equals `uri` or lies under it (`uri` + '/' ...). */
  invalidate(uri?: string): number {
    let n = 0;
    const matches = (key: string): boolean => {
      if (uri === undefined) return true;
      const u = key.slice(key.indexOf(' ') + 1);
      return u === uri || u.startsWith(uri.endsWith('/') ? uri : `${uri}/`);
    };
    for (const key of [...this.entries.keys()]) {
      if (matches(key)) {
        this.entries.delete(key);
        n++;
      }
    }
    for (const key of [...this.inflight.keys()]) if (matches(key)) this.inflight.delete(key);
    return n;
  }

  /** Counters for metrics and tests. */
  stats(): { size: number; hits: number; misses: number } {
    return { size: this.entries.size, hits: this.hitCount, misses: this.missCount };
  }

  private evict(): void {
    // Map iteration order is insertion order, so the first keys are the oldest.
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }
}
