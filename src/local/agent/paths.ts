/**
 * The on-disk layout of one local agent, mirroring the Mesos agent's work
 * directory: sandboxes under `slaves/<agent>/frameworks/<fw>/executors/<ex>/
 * runs/<container>`, persistent volumes under `volumes/roles/<role>/<id>`.
 */
import { join } from 'node:path';

/** The agent's root directory. */
export function agentRoot(workDir: string, hostname: string): string {
  return join(workDir, 'agents', hostname);
}

/** The per-agent data directory the `local://` storage backend uses. */
export function agentDataDir(workDir: string, hostname: string): string {
  return join(agentRoot(workDir, hostname), 'data');
}

/** The checkpoint file of an agent (id, resources, live tasks). */
export function agentCheckpoint(workDir: string, hostname: string): string {
  return join(agentRoot(workDir, hostname), 'meta', 'agent.json');
}

/** The host directory of a persistent volume. Hierarchical roles use ' ' for '/', as Mesos does. */
export function volumeDir(workDir: string, hostname: string, role: string, persistenceId: string): string {
  return join(agentRoot(workDir, hostname), 'volumes', 'roles', role.replace(/\//g, ' '), persistenceId);
}

/** A top-level container's sandbox. */
export function sandboxDir(workDir: string, hostname: string, agentId: string, frameworkId: string, executorId: string, containerId: string): string {
  return join(agentRoot(workDir, hostname), 'slaves', agentId, 'frameworks', frameworkId, 'executors', executorId, 'runs', containerId);
}

/** A nested container's sandbox inside its parent's (`containers/<id>`, as Mesos). */
export function nestedSandboxDir(parentSandbox: string, containerId: string): string {
  return join(parentSandbox, 'containers', containerId);
}
