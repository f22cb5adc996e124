/**
 * Fencing of the scheduler's Redis writes by a leadership epoch.
 *
 * Each scheduler that takes the lead INCRs `locus:leader:epoch` and keeps the
 * value it got. Every write it makes afterwards is checked inside Redis,
 * atomically with the write, against the current value: a scheduler whose
 * epoch is no longer the current one (a paused leader that woke up after a
 * standby took over) is refused with the stable error `LOCUSFENCED` and
 * changes nothing. The check lives in one place, a wrapper around the ioredis
 * connection the stores use, so a store written tomorrow is fenced without
 * knowing it:
 * - scripts (`defineCommand`, `eval`) get a prelude that compares the epoch,
 *   passed as one extra trailing ARGV the prelude removes again, so the
 *   script's own ARGV indices are unchanged;
 * - every other command flagged `write` by Redis's command table runs inside
 *   one small script that checks the epoch and then calls it;
 * - `multi()` is collected and run as ONE script (atomic, as MULTI is, and
 *   fenced as a whole); `pipeline()` sends each command through the wrapper.
 * Reads pass through unchanged. BullMQ uses its own connections and is not
 * fenced: the queue add of an attempt follows the fenced START_ATTEMPT, so a
 * fenced scheduler never gets that far.
 */
import type { Redis } from 'ioredis';
import { hasFlag, exists } from '@ioredis/commands';
import { LocusError } from '../core/errors.js';

/** The key holding the current leadership epoch. */
export const LEADER_EPOCH_KEY = 'locus:leader:epoch';

/** The Redis error code of a refused write (the first word of the error message). */
export const FENCED_CODE = 'LOCUSFENCED';

// Runs before every fenced script: the epoch is the last ARGV, removed so the body sees its own.
const PRELUDE = `local __locus_epoch = table.remove(ARGV)
local __locus_current = redis.call('GET', '${LEADER_EPOCH_KEY}')
if __locus_current ~= __locus_epoch then
  return redis.error_reply('${FENCED_CODE} leadership epoch ' .. tostring(__locus_epoch) .. ' is stale (current ' .. tostring(__locus_current) .. ')')
end
`;

/** Arguments past which one command goes through MULTI's script, which splits the long ones. */
const LONG_COMMAND = 4000;

// One plain write command: ARGV = command, its arguments...
const ONE = `${PRELUDE}return redis.call(unpack(ARGV))`;

// A transaction: ARGV[1] = JSON list of commands, each a list of strings. Replies come back as
// {kind, value} pairs so nil and error replies survive the trip through Lua tables.
// Long argument lists of append-only commands are cut into pieces: Lua's unpack stops near 8,000.
const MULTI = `${PRELUDE}local cmds = cjson.decode(ARGV[1])
local out = {}
local splittable = { rpush = 1, lpush = 1, sadd = 1, srem = 1, del = 1, unlink = 1, hdel = 1 }
for i, c in ipairs(cmds) do
  local name = string.lower(c[1])
  local ok, r
  if #c > 4000 and splittable[name] then
    local total = 0
    local head = (name == 'del' or name == 'unlink') and 1 or 2
    local from = head + 1
    while from <= #c do
      local to = math.min(from + 3999, #c)
      local part = { c[1] }
      if head == 2 then part[2] = c[2] end
      for j = from, to do part[#part + 1] = c[j] end
      ok, r = pcall(redis.call, unpack(part))
      if not ok then break end
      total = (name == 'rpush' or name == 'lpush') and r or total + r
      from = to + 1
    end
    if ok then r = total end
  else
    ok, r = pcall(redis.call, unpack(c))
  end
  if not ok then out[i] = { 'err', tostring(r.err or r) }
  elseif r == false or r == nil then out[i] = { 'nil' }
  else out[i] = { 'ok', r } end
end
return out
`;

/** The leadership epoch one scheduler holds, and what to do when it turns out stale. */
export class Fence {
  private epochValue: string | undefined;
  private fencedAt: string | undefined;
  private readonly listeners: ((message: string) => void)[] = [];

  /** The epoch held, or undefined before `acquire`. */
  get epoch(): string | undefined {
    return this.epochValue;
  }

  /** Whether a write was refused: this scheduler is no longer the leader. */
  get fenced(): boolean {
    return this.fencedAt !== undefined;
  }

  /**
   * Take a new epoch (INCR): from now on every scheduler holding an older one is refused.
   * Called by each new leader before it reads or writes any state.
   */
  async acquire(redis: Redis): Promise<string> {
    this.epochValue = String(await redis.incr(LEADER_EPOCH_KEY));
    this.fencedAt = undefined;
    return this.epochValue;
  }

  /** Whether the epoch held is still the current one (a read; no write depends on it). */
  async current(redis: Redis): Promise<boolean> {
    return this.epochValue !== undefined && (await redis.get(LEADER_EPOCH_KEY)) === this.epochValue;
  }

  /** Call `fn` once, the first time a write is refused. */
  onFenced(fn: (message: string) => void): void {
    this.listeners.push(fn);
  }

  /** Note a refusal: the first one tells the listeners (the leader steps down). */
  noteFenced(message: string): void {
    if (this.fencedAt !== undefined) return;
    this.fencedAt = message;
    for (const l of this.listeners) {
      try {
        l(message);
      } catch {
        // A listener's failure must not hide the refusal from the caller.
      }
    }
  }

