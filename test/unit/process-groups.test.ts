/**
 * The process isolator's usage per process group: a pass over /proc's stat texts summed by
 * group (commands holding spaces and parentheses parsed from the last ')'), and one pass shared
 * by every container asking within the interval instead of a pass each, slow passes spaced out.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProcessGroupSampler, statFields, usageByGroup } from '../../src/executor/isolation/process-groups.js';

/** A stat line: pid (comm) state ppid pgrp ... utime stime cutime cstime ... rss (the fields this reads, the rest zeros). */
function stat(pid: number, comm: string, pgrp: number, ticks: [number, number, number, number], rss: number): string {
  const f = Array.from({ length: 50 }, () => '0');
  f[0] = 'S';
  f[1] = '1';
  f[2] = String(pgrp);
  ticks.forEach((t, i) => (f[11 + i] = String(t)));
  f[21] = String(rss);
  return `${pid} (${comm}) ${f.join(' ')}\n`;
}

describe('process group usage', () => {
  it('sums CPU ticks and resident pages by process group, whatever the command is called', () => {
    const by = usageByGroup([
      stat(100, 'sh', 100, [1, 2, 3, 4], 10),
      stat(101, 'my (odd) prog', 100, [10, 0, 0, 0], 5),
      stat(200, 'other', 200, [7, 0, 0, 0], 1),
      'garbage without a command',
    ]);
    expect(by.get(100)).toEqual({ ticks: 20, rssPages: 15 });
    expect(by.get(200)).toEqual({ ticks: 7, rssPages: 1 });
    expect(by.size).toBe(2);
    expect(statFields(stat(5, 'a) (b', 5, [0, 0, 0, 0], 0))?.[2]).toBe('5');
  });

  it('one pass per interval answers every group asked within it', () => {
    let passes = 0;
    let now = 1_000;
    const sampler = new ProcessGroupSampler(250, () => {
      passes++;
      return [stat(1, 'a', 1, [passes, 0, 0, 0], 1), stat(2, 'b', 2, [0, 0, 0, 0], 2)];
    }, () => now);
    expect(sampler.usageOf(1)?.ticks).toBe(1);
    expect(sampler.usageOf(2)?.rssPages).toBe(2);
    expect(sampler.usageOf(3)).toBeUndefined();
    now += 249;
    expect(sampler.usageOf(1)?.ticks).toBe(1);
    expect(passes).toBe(1);
    now += 1;
    expect(sampler.usageOf(1)?.ticks).toBe(2);
    expect(passes).toBe(2);
  });

  it('a group born after the latest pass gets a pass of its own when asked, once', () => {
    let passes = 0;
    let now = 1_000;
    const sampler = new ProcessGroupSampler(250, () => {
      passes++;
      // Group 9 exists from the second pass on (started at 1,100).
      return passes === 1 ? [stat(1, 'a', 1, [1, 0, 0, 0], 1)] : [stat(1, 'a', 1, [1, 0, 0, 0], 1), stat(9, 'n', 9, [3, 0, 0, 0], 4)];
    }, () => now);
    expect(sampler.usageOf(1)?.ticks).toBe(1);
    now = 1_150;
    // The monitor's tick takes the shared pass as it is; an ask with the birth time does not.
    expect(sampler.usageOf(9)).toBeUndefined();
    expect(sampler.usageOf(9, 1_100)?.rssPages).toBe(4);
    expect(passes).toBe(2);
    now = 1_200;
    expect(sampler.usageOf(9, 1_100)?.ticks).toBe(3);
    expect(passes).toBe(2);
  });

  it('a slow pass (a host of thousands of processes) spaces the next ones out to 20 times its length', () => {
    let passes = 0;
    let now = 0;
    const sampler = new ProcessGroupSampler(250, () => {
      passes++;
      now += 60; // the pass itself takes 60 ms
      return [stat(1, 'a', 1, [passes, 0, 0, 0], 1)];
    }, () => now);
    sampler.usageOf(1);
    now += 500;
    sampler.usageOf(1);
    expect(passes).toBe(1);
    now += 700; // 1,260 ms after the first pass began: past 20 x 60 ms
    expect(sampler.usageOf(1)?.ticks).toBe(2);
  });

  it('reads this host\'s /proc: its own process group is there, with CPU time', () => {
    const sampler = new ProcessGroupSampler(0);
    // Spend some CPU so the ticks are not 0.
    const until = Date.now() + 30;
    while (Date.now() < until) Math.sqrt(Math.random());
    const group = Number(statFields(readFileSync('/proc/self/stat', 'latin1'))?.[2]);
    const own = sampler.usageOf(group);
    expect(own).toBeDefined();
    expect(own?.rssPages ?? 0).toBeGreaterThan(0);
    expect(own?.ticks ?? 0).toBeGreaterThan(0);
  });
});
