/**
 * One placement pass: (snapshot, pending index, options) → Plan. Pure and
 * deterministic for a given snapshot and index; the coordinator applies the
 * Plan (ACCEPT/DECLINE, queue writes, state writes) and then updates the
 * index (removes the tasks whose attempts it started).
 */
import { LocalityLevel } from '../../core/locality.js';
import { placeExecutors } from './executor-placement.js';
import { resolveOptions } from './options.js';
import { Pass } from './pass.js';
import type { PendingIndex } from './pending-index.js';
import { placeTasks } from './task-placement.js';
import type { Assignment, Plan, PlacementOptions, Snapshot } from './types.js';

/** Run one pass. `options` may be partial; missing fields take DEFAULT_OPTIONS. */
export function place(snapshot: Snapshot, index: PendingIndex, options?: Partial<PlacementOptions>): Plan {
  const opts = resolveOptions(options);
  const pass = new Pass(snapshot, index, opts);
  placeTasks(pass);
  const ex = placeExecutors(pass);

  let node = 0;
  let rack = 0;
  const assignments: Assignment[] = new Array<Assignment>(pass.assignments.length);
  for (let i = 0; i < pass.assignments.length; i++) {
    const a = pass.assignments[i]!;
    const t = a.entry.task;
    if (a.level === LocalityLevel.NODE_LOCAL) node++;
    else if (a.level === LocalityLevel.RACK_LOCAL) rack++;
    assignments[i] = {
      taskId: t.taskId, jobId: t.jobId, tenant: t.tenant,
      executorId: a.exec.view.executorId, hostname: a.exec.view.hostname, level: a.level,
    };
  }
  let freeLeft = 0;
  for (const x of pass.execs) freeLeft += x.free;
  const pendingLeft = index.size - assignments.length;
  const suppress = pendingLeft === 0;
  const revive = !suppress && snapshot.suppressed === true
    && (snapshot.lastReviveAt === undefined || snapshot.now - snapshot.lastReviveAt >= opts.reviveIntervalMs);
  // A task noted while waiting may have been placed later in the same pass.
  const reasons = pass.reasons.filter((r) => index.entry(r.taskId)?.mark !== pass.id);
  return {
    now: snapshot.now,
    launches: ex.launches,
    assignments,
    declines: ex.declines,
    releases: ex.releases,
    suppress,
    revive,
    reasons,
    stats: {
      pending: index.size,
      placed: assignments.length,
      nodeLocal: node,
      rackLocal: rack,
      anyLevel: assignments.length - node - rack,
      freeSlotsLeft: freeLeft,
      examined: pass.examined,
    },
  };
}