  /** The epoch to send; a scheduler that never acquired one has nothing to write with. */
  required(): string {
    if (this.epochValue === undefined) throw new LocusError('NOT_LEADER', 'this scheduler holds no leadership epoch');
    return this.epochValue;
  }
}

/** Whether an error is Redis refusing a write of a stale epoch. */
export function isFencedError(err: unknown): boolean {
  return err instanceof Error && (err.message.startsWith(FENCED_CODE) || (err instanceof LocusError && err.code === 'NOT_LEADER'));
}

type Fn = (...args: unknown[]) => Promise<unknown>;

/** ioredis' argument forms (strings, numbers, Buffers, arrays, `{ field: value }` objects) as flat strings. */
function flatArgs(args: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (Buffer.isBuffer(a)) out.push(a.toString());
    else if (Array.isArray(a)) out.push(...flatArgs(a));
    else if (a instanceof Map) for (const [k, v] of a) out.push(String(k), String(v));
    else if (a !== null && typeof a === 'object') for (const [k, v] of Object.entries(a)) out.push(k, String(v));
    else out.push(String(a));
  }
  return out;
}

/** A recorder standing in for ioredis' Pipeline: every chained call is one queued command. */
function recorder(run: (cmds: string[][]) => Promise<[Error | null, unknown][]>): unknown {
  const cmds: string[][] = [];
  const self: unknown = new Proxy({}, {
    get(_t, prop) {
      if (prop === 'exec') return () => run(cmds);
      if (prop === 'length') return cmds.length;
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      return (...args: unknown[]) => {
        cmds.push([prop, ...flatArgs(args)]);
        return self;
      };
    },
  });
  return self;
}

/**
 * The connection `redis` with every write fenced by `fence`'s epoch (see the module comment).
 * The same connection serves both: only writes cost one extra GET inside Redis.
 */
export function fencedRedis(redis: Redis, fence: Fence): Redis {
  const scripted = new Set<string>();
  const refuse = (err: unknown): never => {
    if (err instanceof Error && err.message.startsWith(FENCED_CODE)) {
      fence.noteFenced(err.message);
      throw new LocusError('NOT_LEADER', `this scheduler is no longer the leader: ${err.message}`, { cause: err });
    }
    throw err;
  };
  // Sends at once (so the order of commands on the connection is the caller's order); a
  // scheduler without an epoch gets a rejected promise, never a synchronous throw.
  const guard = <T>(send: (epoch: string) => Promise<T>): Promise<T> => {
    let epoch: string;
    try {
      epoch = fence.required();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return send(epoch).catch(refuse);
  };
  const target = redis as unknown as Record<string, unknown>;
  const call = (name: string, args: unknown[]): Promise<unknown> => (target[name] as Fn).apply(redis, args);

  const runMulti = async (cmds: string[][]): Promise<[Error | null, unknown][]> => {
    if (cmds.length === 0) return [];
    const raw = await guard((epoch) => redis.eval(MULTI, 0, JSON.stringify(cmds), epoch));
    return (raw as unknown[]).map((r): [Error | null, unknown] => {
      const pair = Array.isArray(r) ? r : [];
      if (pair[0] === 'err') return [new Error(String(pair[1])), null];
      if (pair[0] === 'nil') return [null, null];
      return [null, pair[1]];
    });
  };

  const proxy: Redis = new Proxy(redis, {
    get(t, prop, receiver) {
      if (typeof prop !== 'string') return Reflect.get(t, prop, receiver) as unknown;
      if (prop === 'defineCommand') {
        return (name: string, def: { numberOfKeys?: number; lua: string }) => {
          scripted.add(name);
          redis.defineCommand(name, { ...def, lua: PRELUDE + def.lua });
        };
      }
      if (scripted.has(prop)) return (...args: unknown[]) => guard((epoch) => call(prop, [...args, epoch]));
      if (prop === 'eval') {
        return (script: string, numKeys: number | string, ...args: unknown[]) => guard((epoch) => redis.eval(PRELUDE + script, numKeys, ...(args as string[]), epoch));
      }
      if (prop === 'multi') return () => recorder(runMulti);
      if (prop === 'pipeline') {
        return () => recorder(async (cmds) => Promise.all(cmds.map(async ([name, ...args]): Promise<[Error | null, unknown]> => {
          try {
            return [null, await (proxy as unknown as Record<string, Fn>)[name ?? 'ping']!(...args)];
          } catch (err) {
            return [err as Error, null];
          }
        })));
      }
      const lower = prop.toLowerCase();
      if (exists(lower) && hasFlag(lower, 'write')) {
        return (...args: unknown[]) => {
          const flat = flatArgs(args);
          // Lua's unpack stops near 8,000 arguments: a long command (the UNLINK of a large job's
          // commit records) goes through the transaction script, which cuts it into pieces.
          if (flat.length > LONG_COMMAND) {
            return runMulti([[lower, ...flat]]).then(([reply]) => {
              if (reply?.[0]) throw reply[0];
              return reply?.[1];
            });
          }
          return guard((epoch) => redis.eval(ONE, 0, lower, ...flat, epoch));
        };
      }
      const v = Reflect.get(t, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as Fn).bind(t) : v;
    },
  });
  return proxy;
}
