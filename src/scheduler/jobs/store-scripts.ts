/**
 * The job store's Lua scripts (see store.ts for the keys they work on) and
 * the names of the job counters they and the readers share. Each task
 * transition is one script, so it is atomic, and each checks the attempt it
 * is about, so a replayed status update or a result delivered twice changes
 * nothing the second time.
 */
import type { Redis } from 'ioredis';
import type { JobCounts } from './model.js';
import { LocalityLevel } from '../../core/locality.js';
import { batchedScript, type BatchShape } from '../../core/lua-batch.js';

/**
 * The Redis field of every job counter, keyed by its JobCounts name: the one
 * place counter names are spelled. The scripts, the job creation and both
 * readers take their names from here, so a counter can never be written under
 * one name and read under another (`locality.any` once read 0 for ever that way).
 */
export const JOB_COUNTERS = {
  total: 'n:total',
  pending: 'n:pending',
  running: 'n:running',
  succeeded: 'n:succeeded',
  failed: 'n:failed',
  nodeLocal: 'n:node',
  rackLocal: 'n:rack',
  anyLocal: 'n:any',
} as const satisfies Record<keyof JobCounts, string>;

/** The counter a succeeded task's locality level adds to. */
export const LOCALITY_COUNTER: Readonly<Record<LocalityLevel, string>> = {
  [LocalityLevel.NODE_LOCAL]: JOB_COUNTERS.nodeLocal,
  [LocalityLevel.RACK_LOCAL]: JOB_COUNTERS.rackLocal,
  [LocalityLevel.ANY]: JOB_COUNTERS.anyLocal,
};

/** Every counter's name in JobCounts, in one order (scripts and readers iterate it). */
export const COUNTER_KEYS = Object.keys(JOB_COUNTERS) as (keyof JobCounts)[];
const C = JOB_COUNTERS;

/**
 * Jobs recorded before the counter names were unified kept the `any` level under
 * this field. Read (added to `n:any`), never written, so their views stay right.
 */
export const LEGACY_ANY_COUNTER = 'n:anywhere';

/** The job hash's counter fields a script returns (OPEN_STAGE), in this order. */
export const COUNTER_FIELDS: readonly string[] = [...COUNTER_KEYS.map((k) => C[k]), LEGACY_ANY_COUNTER];
/** Lua table literal: locality level → counter field. */
const LUA_LOCALITY_COUNTERS = `{ [0] = '${LOCALITY_COUNTER[0]}', [1] = '${LOCALITY_COUNTER[1]}', [2] = '${LOCALITY_COUNTER[2]}' }`;


// KEYS[1]=job hash, KEYS[2]=tasks hash; ARGV[1]=field, ARGV[2]=attempt JSON, ARGV[3]=task JSON if new
// Returns 1 when the attempt started, 0 when the task was not PENDING (already started or finished),
// the job is not RUNNING (cancelled or failed meanwhile), or the attempt is not the task's next one
// (the caller counted attempts from an older record: its attempt id would repeat an earlier one).
const START_ATTEMPT = `
if redis.call('HGET', KEYS[1], 'state') ~= 'RUNNING' then return 0 end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
local task
if raw then task = cjson.decode(raw) else task = cjson.decode(ARGV[3]) end
if task.state ~= 'PENDING' then return 0 end
local attempt = cjson.decode(ARGV[2])
if task.attempts == nil or next(task.attempts) == nil then task.attempts = {} end
if tonumber(attempt.attempt) ~= #task.attempts + 1 then return 0 end
table.insert(task.attempts, attempt)
task.state = 'RUNNING'
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(task))
redis.call('HINCRBY', KEYS[1], '${C.pending}', -1)
redis.call('HINCRBY', KEYS[1], '${C.running}', 1)
return 1
`;

