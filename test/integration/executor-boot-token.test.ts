/**
 * An executor redeems its bootstrap token against a real redis-server: it waits out a Redis that
 * is down when it starts (a restart) and gets its password once Redis is back, reporting the
 * wait; a token Redis refuses, or one already used, fails at once as UNAUTHENTICATED; a Redis
 * that never comes back fails as UNAVAILABLE after the wait, naming where it looked; so does one
 * that accepts connections and never answers, or answers only LOADING (each try is bounded).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocusError } from '../../src/core/errors.js';
import { redeemBootToken } from '../../src/executor/boot-token.js';
import { bootKey, bootUser } from '../../src/executor/contract.js';
import { freePort } from '../harness/ports.js';
import { startRedis, type TestRedis } from '../harness/redis.js';

const USER = 'locus-exec-boot';
const TOKEN = 'boot-token-0123456789';
let redis: TestRedis;

beforeAll(async () => {
  // The boot user as the executor registry makes it (GETDEL of its executors' boot keys only),
  // from the command line so that it is there again after a restart.
  // (Each word its own argument: redis-server quotes an argument holding spaces as one word.)
  redis = await startRedis({ extraArgs: ['--user', bootUser(USER), 'on', `>${TOKEN}`, 'resetchannels', '~locus:boot:*', '-@all', '+getdel', '+hello', '+auth', '+client|setname', '+info'] });
});
afterAll(async () => {
  await redis?.dispose();
});

async function setPassword(executorId: string, password: string): Promise<void> {
  const c = redis.client();
  try {
    await c.set(bootKey(executorId), password);
  } finally {
    c.disconnect();
  }
}

async function rejection(p: Promise<unknown>): Promise<LocusError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(LocusError);
  return err as LocusError;
}

describe('redeeming the bootstrap token', () => {
  it('waits for a Redis that is down when the executor starts, says so, and gets the password once it is back', async () => {
    await setPassword('ex-wait', 'pw-wait');
    await redis.stop(); // SIGTERM: the append-only file keeps the key
    const said: string[] = [];
    const started = Date.now();
    const redeemed = redeemBootToken(redis.url, USER, 'ex-wait', TOKEN, { waitMs: 30_000, say: (l) => said.push(l), sayEveryMs: 500 });
    // Longer than the 3 s an executor used to try for before it exited.
    await new Promise((res) => setTimeout(res, 4_000));
    await redis.restart();
    expect(await redeemed).toBe('pw-wait');
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000);
    expect(said.length).toBeGreaterThan(0);
    expect(said[0]).toContain(`executor ex-wait: Redis at 127.0.0.1:${redis.port} is unreachable`);
    // Redeemed once: the key is gone.
    const again = await rejection(redeemBootToken(redis.url, USER, 'ex-wait', TOKEN, { waitMs: 1_000 }));
    expect(again.code).toBe('UNAUTHENTICATED');
    expect(again.message).toContain('already used or has expired');
  }, 40_000);

  it('a token Redis refuses fails at once, without waiting', async () => {
    await setPassword('ex-wrong', 'pw-wrong');
    const started = Date.now();
    const err = await rejection(redeemBootToken(redis.url, USER, 'ex-wrong', 'not-the-token', { waitMs: 30_000 }));
    expect(err.code).toBe('UNAUTHENTICATED');
    expect(err.message).toContain('Redis refused its bootstrap token');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a Redis that never answers fails as UNAVAILABLE after the wait, naming its address', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await rejection(redeemBootToken(`redis://127.0.0.1:${port}`, USER, 'ex-none', TOKEN, { waitMs: 1_500, say: () => undefined }));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toContain(`Redis at 127.0.0.1:${port} stayed unreachable`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  });

  it.each([
    { peer: 'accepts and never answers', answer: undefined, expect: 'no answer within 5 s' },
    { peer: 'answers only LOADING', answer: '-LOADING Redis is loading the dataset in memory\r\n', expect: 'LOADING' },
  ])('a peer that $peer fails as UNAVAILABLE once the wait is over, reporting meanwhile', async ({ answer, expect: why }) => {
    const sockets: Socket[] = [];
    const server: Server = createServer((sock) => {
      sockets.push(sock);
      sock.on('error', () => undefined);
      if (answer !== undefined) sock.on('data', () => sock.write(answer));
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const said: string[] = [];
      const started = Date.now();
      const err = await rejection(redeemBootToken(`redis://127.0.0.1:${port}`, USER, 'ex-stuck', TOKEN, { waitMs: 1_500, say: (l) => said.push(l), sayEveryMs: 200 }));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.message).toContain(`Redis at 127.0.0.1:${port} stayed unreachable`);
      expect(err.message).toContain(why);
      // Bounded by one try's limit past the wait, never open-ended.
      expect(Date.now() - started).toBeLessThan(1_500 + 5_000 + 2_000);
      if (answer !== undefined) expect(said.length).toBeGreaterThan(0);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    }
  }, 20_000);
});
