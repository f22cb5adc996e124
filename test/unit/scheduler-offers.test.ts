import { describe, expect, it } from 'vitest';
import { offerRole, subtractTaken, summarizeOffer, takeResources } from '../../src/scheduler/offers.js';
import { substitute } from '../../src/scheduler/jobs/tasks.js';
import type { Offer, Resource } from '../../src/mesos/types.js';

const scalar = (name: string, value: number, reserved = false): Resource => ({
  name, type: 'SCALAR', scalar: { value }, allocation_info: { role: 'locus' },
  ...(reserved ? { reservations: [{ type: 'DYNAMIC', role: 'locus', principal: 'p', labels: { labels: [{ key: 'locus.reservation', value: 'r1' }] } }] } : {}),
});

const volume: Resource = {
  name: 'disk', type: 'SCALAR', scalar: { value: 64 }, allocation_info: { role: 'locus' },
  reservations: [{ type: 'DYNAMIC', role: 'locus' }],
  disk: { persistence: { id: 'vol-1' }, volume: { mode: 'RW', container_path: 'data' } },
};

const offer: Offer = {
  id: { value: 'o1' }, framework_id: { value: 'f' }, agent_id: { value: 'S1' }, hostname: 'agent-1',
  url: { scheme: 'http', address: { hostname: '127.0.0.1', port: 5051 } },
  resources: [scalar('cpus', 1, true), scalar('cpus', 2), scalar('mem', 1024), scalar('disk', 512), volume],
  attributes: [{ name: 'rack', type: 'TEXT', text: { value: 'r2' } }],
  allocation_info: { role: 'locus' },
};

describe('offers', () => {
  it('summarises free scalars (volumes apart), attributes, rack and agent URL', () => {
    const s = summarizeOffer(offer, 'locus');
    expect(s.free).toEqual({ cpus: 3, mem: 1024, disk: 512 });
    expect(s.volumeIds).toEqual(['vol-1']);
    expect(s.rack).toBe('r2');
    expect(s.agentUrl).toBe('http://127.0.0.1:5051');
    expect(offerRole(offer, 'x')).toBe('locus');
  });

  it('takes reserved resources first, keeps allocation info, and adds the volume when pinned', () => {
    const taken = takeResources(offer.resources, { cpus: 1.5, mem: 256, disk: 0 }, 'locus', 'vol-1');
    expect(taken).toBeDefined();
    const cpus = (taken ?? []).filter((r) => r.name === 'cpus');
    expect(cpus[0]?.reservations?.length).toBe(1);
    expect(cpus[0]?.scalar?.value).toBe(1);
    expect(cpus[1]?.scalar?.value).toBe(0.5);
    expect((taken ?? []).every((r) => r.allocation_info?.role === 'locus')).toBe(true);
    expect((taken ?? []).some((r) => r.disk?.persistence?.id === 'vol-1')).toBe(true);
    const left = subtractTaken(offer.resources, taken ?? []);
    expect(summarizeOffer({ ...offer, resources: left }, 'locus').free).toEqual({ cpus: 1.5, mem: 768, disk: 512 });
    expect(left.some((r) => r.disk?.persistence)).toBe(false);
  });

  it('refuses when the offer is short or the volume is not in it', () => {
    expect(takeResources(offer.resources, { cpus: 4, mem: 1, disk: 0 }, 'locus')).toBeUndefined();
    expect(takeResources(offer.resources, { cpus: 1, mem: 1, disk: 0 }, 'locus', 'vol-2')).toBeUndefined();
  });
});

describe('placeholders', () => {
  const split = { uri: 'local://d/f', offset: 8, length: 16, hosts: ['agent-1'], racks: ['r1'], localPath: '/data/f' };
  it('fills split, task and stage placeholders, leaving {output} to the executor', () => {
    expect(substitute(['{split.uri}', '{split.path}', '{split.offset}+{split.length}', '{task.index}', '{output}/x', '{stages.map.output}', '{job.id}.{attempt}'], {
      jobId: 'job-1', taskIndex: 3, attempt: 2, split, stageOutputs: { map: '/out/map' },
    })).toEqual(['local://d/f', '/data/f', '8+16', '3', '{output}/x', '/out/map', 'job-1.2']);
  });

  it('leaves {{name}} escaped for the executor, and a shell ${name} as written', () => {
    // Unescaped here, {{output}} would become {output}, which the executor then fills in.
    expect(substitute(['{{output}}', '{{task.index}}', 'awk {{print}}', 'echo ${f} ${task.index}', '{Output}'], {
      jobId: 'j', taskIndex: 4, attempt: 1, stageOutputs: {},
    })).toEqual(['{{output}}', '{{task.index}}', 'awk {{print}}', 'echo ${f} $4', '{Output}']);
  });

  it('leaves {split.path} for the executor when no local replica is known', () => {
    const { localPath: _l, ...remote } = split;
    expect(substitute(['{split.path}'], { jobId: 'j', taskIndex: 0, attempt: 1, split: remote, stageOutputs: {} })).toEqual(['{split.path}']);
  });
});