// KEYS[1]=job hash, KEYS[2]=tasks hash; ARGV: field, attemptId, attempt patch JSON, failure class,
// max retries, output path ('' for none), failed host ('' for none).
// Returns the task's new state, or 'STALE' when the attempt is not the task's running attempt.
const FINISH_ATTEMPT = `
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 'STALE' end
local task = cjson.decode(raw)
local n = #task.attempts
if n == 0 then return 'STALE' end
local last = task.attempts[n]
if last.attemptId ~= ARGV[2] or last.state ~= 'RUNNING' or task.state ~= 'RUNNING' then return 'STALE' end
local patch = cjson.decode(ARGV[3])
for k, v in pairs(patch) do last[k] = v end
task.attempts[n] = last
redis.call('HINCRBY', KEYS[1], '${C.running}', -1)
if last.state == 'SUCCEEDED' then
  task.state = 'SUCCEEDED'
  if ARGV[6] ~= '' then task.outputPath = ARGV[6] end
  redis.call('HINCRBY', KEYS[1], '${C.succeeded}', 1)
  -- An unknown level counts as the least local one, as placement would read it.
  local counters = ${LUA_LOCALITY_COUNTERS}
  redis.call('HINCRBY', KEYS[1], counters[tonumber(last.locality)] or counters[2], 1)
else
  local class = ARGV[4]
  if ARGV[7] ~= '' then
    if task.failedHosts == nil or next(task.failedHosts) == nil then task.failedHosts = {} end
    table.insert(task.failedHosts, ARGV[7])
  end
  if class == 'counted' then task.failures = task.failures + 1 end
  if class == 'fatal' or (class == 'counted' and task.failures > tonumber(ARGV[5])) then
    task.state = 'FAILED'
    redis.call('HINCRBY', KEYS[1], '${C.failed}', 1)
  elseif class == 'cancelled' then
    task.state = 'CANCELLED'
  else
    task.state = 'PENDING'
    redis.call('HINCRBY', KEYS[1], '${C.pending}', 1)
  end
end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(task))
return task.state
`;

// KEYS[1]=job hash, KEYS[2]=tasks hash, KEYS[3]=gens hash; ARGV[1]=field, ARGV[2]=the generation
// whose output was lost. A SUCCEEDED task of a RUNNING job in that generation becomes PENDING in
// the next one: succeeded -1, pending +1, its success's locality counter -1 (the recompute counts
// again when it succeeds). Returns the new generation, 0 when the task is not SUCCEEDED in that
// generation (reopened already: a second report of the same loss changes nothing), -1 when the
// job is not RUNNING.
const REOPEN_TASK = `
if redis.call('HGET', KEYS[1], 'state') ~= 'RUNNING' then return -1 end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local task = cjson.decode(raw)
local gen = tonumber(task.generation or 0)
if task.state ~= 'SUCCEEDED' or gen ~= tonumber(ARGV[2]) then return 0 end
task.state = 'PENDING'
task.generation = gen + 1
task.outputPath = nil
local n = #task.attempts
local last = n > 0 and task.attempts[n] or nil
if last and last.state == 'SUCCEEDED' then
  local counters = ${LUA_LOCALITY_COUNTERS}
  redis.call('HINCRBY', KEYS[1], counters[tonumber(last.locality)] or counters[2], -1)
end
redis.call('HINCRBY', KEYS[1], '${C.succeeded}', -1)
redis.call('HINCRBY', KEYS[1], '${C.pending}', 1)
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(task))
redis.call('HSET', KEYS[3], ARGV[1], tostring(gen + 1))
return gen + 1
`;

// KEYS[1]=job hash, KEYS[2]=jobs zset, KEYS[3]=idempotency key ('' for none), KEYS[4]=the key
// naming the job that holds the spec's output place ('' when the spec names no output);
// ARGV: job id, createdAt, the job hash's prefix, then the job hash's fields and values. Returns ''
// when created, else the existing job id. A key naming a job purged since (job-retention can purge
// within the key's 24 h) is taken by the new job: the job it named is gone, and resubmitting must
// not fail. The fields come from the caller, which builds the new job's record from the same ones.
// An output place held by another job that still exists returns 'output:' .. that job's id, and
// nothing is written; a holder purged since (or a key its purge did not reach) is taken over. A
// replay of the idempotency key is answered first: it is the job that holds the place.
const CREATE_JOB = `
local existing = ''
if KEYS[3] ~= '' then existing = redis.call('GET', KEYS[3]) end
if existing and existing ~= '' and redis.call('EXISTS', ARGV[3] .. existing) == 1 then return existing end
if KEYS[4] ~= '' then
  local holder = redis.call('GET', KEYS[4])
  if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. holder) == 1 then return 'output:' .. holder end
  redis.call('SET', KEYS[4], ARGV[1])
end
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[1], 'EX', 86400) end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return ''
`;

