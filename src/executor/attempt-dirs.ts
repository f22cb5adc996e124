/**
 * The directories an attempt works in besides its output: its scratch directory (inputs
 * prepared for it, shared with its workload's user only), its tenant's output directory (closed
 * to other tenants), and the question whether its sandbox's filesystem is full. Apart from
 * attempt.ts, which runs the attempt, because none of it depends on how the attempt went.
 */
import { promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';

/** Make an attempt's scratch directory, in a scratch root others may pass through but not list. */
export async function makeScratch(scratch: string): Promise<void> {
  await fsp.mkdir(scratch, { recursive: true });
  await makeScratchRoot(dirname(scratch));
}

/** The scratch root: the other attempts' directories and start gates there are none of a task's business. */
export async function makeScratchRoot(root: string): Promise<void> {
  await fsp.mkdir(root, { recursive: true });
  await fsp.chmod(root, 0o711);
}

/**
 * Let the attempt's workload read its scratch tree (its inputs) and no one else. A root executor
 * running the attempt under its tenant's uid gives the tree to that uid, read-only (directories
 * 0500, files 0400): in process mode a task sees this host's paths, and another tenant's task
 * must not read these inputs. (The owner could make its copy writable again; it harms no one but
 * that attempt, and the linux mode mounts it read-only.) The uid, not a group, because the
 * workload's gid is its passwd entry's where the uid has one. An executor that cannot give files
 * away (unprivileged), or an attempt under the default user, leaves the tree readable by all
 * (0755, 0644): the workload's user is then the executor's own or `nobody`.
 */
export async function shareScratch(dir: string, uid: number | undefined): Promise<void> {
  const owner = uid !== undefined && process.getuid?.() === 0 ? uid : undefined;
  const share = async (path: string, isDir: boolean): Promise<void> => {
    if (owner !== undefined) await fsp.chown(path, owner, -1);
    await fsp.chmod(path, isDir ? (owner !== undefined ? 0o500 : 0o755) : (owner !== undefined ? 0o400 : 0o644));
  };
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    // Links to parts already on this host are left alone: chown and chmod would follow them.
    if (e.isDirectory()) await shareScratch(p, uid);
    else if (e.isFile()) await share(p, false);
  }
  await share(dir, true);
}

/** Tenant output directories already closed by this process (the work is done once per directory). */
const closedTenantDirs = new Set<string>();

/**
 * Close a tenant's output directory (`<root>/<tenant>`) to other tenants. An executor running as
 * root hands it to the tenant's uid, mode 0750: that tenant's tasks may read their earlier
 * stages' outputs through it, no one else may enter. An unprivileged executor (the local
 * cluster's run as `nobody`) owns the directory and cannot give it away: it makes it 0700, and
 * its tasks reach their own inputs and outputs through the bind mounts of their containers.
 */
export async function closeTenantDir(outputDir: string, relPath: string, uid: number): Promise<void> {
  const depth = relPath.split('/').filter((x) => x !== '').length;
  let dir = outputDir.replace(/\/+$/, '');
  for (let i = 1; i < depth; i++) dir = dirname(dir);
  if (closedTenantDirs.has(dir)) return;
  const st = await fsp.stat(dir);
  if (process.getuid?.() === 0) {
    if (st.uid !== uid || st.gid !== uid) await fsp.chown(dir, uid, uid);
    if ((st.mode & 0o777) !== 0o750) await fsp.chmod(dir, 0o750);
  } else if (st.uid === process.getuid?.() && (st.mode & 0o777) !== 0o700) {
    await fsp.chmod(dir, 0o700);
  }
  closedTenantDirs.add(dir);
}

/** Below this many free bytes a sandbox's filesystem counts as full (a failure there is the host's). */
const FULL_BELOW_BYTES = 1024 * 1024;

/** Whether the filesystem holding `dir` is (all but) full; false when it cannot be told. */
export async function noSpaceLeft(dir: string): Promise<boolean> {
  try {
    const st = await fsp.statfs(dir);
    return st.bavail * st.bsize < FULL_BELOW_BYTES;
  } catch {
    return false;
  }
}
