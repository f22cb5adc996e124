/**
 * One placement pass: (snapshot, pending index, options) → Plan. Pure and
 * deterministic for a given snapshot and index; the coordinator applies the
 * Plan (ACCEPT/DECLINE, queue writes, state writes) and then updates the
 * index (removes the tasks whose attempts it started).
 */
import { placeExecutors } from './executor-placement.js';
import { resolveOptions } from './options.js';
import { Pass, type ExecState } from './pass.js';
import { PendingIndex } from './pending-index.js';
import { placeTasks } from './task-placement.js';
import type { Assignment, AssignmentColumns, Plan, PlacementOptions, Snapshot } from './types.js';

/** Run one pass. `options` may be partial; missing fields take DEFAULT_OPTIONS. */
export function place(snapshot: Snapshot, index: PendingIndex, options?: Partial<PlacementOptions>): Plan {
  const opts = resolveOptions(options);
  const pass = new Pass(snapshot, index, opts);
  placeTasks(pass);
  const ex = placeExecutors(pass);
  return planOf(snapshot, index, opts, pass, ex);
}

function planOf(snapshot: Snapshot, index: PendingIndex, opts: PlacementOptions, pass: Pass, ex: ReturnType<typeof placeExecutors>): Plan {
  const assigned = pass.columns();
  let freeLeft = 0;
  const execs = pass.execs;
  for (let i = 0; i < execs.length; i++) {
    const x = execs[i] as ExecState;
    if (x.free > x.ahead) freeLeft += x.free - x.ahead;
  }
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

/**
 * Objects of every class a pass builds (the pass, its index's queues, buckets and entries, the
 * plan's columns), from one small pass run when this module loads and kept for the life of the
 * process. V8 holds the hidden classes (maps) such objects end up with only through the objects
 * themselves: once the last pass and the last index of a kind are collected, a full GC frees
 * those maps and throws away all code compiled against them ("weak objects" in --trace-deopt:
 * some seventy functions, the whole of task placement). That happened between two passes of a
 * running coordinator whenever a major GC fell between them (nothing keeps a Pass after its
 * Plan is applied), and to every fresh index (a restarted job set, a failover, each row of
 * bench:placement), whose pass then ran interpreted and recompiled: half the speed. These
 * witnesses keep the maps, so compiled placement code stays valid whatever is collected.
 * A few kilobytes; the pass is the ordinary code path, on made-up hosts.
 */
const shapeWitnesses: readonly unknown[] = witnessShapes();

function witnessShapes(): unknown[] {
  const index = new PendingIndex();
  const resources = { cpus: 1, mem: 1024, disk: 0 };
  const hosts = ['witness-0', 'witness-1', 'witness-2', 'witness-3', 'witness-4'];
  for (let t = 0; t < 24; t++) {
    index.add({
      taskId: `witness.${t}`, jobId: 'witness', tenant: 'witness', priority: 0, resources,
      preferredHosts: [hosts[t % 5] as string, hosts[(t + 2) % 5] as string, hosts[(t + 4) % 5] as string],
      // Gigabytes, as real inputs are: a bucket's byte count then leaves the small-integer range,
      // and the maps witnessed are those with a floating-point `bytes`, which real buckets reach
      // (a witness holding the small-integer maps would keep only maps V8 has since deprecated).
      preferredRacks: ['witness-rack'], inputBytes: 2 ** 31, pendingSince: 0,
    });
  }
  const executors = hosts.map((hostname, i) => ({
    executorId: `witness-exec-${i}`, agentId: `witness-agent-${i}`, hostname, rack: 'witness-rack',
    slotResources: resources, slots: 4, freeSlots: 4, freeSince: -60_000, idleSince: -60_000,
  }));
  const snapshot: Snapshot = { now: 0, offers: [], executors, tenants: [{ name: 'witness', weight: 1, usage: { cpus: 0, mem: 0, disk: 0 } }] };
  const opts = resolveOptions();
  const pass = new Pass(snapshot, index, opts);
  placeTasks(pass);
  const plan = planOf(snapshot, index, opts, pass, placeExecutors(pass));
  return [index, pass, plan];
}

/**
 * @internal For a test: what the witness pass kept — how many objects, and how many tasks it
 * placed (it must have run the node phase and the plan, or it witnesses maps no pass ends with).
 */
export function shapeWitness(): { readonly objects: number; readonly placed: number; readonly nodeLocal: number } {
  const plan = shapeWitnesses[2] as Plan;
  return { objects: shapeWitnesses.length, placed: plan.stats.placed, nodeLocal: plan.stats.nodeLocal };
}