// KEYS[1]=job hash, KEYS[2]=the stage's split list, KEYS[3]=a list the splits were staged in
// beforehand ('' when they are ARGV[5..]); ARGV[1]=stage, ARGV[2]=task count, ARGV[3]=now,
// ARGV[4]=this call's nonce. Records the stage's splits once, makes its tasks pending and the
// job RUNNING, atomically: a crash leaves all or nothing, and a replay (the stage written
// already) or a job that ended meanwhile (cancelled while its inputs were resolved) changes
// nothing. A staged list of another length than the task count (a chunk pushed twice when its
// reply was lost and ioredis sent it again, or the list expired) is refused whole. Returns
// {1 when written by this call (or by an earlier run of it whose reply was lost: same nonce),
// else 0, the job's state, its stages JSON, its COUNTER_FIELDS' values}; {-1} when there is no
// such job; {-2} when the staged list is not the task count long (it is deleted).
const OPEN_STAGE = `
local function after(code, state, stages)
  return { code, state, stages, unpack(redis.call('HMGET', KEYS[1], ${COUNTER_FIELDS.map((f) => `'${f}'`).join(', ')})) }
end
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  if KEYS[3] ~= '' then redis.call('DEL', KEYS[3]) end
  return { -1 }
end
local stage = tonumber(ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'split-stage:' .. stage) == 1
  or (state ~= 'PENDING' and state ~= 'RESOLVING' and state ~= 'RUNNING') then
  if KEYS[3] ~= '' then redis.call('DEL', KEYS[3]) end
  local mine = redis.call('HGET', KEYS[1], 'split-opener:' .. stage) == ARGV[4]
  return after(mine and 1 or 0, state, redis.call('HGET', KEYS[1], 'stages') or '[]')
end
local n = tonumber(ARGV[2])
if KEYS[3] ~= '' and redis.call('LLEN', KEYS[3]) ~= n then
  redis.call('DEL', KEYS[3])
  return { -2 }
end
redis.call('DEL', KEYS[2])
if KEYS[3] ~= '' then
  if n > 0 then
    redis.call('RENAME', KEYS[3], KEYS[2])
    redis.call('PERSIST', KEYS[2])
  end
else
  -- In pieces: Lua's unpack stops near 8,000 values.
  for i = 5, #ARGV, 1000 do redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV))) end
end
local stages = cjson.decode(redis.call('HGET', KEYS[1], 'stages') or '[]')
if stages[stage + 1] then stages[stage + 1].taskCount = n end
-- cjson writes an empty table as an object.
local encoded = next(stages) == nil and '[]' or cjson.encode(stages)
redis.call('HSET', KEYS[1], 'stages', encoded, 'stage', tostring(stage), 'split-stage:' .. stage, tostring(n),
  'split-opener:' .. stage, ARGV[4], 'state', 'RUNNING', 'updatedAt', ARGV[3])
-- A job waiting for the storage of this stage's inputs said so in its message (input-waits.ts): no longer.
redis.call('HDEL', KEYS[1], 'message')
redis.call('HINCRBY', KEYS[1], '${C.total}', n)
redis.call('HINCRBY', KEYS[1], '${C.pending}', n)
return after(1, 'RUNNING', encoded)
`;

// KEYS[1]=job hash, KEYS[2]=tasks hash, KEYS[3]=jobs zset, KEYS[4]=purging hash, KEYS[5]=the key of
// the job's output place ('' for none: deleted only while it names this job), KEYS[6..]=split lists
// (and their staging lists);
// ARGV[1]=jobId. Removes a finished job's record and notes its task counts in the purging hash,
// from which its commit records are deleted next (and after a crash, by the next purge).
// Returns 1 when removed, 0 when the job has not finished, -1 when there is no such job.
const PURGE_JOB = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
if state ~= 'SUCCEEDED' and state ~= 'FAILED' and state ~= 'CANCELLED' then return 0 end
redis.call('HSET', KEYS[4], ARGV[1], redis.call('HGET', KEYS[1], 'stages') or '[]')
for i = 1, #KEYS do
  if i == 3 then
    redis.call('ZREM', KEYS[3], ARGV[1])
  elseif i == 5 then
    if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
  elseif i ~= 4 then
    redis.call('DEL', KEYS[i])
  end
end
return 1
`;

// KEYS[1]=tasks hash; ARGV[1]=field, ARGV[2]=attemptId, ARGV[3]=patch JSON.
// Merges the patch into the task's running attempt when it is still that attempt; returns 1 or 0.
const NOTE_ATTEMPT = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local task = cjson.decode(raw)
local n = #task.attempts
if n == 0 then return 0 end
local last = task.attempts[n]
if last.attemptId ~= ARGV[2] or last.state ~= 'RUNNING' then return 0 end
for k, v in pairs(cjson.decode(ARGV[3])) do last[k] = v end
task.attempts[n] = last
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(task))
return 1
`;

