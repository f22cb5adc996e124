/**
 * The block-location port: every storage backend answers the same two
 * questions for a URI, and a registry picks the backend by scheme.
 */
import type { FileLocations, SplitMode } from '../core/blocks.js';

/** Options for one resolution. */
export interface ResolveOptions {
  readonly split: SplitMode;
  /** Abort long lookups (a cancelled job). */
  readonly signal?: AbortSignal;
}

/** One storage backend (hdfs, ceph, cephfs, glusterfs, file, local). */
export interface StorageBackend {
  /** URI schemes this backend serves, without `:`. */
  readonly schemes: readonly string[];
  /** Expand a URI (file, directory or glob) into files with their splits and hosts. */
  resolve(uri: string, options: ResolveOptions): Promise<FileLocations[]>;
  /** Stream a byte range of a file (executors use this when the data is not local). */
  read?(uri: string, offset: number, length: number): Promise<NodeJS.ReadableStream>;
  close?(): Promise<void>;
}
