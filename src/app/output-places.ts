/**
 * Where a cluster's outputs go is one fact for the whole cluster, recorded in Redis by the first
 * scheduler that leads on it, and adopted by every scheduler after it.
 *
 * Why: a job records its output directory as an absolute path under the output root of the
 * instance that accepted it (`<state-dir>/outputs/<tenant>/<job>`), and every executor maps that
 * path onto where it commits relative to the root its leader launched it with. Standby instances
 * with another `--state-dir` (two on one machine must have one each) had another root: a job
 * accepted by one and finished by the other was committed on the hosts under
 * `<host-output-dir>/<host>/_other/<absolute path>`, and its earlier stages' parts under the first
 * layout, so a host's executors of the two leaders served different trees. The same held for the
 * default `host-output-dir`, which is also under the state dir.
 *
 * Adopting (rather than refusing to start) keeps standbys with their own state dirs working, and
 * keeps every recorded job path valid: job records stay absolute and all of them are under the
 * one recorded root. An instance configured otherwise says so once, naming both.
 */
import type { Redis } from 'ioredis';
import { asObject, parseJson } from '../core/decode.js';
import { LocusError } from '../core/errors.js';
import type { OutputPlaces } from '../storage/output-layout.js';
import type { Logger } from '../obs/log.js';

/** The Redis key holding the recorded places (a JSON object). */
export const OUTPUT_PLACES_KEY = 'locus:outputs:places';

/** What is recorded: the output root and the directory of each host's own outputs. */
export type RecordedPlaces = Pick<OutputPlaces, 'root' | 'hostRoot'>;

function decodePlaces(raw: string): RecordedPlaces {
  const o = asObject(parseJson(raw, OUTPUT_PLACES_KEY), OUTPUT_PLACES_KEY);
  const root = o['root'];
  const hostRoot = o['hostRoot'];
  if (typeof root !== 'string' || root === '' || typeof hostRoot !== 'string' || hostRoot === '') {
    throw new LocusError('PROTOCOL', `${OUTPUT_PLACES_KEY} in Redis is not {"root":…,"hostRoot":…}: ${raw}`);
  }
  return { root, hostRoot };
}

/**
 * The cluster's output places: the recorded ones, else `configured`, recorded now. `redis` is the
 * leader's fenced connection (only a leader decides). A difference from `configured` is logged as
 * a warning naming both, once per start.
 */
export async function settleOutputPlaces(redis: Redis, configured: RecordedPlaces, log: Logger): Promise<RecordedPlaces> {
  // NX: of two leaders one after the other on a fresh Redis, the first one's places stand.
  await redis.set(OUTPUT_PLACES_KEY, JSON.stringify(configured), 'NX');
  const raw = await redis.get(OUTPUT_PLACES_KEY);
  if (raw === null) throw new LocusError('UNAVAILABLE', `${OUTPUT_PLACES_KEY} vanished from Redis as it was recorded`);
  const recorded = decodePlaces(raw);
  if (recorded.root !== configured.root) {
    log.warn({ recorded: recorded.root, configured: configured.root },
      `the cluster's output root is ${recorded.root} (recorded in Redis by the first instance to lead), not this instance's ${configured.root}: using ${recorded.root}`);
  }
  if (recorded.hostRoot !== configured.hostRoot) {
    log.warn({ recorded: recorded.hostRoot, configured: configured.hostRoot },
      `the cluster's host-output-dir is ${recorded.hostRoot} (recorded in Redis by the first instance to lead), not this instance's ${configured.hostRoot}: using ${recorded.hostRoot}`);
  }
  return recorded;
}
