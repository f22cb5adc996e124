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

/**
 * A load in flight, shared by the lookups of its key. It is aborted only once every lookup
 * waiting for it has left (its signal aborted): one job that ended must not fail the listing
 * another job waits for.
 */
interface Inflight {
  promise: Promise<FileLocations[]>;
  readonly controller: AbortController;
  /** Lookups waiting that may still leave (they passed a signal). */
  leavable: number;
  /** A lookup without a signal waits for it: it runs to its end. */
  held: boolean;
}

/** A TTL cache of resolutions keyed by (split mode, URI). */
export class LocationCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Inflight>();
  private hitCount = 0;
  private missCount = 0;

  constructor(private readonly options: LocationCacheOptions) {}

  /**
   * The cached value, or resolve it with `load` (sharing an in-flight load of the same key).
   * `signal`: this lookup stops waiting when it aborts (rejecting with its reason); the load's
   * own signal aborts when no lookup waits for it any more.
   */
  async get(split: string, uri: string, load: (signal: AbortSignal) => Promise<FileLocations[]>, signal?: AbortSignal): Promise<FileLocations[]> {
    const key = `${split} ${uri}`;
    const now = this.options.clock.now();
    const hit = this.entries.get(key);
    if (hit !== undefined && now - hit.at < this.options.ttlMs) {
      this.hitCount++;
      return hit.value;
    }
    if (hit !== undefined) this.entries.delete(key);
    signal?.throwIfAborted();
    const pending = this.inflight.get(key);
    if (pending !== undefined) {
      this.hitCount++;
      return await this.follow(pending, signal);
    }
    this.missCount++;
    const flight: Inflight = { promise: Promise.resolve([]), controller: new AbortController(), leavable: 0, held: false };
    flight.promise = (async () => {
      try {
        const value = await load(flight.controller.signal);
        // An invalidation during the load removed the in-flight marker: do not store stale data.
        if (this.inflight.get(key) === flight && this.options.ttlMs > 0) {
          this.entries.set(key, { at: this.options.clock.now(), value });
          this.evict();
        }
        return value;
      } finally {
        if (this.inflight.get(key) === flight) this.inflight.delete(key);
      }
    })();
    // Every lookup may have left before it settles: its failure is then nobody's to handle.
    flight.promise.catch(() => undefined);
    this.inflight.set(key, flight);
    return await this.follow(flight, signal);
  }

  /** Wait for a shared load, or until this lookup's signal aborts (the last to leave aborts the load). */
  private async follow(flight: Inflight, signal: AbortSignal | undefined): Promise<FileLocations[]> {
    if (signal === undefined) {
      flight.held = true;
      return await flight.promise;
    }
    flight.leavable++;
    let onAbort: () => void = () => undefined;
    const left = new Promise<never>((_, reject) => {
      onAbort = () => {
        flight.leavable--;
        if (flight.leavable === 0 && !flight.held) flight.controller.abort(signal.reason);
        reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      };
    });
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await Promise.race([flight.promise, left]);
    } finally {
      signal.removeEventListener('abort', onAbort);
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
