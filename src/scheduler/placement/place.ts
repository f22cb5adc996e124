/**
 * One placement pass: (snapshot, pending index, options) → Plan. Pure and
 * deterministic for a given snapshot and index; the coordinator applies the
 * Plan (ACCEPT/DECLINE, queue writes, state writes) and then updates the
 * index (removes the tasks whose attempts it started).
 */
import { placeExecutors } from './executor-placement.js';
import { resolveOptions } from './options.js';
import { Pass } from './pass.js';
import type { PendingIndex } from './pending-index.js';
import { placeTasks } from './task-placement.js';
import type { Assignment, AssignmentColumns, Plan, PlacementOptions, Snapshot } from './types.js';

/** Run one pass. `options` may be partial; missing fields take DEFAULT_OPTIONS. */
export function place(snapshot: Snapshot, index: PendingIndex, options?: Partial<PlacementOptions>): Plan {
  const opts = resolveOptions(options);
  const pass = new Pass(snapshot, index, opts);
  placeTasks(pass);
  const ex = placeExecutors(pass);

  const assigned = pass.columns();
  let freeLeft = 0;
  for (const x of pass.execs) freeLeft += Math.max(0, x.free - x.ahead);
  const pendingLeft = index.size - assigned.length;
  // Volume work needs offers as much as tasks do: no suppress while any is waiting.
  const suppress = pendingLeft === 0 && snapshot.otherWork !== true;
  // Two reasons to REVIVE: offers parked by a decision older than the newest work (at once,
  // edge-triggered, so a filter set while idle never delays new work), and, rate limited,
  // work still waiting while suppressed (level-triggered, a safety net).
  const revive = !suppress && (snapshot.offersParked === true || (snapshot.suppressed === true
    && (snapshot.lastReviveAt === undefined || snapshot.now - snapshot.lastReviveAt >= opts.reviveIntervalMs)));
  // A task noted while waiting may have been placed later in the same pass.
  const reasons = pass.reasons.filter((r) => {
    const e = index.entry(r.taskId);
    return e === undefined || pass.placedAt(e.no) < 0;
  });
  let objects: readonly Assignment[] | undefined;
  return {
    now: snapshot.now,
    launches: ex.launches,
    assigned,
    get assignments(): readonly Assignment[] {
      return (objects ??= assignmentObjects(assigned));
    },
    declines: ex.declines,
    releases: ex.releases,
    suppress,
    revive,
    reasons,
    stats: {
      pending: index.size,
      placed: assigned.length,
      nodeLocal: pass.nodeLocal,
      rackLocal: pass.rackLocal,
      anyLevel: assigned.length - pass.nodeLocal - pass.rackLocal,
      freeSlotsLeft: freeLeft,
      examined: pass.examined,
    },
  };
}

// The columns as one object per assignment (Plan.assignments, built on first read).
function assignmentObjects(c: AssignmentColumns): Assignment[] {
  const out = new Array<Assignment>(c.length);
  for (let k = 0; k < c.length; k++) {
    out[k] = { taskId: c.taskId(k), jobId: c.jobId(k), tenant: c.tenant(k), executorId: c.executorId(k), hostname: c.hostname(k), level: c.level(k) };
  }
  return out;
}