// KEYS[1]=job hash; ARGV[1]=new state, ARGV[2]=allowed from-states (comma list), ARGV[3]=now, ARGV[4]=message,
// ARGV[5]='1' to change it only while none of its attempts is running.
// Returns 1 when changed, 0 when the job is not in an allowed state or (ARGV[5]) has running attempts.
const SET_JOB_STATE = `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return -1 end
local ok = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == cur then ok = true end end
if not ok then return 0 end
-- Read in the same script as the change: an attempt started (START_ATTEMPT) before it counts,
-- and one started after it finds the job no longer RUNNING and is refused.
if ARGV[5] == '1' and tonumber(redis.call('HGET', KEYS[1], '${C.running}') or '0') > 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updatedAt', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'message', ARGV[4]) end
if ARGV[1] == 'SUCCEEDED' or ARGV[1] == 'FAILED' or ARGV[1] == 'CANCELLED' then redis.call('HSET', KEYS[1], 'finishedAt', ARGV[3]) end
-- A failed or cancelled job drops its pending tasks: none of them will run, so none is pending.
if ARGV[1] == 'FAILED' or ARGV[1] == 'CANCELLED' then redis.call('HSET', KEYS[1], '${C.pending}', '0') end
return 1
`;

/** The keys and arguments of one item of locusStartAttempts / locusFinishAttempts (their scripts' counts). */
export const START_ATTEMPT_ITEM: BatchShape = { keys: 2, args: 3 };
export const FINISH_ATTEMPT_ITEM: BatchShape = { keys: 2, args: 7 };

/** A connection with the store's scripts defined on it. */
export interface ScriptedRedis extends Redis {
  /** START_ATTEMPT for many attempts: the key count, every item's keys, then every item's arguments. */
  locusStartAttempts(numKeys: number, ...keysThenArgs: string[]): Promise<(number | string)[]>;
  /** FINISH_ATTEMPT for many attempts, laid out as locusStartAttempts. */
  locusFinishAttempts(numKeys: number, ...keysThenArgs: string[]): Promise<string[]>;
  locusSetJobState(jobKey: string, state: string, from: string, now: string, message: string, onlyIdle: string): Promise<number>;
  locusNoteAttempt(tasksKey: string, field: string, attemptId: string, patch: string): Promise<number>;
  locusCreateJob(jobKey: string, jobsKey: string, idemKey: string, outputKey: string, id: string, createdAt: string, jobKeyPrefix: string, ...fields: string[]): Promise<string>;
  locusOpenStage(jobKey: string, splitsKey: string, stagedKey: string, stage: string, taskCount: string, now: string, nonce: string, ...packedSplits: string[]): Promise<[number, string?, string?, ...(string | null)[]]>;
  locusPurgeJob(numKeys: number, ...keysAndArgs: string[]): Promise<number>;
  locusReopenTask(jobKey: string, tasksKey: string, gensKey: string, field: string, generation: string): Promise<number>;
}

/** Register the scripts as commands on a connection (EVALSHA, loaded on first use). */
export function defineStoreScripts(redis: Redis): ScriptedRedis {
  // The attempts' transitions go in batches (JobStore): the key count is passed per call.
  redis.defineCommand('locusStartAttempts', { lua: batchedScript(START_ATTEMPT, START_ATTEMPT_ITEM) });
  redis.defineCommand('locusFinishAttempts', { lua: batchedScript(FINISH_ATTEMPT, FINISH_ATTEMPT_ITEM) });
  redis.defineCommand('locusSetJobState', { numberOfKeys: 1, lua: SET_JOB_STATE });
  redis.defineCommand('locusNoteAttempt', { numberOfKeys: 1, lua: NOTE_ATTEMPT });
  redis.defineCommand('locusCreateJob', { numberOfKeys: 4, lua: CREATE_JOB });
  redis.defineCommand('locusOpenStage', { numberOfKeys: 3, lua: OPEN_STAGE });
  redis.defineCommand('locusReopenTask', { numberOfKeys: 3, lua: REOPEN_TASK });
  // The number of split lists varies with the job: the key count is passed per call.
  redis.defineCommand('locusPurgeJob', { lua: PURGE_JOB });
  return redis as ScriptedRedis;
}
