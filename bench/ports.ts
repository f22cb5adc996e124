/**
 * Free loopback ports for servers that a test or benchmark starts in another
 * process (Redis, a framework, ZooKeeper), which binds the port only later.
 *
 * Asking the kernel for port 0 and handing that number on leaves a window in
 * which any other process binding port 0 may be given the same port: the
 * kernel picks those from the ephemeral range. With two test files running
 * side by side that happened (CI run 13: `locus up` failed with EADDRINUSE).
 * So ports are picked below the ephemeral range, which port-0 binds never
 * use, each vitest worker from its own slice, and never the same port twice
 * in one process.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Below this the slices start (ports under 10000 are left to well-known services). */
const FIRST = 10_000;
/** 31000-32000 is the agents' `ports` resource in the test clusters: stay under it. */
const LAST_CAP = 30_999;
const SLICES = 4;

const handed = new Set<number>();

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > FIRST ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function sliceOfThisWorker(): { from: number; to: number } {
  const last = Math.min(LAST_CAP, ephemeralLow() - 1);
  const width = Math.floor((last - FIRST + 1) / SLICES);
  const worker = Number(process.env['VITEST_POOL_ID'] ?? process.env['VITEST_WORKER_ID'] ?? 0);
  const k = Number.isInteger(worker) && worker > 0 ? (worker - 1) % SLICES : 0;
  return { from: FIRST + k * width, to: FIRST + (k + 1) * width - 1 };
}

function tryListen(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const addr = srv.address();
      const got = addr !== null && typeof addr === 'object' ? addr.port : undefined;
      srv.close(() => resolve(got));
    });
  });
}

/** A TCP port free on `host` now, which no port-0 bind of another process will be given. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const { from, to } = sliceOfThisWorker();
  for (let tries = 0; tries < 200; tries++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if (handed.has(port)) continue;
    if ((await tryListen(host, port)) === port) {
      handed.add(port);
      return port;
    }
  }
  // The slice is full (not expected): fall back to the kernel's choice.
  const port = await tryListen(host, 0);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}
