/**
 * The container's stdout and stderr files. Locus reads the workload's pipes
 * and writes these files itself (outside the container), rotating them at a
 * size the way Mesos's logrotate container logger does: `stdout` is the live
 * file, `stdout.1` the previous one, up to `stdout.<keep>`.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync, existsSync, fchownSync } from 'node:fs';

/** How many rotated generations are kept besides the live file. */
export const ROTATED_KEEP = 3;

/** An append-only file that rotates past maxBytes (0 = never). */
export class RotatingLog {
  private fd: number;
  private size = 0;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly owner?: { uid: number; gid: number },
  ) {
    this.fd = this.open();
  }

  private open(): number {
    const fd = openSync(this.path, 'a');
    // The sandbox belongs to the workload's user; so do its log files.
    if (this.owner) {
      try {
        fchownSync(fd, this.owner.uid, this.owner.gid);
      } catch {
        // Not root (process fallback): the files stay ours.
      }
    }
    return fd;
  }

  /** Append a chunk, rotating first when it would cross the size limit. */
  write(chunk: Buffer): void {
    if (this.closed) return;
    if (this.maxBytes > 0 && this.size > 0 && this.size + chunk.length > this.maxBytes) this.rotate();
    try {
      writeSync(this.fd, chunk);
      this.size += chunk.length;
    } catch {
      // A full disk must not crash Locus; the disk limit check reports it.
    }
  }

  private rotate(): void {
    closeSync(this.fd);
    rmSync(`${this.path}.${ROTATED_KEEP}`, { force: true });
    for (let i = ROTATED_KEEP - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (existsSync(this.path)) renameSync(this.path, `${this.path}.1`);
    this.fd = this.open();
    this.size = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
