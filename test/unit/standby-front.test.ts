/**
 * A standby's own refusals are in the error format of every other answer: HTTP 503 with
 * `{ error: { code: 'NOT_LEADER', message } }` and Retry-After, gRPC UNAVAILABLE with the
 * `locus-error-code` trailer — with no leader known, and with a leader that does not answer.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { startStandbyFront, type LeaderAddress, type StandbyFront } from '../../src/app/standby.js';
import { silentLogger } from '../../src/obs/log.js';
import { freePort } from '../harness/ports.js';
import { grpcClient, grpcError } from '../integration/surfaces-harness.js';

let front: StandbyFront | undefined;
let leader: LeaderAddress | undefined;

afterEach(async () => {
  await front?.close();
  front = undefined;
  leader = undefined;
});

async function start(): Promise<StandbyFront> {
  front = await startStandbyFront({ host: '127.0.0.1', httpPort: 0, grpcPort: 0, leader: () => leader, logger: silentLogger() });
  return front;
}

async function expectNotLeader(f: StandbyFront, message: RegExp): Promise<void> {
  const res = await fetch(`${f.httpUrl}/v1/jobs`, { headers: { authorization: 'Bearer t' } });
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(res.headers.get('x-locus-role')).toBe('standby');
  const body = await res.json() as { error?: { code?: string; message?: string } };
  expect(body.error?.code).toBe('NOT_LEADER');
  expect(body.error?.message).toMatch(message);
}

describe('standby front', () => {
  it('refuses HTTP and gRPC with NOT_LEADER in the usual error format while no leader is known', async () => {
    const f = await start();
    await expectNotLeader(f, /no leader is known yet/);
    const rpc = grpcClient(f.grpcAddress);
    try {
      const err = await grpcError(rpc.unary('ListJobs', {}, 't'));
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.details).toMatch(/^NOT_LEADER: /);
      expect(err.metadata.get('locus-error-code')).toEqual(['NOT_LEADER']);
    } finally {
      rpc.close();
    }
    // Its own health and readiness still answer.
    expect((await fetch(`${f.httpUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${f.httpUrl}/readyz`)).json()).toEqual({ ready: false, role: 'standby' });
  });

  it('answers NOT_LEADER in the same format when the known leader does not answer', async () => {
    const closed = await freePort();
    leader = { httpUrl: `http://127.0.0.1:${closed}`, grpcAddress: `127.0.0.1:${closed}` };
    const f = await start();
    await expectNotLeader(f, new RegExp(`leader at http://127.0.0.1:${closed} did not answer`));
  });
});
