/**
 * `executor-held-starts: auto` (src/executor/host-cpu.ts: HostCpu, holdWhileIdle): the idle
 * share of the host's CPUs between the two latest samples of /proc/stat, sampled at most every
 * `everyMs`; held starts only while it is at least HELD_STARTS_MIN_IDLE, and held when it cannot
 * be told.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HELD_STARTS_MIN_IDLE, HostCpu, holdWhileIdle, parseProcStat } from '../../src/executor/host-cpu.js';

/** A /proc/stat whose first line has these idle and busy jiffies (busy split over user and system). */
function stat(idle: number, busy: number): string {
  return `cpu  ${Math.floor(busy / 2)} 0 ${Math.ceil(busy / 2)} ${idle} 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n`;
}

describe('host CPU idle share', () => {
  it('reads the first line of /proc/stat: idle and iowait count as idle, guest time is not counted twice', () => {
    expect(parseProcStat('cpu  100 5 50 800 20 3 2 0 40 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n')).toEqual({ idle: 820, total: 980 });
    expect(parseProcStat('intr 1 2 3\n')).toBeUndefined();
    expect(parseProcStat('cpu  a b c d\n')).toBeUndefined();
    // The real file parses.
    expect(parseProcStat(readFileSync('/proc/stat', 'utf8'))?.total).toBeGreaterThan(0);
  });

  it('answers the share between the two latest samples, sampling at most every everyMs', () => {
    let now = 0;
    let text = stat(1000, 1000);
    let reads = 0;
    const cpu = new HostCpu(() => (reads++, text), () => now, 200);
    expect(reads).toBe(1);
    // One sample only: unknown.
    expect(cpu.idle()).toBeUndefined();
    now = 250;
    text = stat(1000 + 30, 1000 + 70);
    expect(cpu.idle()).toBeCloseTo(0.3);
    // Within everyMs of the last sample: the same answer, no read.
    now = 300;
    text = stat(2000, 1000);
    expect(cpu.idle()).toBeCloseTo(0.3);
    expect(reads).toBe(2);
    now = 460;
    text = stat(1030 + 90, 1070 + 10);
    expect(cpu.idle()).toBeCloseTo(0.9);
    expect(reads).toBe(3);
  });

  it('cannot tell (undefined) once /proc/stat cannot be read, and tells again once it can', () => {
    let now = 0;
    let fail = false;
    let n = 0;
    const cpu = new HostCpu(() => {
      if (fail) throw new Error('EACCES');
      n += 100;
      return stat(n / 2, n / 2);
    }, () => now, 100);
    now = 100;
    expect(cpu.idle()).toBeCloseTo(0.5);
    fail = true;
    now = 300;
    expect(cpu.idle()).toBeUndefined();
    fail = false;
    now = 400;
    expect(cpu.idle()).toBeCloseTo(0.5);
  });
});

describe('holdWhileIdle', () => {
  it('holds while the host idled at least HELD_STARTS_MIN_IDLE, not below, and holds when it cannot tell', () => {
    let now = 0;
    let text = stat(0, 0);
    const cpu = new HostCpu(() => text, () => now, 100);
    const hold = holdWhileIdle(cpu);
    expect(hold()).toBe(true);
    now = 100;
    text = stat(Math.round(HELD_STARTS_MIN_IDLE * 100), 100 - Math.round(HELD_STARTS_MIN_IDLE * 100));
    expect(hold()).toBe(true);
    now = 200;
    text = stat(Math.round(HELD_STARTS_MIN_IDLE * 100) + 5, 100 - Math.round(HELD_STARTS_MIN_IDLE * 100) + 95);
    expect(hold()).toBe(false);
    now = 300;
    text = stat(Math.round(HELD_STARTS_MIN_IDLE * 100) + 85, 100 - Math.round(HELD_STARTS_MIN_IDLE * 100) + 110);
    expect(hold()).toBe(true);
  });
});
