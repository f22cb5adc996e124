/** Free ports for servers started in other processes (bench/ports.ts): outside the ephemeral range, never twice. */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';

it('picks bindable ports below the kernel\'s ephemeral range, none twice in one process', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports: number[] = [];
  for (let i = 0; i < 50; i++) ports.push(await freePort());
  expect(new Set(ports).size).toBe(ports.length);
  for (const p of ports) {
    expect(p).toBeGreaterThanOrEqual(10_000);
    // Port-0 binds of other processes are given ephemeral ports: these are never among them.
    expect(p).toBeLessThan(Math.min(low, 31_000));
  }
  // And each is free to bind now.
  const srv = createServer();
  await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(ports[0], '127.0.0.1', () => resolve()); });
  await new Promise<void>((resolve) => srv.close(() => resolve()));
});
