/**
 * The executors Locus has launched, as the scheduler tracks them. Records are
 * kept in Redis (`locus:executors`, one hash field per executor) so that after
 * a scheduler crash the executors still running are recognised and adopted
 * rather than orphaned.
 */
import type { Redis } from 'ioredis';
import type { ResourceVector } from '../core/resources.js';
import { asObject, parseJson } from '../core/decode.js';

/** Lifecycle of an executor as the scheduler sees it. */
export type ExecutorState = 'LAUNCHING' | 'RUNNING' | 'DRAINING' | 'GONE';

/** One executor's record. */
export interface ExecutorRecord {
  readonly executorId: string;
  /** The Mesos task id of the executor (same as executorId). */
  readonly taskId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly rack: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
  readonly agentUrl: string | undefined;
  readonly slots: number;
  readonly slotResources: ResourceVector;
  readonly volumes: readonly string[];
  readonly tenant: string | undefined;
  readonly state: ExecutorState;
  readonly launchedAt: number;
  /** When it last had no running attempts (ms), or undefined while busy. */
  readonly idleSince: number | undefined;
  readonly message?: string;
}

const KEY = 'locus:executors';

/** In-memory executor book with write-through to Redis. */
export class ExecutorBook {
  private readonly records = new Map<string, ExecutorRecord>();

  constructor(private readonly redis: Redis) {}

  /** Load every non-GONE executor (after a restart). */
  async load(): Promise<ExecutorRecord[]> {
    const all = await this.redis.hgetall(KEY);
    for (const [id, raw] of Object.entries(all)) {
      const rec = asObject(parseJson(raw, `executor ${id}`), `executor ${id}`) as unknown as ExecutorRecord;
      if (rec.state === 'GONE') {
        await this.redis.hdel(KEY, id);
        continue;
      }
      this.records.set(id, rec);
    }
    return [...this.records.values()];
  }

  /** Record or update an executor (persisted before any Mesos call that depends on it). */
  async put(rec: ExecutorRecord): Promise<void> {
    this.records.set(rec.executorId, rec);
    if (rec.state === 'GONE') await this.redis.hdel(KEY, rec.executorId);
    else await this.redis.hset(KEY, rec.executorId, JSON.stringify(rec));
  }

  /** Change fields of a known executor. */
  async update(executorId: string, patch: Partial<ExecutorRecord>): Promise<ExecutorRecord | undefined> {
    const cur = this.records.get(executorId);
    if (!cur) return undefined;
    const next = { ...cur, ...patch };
    await this.put(next);
    if (next.state === 'GONE') this.records.delete(executorId);
    return next;
  }

  /** One executor. */
  get(executorId: string): ExecutorRecord | undefined {
    return this.records.get(executorId);
  }

  /** Every live executor. */
  all(): ExecutorRecord[] {
    return [...this.records.values()];
  }

  /** Live executors on an agent. */
  onAgent(agentId: string): ExecutorRecord[] {
    return this.all().filter((e) => e.agentId === agentId);
  }
}
