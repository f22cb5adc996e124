/**
 * Where data lives: the normalised answer every storage backend gives, and
 * what placement consumes. Hosts here are already mapped to agent hostnames.
 */

/** One split of a file: a byte range and the hosts (and racks) that hold it. */
export interface SplitLocation {
  readonly offset: number;
  readonly length: number;
  /** Hostnames that hold a replica, best first where the backend says so. */
  readonly hosts: readonly string[];
  /** Racks of those hosts where known (same order, deduplicated). */
  readonly racks: readonly string[];
  /**
   * Per host: an absolute path on that host of a file in which this split's
   * bytes sit at the same offsets [offset, offset + length). Set when replicas
   * differ in path per host (local datasets), so a task reads them locally.
   */
  readonly localPaths?: Readonly<Record<string, string>>;
}

/** A file with its size and splits. */
export interface FileLocations {
  readonly uri: string;
  readonly size: number;
  readonly splits: readonly SplitLocation[];
  /** A path readable on the named hosts, when the data is reachable as a file there. */
  readonly localPath?: string;
}

/** How a file is cut into tasks. */
export type SplitMode = 'block' | 'file';
