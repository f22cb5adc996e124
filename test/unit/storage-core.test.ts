import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { FileLocations } from '../../src/core/blocks.js';
import { ManualClock } from '../../src/core/clock.js';
import { LocusError } from '../../src/core/errors.js';
import { LocationCache } from '../../src/storage/cache.js';
import { isTransientStorageError } from '../../src/storage/errors.js';
import { objectIndexAt, objectName, objectSets, parseLayout } from '../../src/storage/ceph/layout.js';
import { decodeOsdTree, decodePgDumpAll, decodePgsBrief } from '../../src/storage/ceph/maps.js';
import { mapLimit, withTimeout } from '../../src/storage/concurrency.js';
import { expandPath, globToRegExp, type Entry, type Lister } from '../../src/storage/expand.js';
import { createAgents, getBuffered } from '../../src/storage/hdfs/http.js';
import { decodeBlockLocations, decodeLocatedBlocks } from '../../src/storage/hdfs/decode.js';
import { decodeHostMap, HostMapper } from '../../src/storage/hostmap.js';
import { chooseReplicas } from '../../src/storage/local/dataset.js';
import { createStorageRegistry } from '../../src/storage/registry.js';
import type { StorageBackend } from '../../src/storage/port.js';
import { fileLocations } from '../../src/storage/splits.js';
import { parseGetfattr } from '../../src/storage/xattr.js';

const one = (uri: string): FileLocations[] => [{ uri, size: 1, splits: [] }];

describe('LocationCache', () => {
  it('serves within the TTL, reloads after it, and shares in-flight loads', async () => {
    const clock = new ManualClock(0);
    const cache = new LocationCache({ ttlMs: 1000, maxEntries: 10, clock });
    // Each load answers with its own number as the size, so what the caller gets back shows
    // which load it came from: the cache is judged by its answers, not by counting calls.
    let loads = 0;
    const load = async (): Promise<FileLocations[]> => {
      loads++;
      return [{ uri: 'x', size: loads, splits: [] }];
    };
    const size = (r: readonly FileLocations[]): number | undefined => r[0]?.size;
    const shared = await Promise.all([cache.get('block', 'hdfs://a/x', load), cache.get('block', 'hdfs://a/x', load)]);
    expect(shared.map(size)).toEqual([1, 1]);
    clock.advance(999);
    expect(size(await cache.get('block', 'hdfs://a/x', load))).toBe(1);
    clock.advance(1);
    expect(size(await cache.get('block', 'hdfs://a/x', load))).toBe(2);
    // Split mode is part of the key.
    expect(size(await cache.get('file', 'hdfs://a/x', load))).toBe(3);
    expect(loads).toBe(3);
  });

  it('invalidates a URI and everything under it, not siblings with the same prefix', async () => {
    const cache = new LocationCache({ ttlMs: 1e9, maxEntries: 10, clock: new ManualClock() });
    for (const u of ['hdfs://a/d', 'hdfs://a/d/x', 'hdfs://a/dx']) await cache.get('block', u, async () => one(u));
    expect(cache.invalidate('hdfs://a/d')).toBe(2);
    expect(cache.stats().size).toBe(1);
    expect(cache.invalidate()).toBe(1);
  });

  it('drops the oldest entries beyond maxEntries and does not cache failures', async () => {
    const cache = new LocationCache({ ttlMs: 1e9, maxEntries: 2, clock: new ManualClock() });
    for (const u of ['a://1', 'a://2', 'a://3']) await cache.get('block', u, async () => one(u));
    expect(cache.stats().size).toBe(2);
    await expect(cache.get('block', 'a://bad', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    // The failure was not kept: the next get loads again and answers with the new result.
    expect(await cache.get('block', 'a://bad', async () => one('a://bad'))).toEqual(one('a://bad'));
  });
});

describe('registry', () => {
  it('picks the backend by scheme, caches, and bounds concurrency of resolveMany', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    // Every answer carries the backend's call number as its size: a cached answer repeats the
    // number of the call that produced it, a fresh one has a new number.
    let calls = 0;
    const fake: StorageBackend = {
      schemes: ['fake'],
      async resolve(uri) {
        calls++;
        const n = calls;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return [{ uri, size: n, splits: [] }];
      },
    };
    const reg = createStorageRegistry({ backends: [fake], concurrency: 3 });
    const uris = Array.from({ length: 20 }, (_, i) => `fake://x/${i}`);
    const out = await reg.resolveMany(uris, { split: 'block' });
    expect(out.map((r) => r[0]?.uri)).toEqual(uris);
    expect(maxInFlight).toBe(3);
    const sizes = out.map((r) => r[0]?.size);
    expect(new Set(sizes).size).toBe(20);
    // Cached: the same answers again.
    expect((await reg.resolveMany(uris, { split: 'block' })).map((r) => r[0]?.size)).toEqual(sizes);
    reg.invalidate('fake://x/1');
    // Invalidated: a fresh answer for that URI only.
    expect((await reg.resolve('fake://x/1', { split: 'block' }))[0]?.size).toBe(21);
    expect((await reg.resolve('fake://x/2', { split: 'block' }))[0]?.size).toBe(sizes[2]);
    await reg.close();
  });

  it('turns a backend that never answers into a TIMEOUT naming the URI', async () => {
    const stuck: StorageBackend = { schemes: ['stuck'], resolve: (_uri, o) => new Promise((_, reject) => o.signal?.addEventListener('abort', () => reject(o.signal?.reason))) };
    const reg = createStorageRegistry({ backends: [stuck], timeoutMs: 50 });
    const err = (await reg.resolve('stuck://a/b', { split: 'file' }).catch((e: unknown) => e)) as LocusError;
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toContain('stuck://a/b');
  });

  it("a listing past the registry's deadline is permanent (too large), a call's own timeout is not (the storage away)", async () => {
    const stuck: StorageBackend = { schemes: ['stuck'], resolve: (_uri, o) => new Promise((_, reject) => o.signal?.addEventListener('abort', () => reject(o.signal?.reason))) };
    const slowCall: StorageBackend = { schemes: ['away'], resolve: () => Promise.reject(new LocusError('TIMEOUT', 'no answer from nn:9870 in time')) };
    const reg = createStorageRegistry({ backends: [stuck, slowCall], timeoutMs: 50 });
    const huge = await reg.resolve('stuck://a/b', { split: 'file' }).catch((e: unknown) => e);
    expect(isTransientStorageError(huge)).toBe(false);
    expect((huge as Error).message).toMatch(/^stuck:\/\/a\/b: listing it took longer than 50 ms/);
    expect(isTransientStorageError(await reg.resolve('away://a/b', { split: 'file' }).catch((e: unknown) => e))).toBe(true);
    await reg.close();
  });

  it("a caller's signal: it stops waiting at once; a listing shared with another caller goes on, one nobody waits for is aborted", async () => {
    const signals: AbortSignal[] = [];
    let answer: () => void = () => undefined;
    const gated: StorageBackend = {
      schemes: ['gated'],
      resolve: (uri, o) => new Promise((resolve, reject) => {
        if (o.signal !== undefined) signals.push(o.signal);
        answer = () => resolve(one(uri));
        o.signal?.addEventListener('abort', () => reject(o.signal?.reason));
      }),
    };
    const reg = createStorageRegistry({ backends: [gated], cache: { ttlMs: 0 } });
    const a = new AbortController();
    const b = new AbortController();
    const first = reg.resolve('gated://x/1', { split: 'file', signal: a.signal }).catch((e: unknown) => e);
    const second = reg.resolve('gated://x/1', { split: 'file', signal: b.signal });
    a.abort();
    expect(await first).toMatchObject({ name: 'AbortError' });
    // Still wanted by the second caller: not aborted, and its answer reaches that caller.
    expect(signals.map((s) => s.aborted)).toEqual([false]);
    answer();
    expect((await second).length).toBe(1);

    const alone = new AbortController();
    const third = reg.resolve('gated://x/2', { split: 'file', signal: alone.signal }).catch((e: unknown) => e);
    alone.abort();
    expect(await third).toMatchObject({ name: 'AbortError' });
    expect(signals.map((s) => s.aborted)).toEqual([false, true]);
    await reg.close();
  });
});

describe('concurrency helpers', () => {
  it('mapLimit keeps order; withTimeout rejects late work', async () => {
    expect(await mapLimit([3, 1, 2], 2, async (x) => x * 2)).toEqual([6, 2, 4]);
    await expect(withTimeout('slow thing', 20, new Promise(() => undefined))).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});

describe('host mapping', () => {
  it('maps by any of a replica\'s names, keeps unmapped names, dedups, and applies racks', () => {
    const m = new HostMapper({ hosts: { '10.0.0.1': 'agent-1', 'DN-B': 'agent-2' }, racks: { 'agent-1': 'r1' } });
    expect(m.place([{ names: ['dn-a', '10.0.0.1'], rack: '/default' }, { names: ['dn-b'] }, { names: ['dn-x'], rack: '/rx' }, { names: ['agent-1'] }])).toEqual({
      hosts: ['agent-1', 'agent-2', 'dn-x'],
      racks: ['r1', '/rx'],
    });
    expect(new HostMapper().agentHost(['dn-a', '1.2.3.4'])).toBe('dn-a');
    expect(() => decodeHostMap({ hosts: { a: 1 } }, 'f.yaml')).toThrow(/f.yaml: hosts.a: expected a string/);
    expect(() => decodeHostMap({ nodes: {} }, 'f.yaml')).toThrow(/unknown key 'nodes'/);
  });
});

describe('path expansion', () => {
  const tree: Record<string, Entry[]> = {
    '/': [{ path: '/data', type: 'dir', size: 0 }],
    '/data': [
      { path: '/data/a.csv', type: 'file', size: 1 },
      { path: '/data/b.txt', type: 'file', size: 2 },
      { path: '/data/_SUCCESS', type: 'file', size: 0 },
      { path: '/data/.crc', type: 'file', size: 0 },
      { path: '/data/2024', type: 'dir', size: 0 },
    ],
    '/data/2024': [{ path: '/data/2024/c.csv', type: 'file', size: 3 }],
  };
  const all = new Map(Object.values(tree).flat().map((e) => [e.path, e]));
  all.set('/', { path: '/', type: 'dir', size: 0 });
  const lister: Lister = { stat: async (p) => all.get(p), list: async (d) => tree[d] ?? [] };

  it('walks directories, skips hidden names, matches globs, names explicit hidden files', async () => {
    expect((await expandPath('/data', lister))?.map((e) => e.path)).toEqual(['/data/2024/c.csv', '/data/a.csv', '/data/b.txt']);
    expect((await expandPath('/data/*.csv', lister))?.map((e) => e.path)).toEqual(['/data/a.csv']);
    expect((await expandPath('/data/{a,b}.*', lister))?.map((e) => e.path)).toEqual(['/data/a.csv', '/data/b.txt']);
    expect((await expandPath('/*/20[0-9][0-9]', lister))?.map((e) => e.path)).toEqual(['/data/2024/c.csv']);
    expect((await expandPath('/data/_SUCCESS', lister))?.map((e) => e.path)).toEqual(['/data/_SUCCESS']);
    expect(await expandPath('/nope', lister)).toBeUndefined();
    expect(await expandPath('/nope/*', lister)).toEqual([]);
    // A wildcard matches no hidden name (a stage's staging directory, its marker) unless the
    // pattern begins with one.
    expect((await expandPath('/data/*', lister))?.map((e) => e.path)).toEqual(['/data/2024/c.csv', '/data/a.csv', '/data/b.txt']);
    expect((await expandPath('/data/?crc', lister))?.map((e) => e.path)).toEqual([]);
    expect((await expandPath('/data/.*', lister))?.map((e) => e.path)).toEqual(['/data/.crc']);
    expect((await expandPath('/data/_*', lister))?.map((e) => e.path)).toEqual(['/data/_SUCCESS']);
    expect(globToRegExp('a.b*').test('a.bcd')).toBe(true);
    expect(globToRegExp('a.b*').test('axbcd')).toBe(false);
  });
});

describe('splits', () => {
  it('file mode ranks hosts by bytes and offers a local path only to hosts holding everything', () => {
    const f = fileLocations('local://d/x', 30, [
      { offset: 0, length: 10, replicas: [{ names: ['a'], path: '/a/x' }, { names: ['b'], path: '/b/x' }] },
      { offset: 10, length: 10, replicas: [{ names: ['b'], path: '/b/x' }, { names: ['c'], path: '/c/x' }] },
      { offset: 20, length: 10, replicas: [{ names: ['b'], path: '/b/x' }, { names: ['a'], path: '/a/x' }] },
    ], 'file', new HostMapper());
    expect(f.splits).toEqual([{ offset: 0, length: 30, hosts: ['b', 'a', 'c'], racks: [], localPaths: { b: '/b/x' } }]);
  });
});

describe('CephFS layout math', () => {
  it('names objects and maps offsets with the general striping formula', () => {
    expect(objectName(0x10000000001n, 2)).toBe('10000000001.00000002');
    const l = parseLayout('stripe_unit=1048576 stripe_count=3 object_size=2097152 pool=cephfs_data');
    expect(l).toEqual({ stripeUnit: 1048576, stripeCount: 3, objectSize: 2097152, pool: 'cephfs_data', poolNamespace: '' });
    if (l === undefined) return;
    // units 0,1,2 → objects 0,1,2; units 3,4,5 → 0,1,2 again; unit 6 → object 3.
    expect([0, 1, 2, 3, 4, 5, 6].map((u) => objectIndexAt(u * 1048576, l))).toEqual([0, 1, 2, 0, 1, 2, 3]);
    expect(objectSets(7_000_000, l)).toEqual([{ offset: 0, length: 6291456, objects: [0, 1, 2] }, { offset: 6291456, length: 708544, objects: [3] }]);
    const d = parseLayout('stripe_unit=4194304 stripe_count=1 object_size=4194304 pool=p pool_namespace=ns');
    expect(d?.poolNamespace).toBe('ns');
    expect(objectSets(10 * 1048576, d!).map((s) => s.objects)).toEqual([[0], [1], [2]]);
    expect(parseLayout('garbage')).toBeUndefined();
  });
});

describe('Ceph map decoders', () => {
  it('reads osdmaptool PG dumps, pgs_brief in both shapes, and CRUSH host/rack ancestry', () => {
    const pgs = decodePgDumpAll('osdmaptool: osdmap file x\npool 2 pg_num 16\n2.f raw ([2,1], p2) up ([2,1], p2) acting ([2,0], p2)\n');
    expect(pgs.get('2.f')).toEqual({ up: [2, 1], acting: [2, 0], actingPrimary: 2 });
    const brief = { pgid: '2.a', up: [1], acting: [1, 0], up_primary: 1, acting_primary: 1 };
    expect(decodePgsBrief({ pg_ready: true, pg_stats: [brief] }).get('2.a')?.acting).toEqual([1, 0]);
    expect(decodePgsBrief([brief]).get('2.a')?.actingPrimary).toBe(1);
    const tree = decodeOsdTree({ nodes: [
      { id: -1, name: 'default', type: 'root', children: [-9] },
      { id: -9, name: 'rack1', type: 'rack', children: [-3] },
      { id: -3, name: 'host-a', type: 'host', children: [0] },
      { id: 0, name: 'osd.0', type: 'osd' },
    ] });
    expect(tree.get(0)).toEqual({ host: 'host-a', rack: 'rack1' });
  });
});

describe('WebHDFS decoders', () => {
  it('normalise both block-location shapes to the same blocks', () => {
    const a = decodeBlockLocations({ BlockLocations: { BlockLocation: [{ hosts: ['dn1'], names: ['10.0.0.1:9866'], topologyPaths: ['/r1/10.0.0.1:9866'], offset: 0, length: 5, corrupt: false }] } });
    const b = decodeLocatedBlocks({ LocatedBlocks: { fileLength: 5, locatedBlocks: [{ startOffset: 0, block: { numBytes: 5 }, locations: [{ hostName: 'dn1', ipAddr: '10.0.0.1', networkLocation: '/r1' }] }], lastLocatedBlock: { startOffset: 0, block: { numBytes: 5 }, locations: [] } } });
    expect(a).toEqual([{ offset: 0, length: 5, replicas: [{ names: ['dn1', '10.0.0.1'], rack: '/r1' }] }]);
    expect(b.blocks).toEqual(a);
    expect(b.fileLength).toBe(5);
  });
});

describe('getfattr output', () => {
  it('parses values and escaped names', () => {
    const out = '# file: /m/a b\\012c\nuser.x="v1"\n\n# file: /m/plain\nuser.x="(<POSIX(/b):h:/b/p>)"\n\n';
    const m = parseGetfattr(out, 'user.x');
    expect(m.get('/m/a b\nc')).toBe('v1');
    expect(m.get('/m/plain')).toBe('(<POSIX(/b):h:/b/p>)');
  });
});

describe('redirect safety', () => {
  async function serve(handler: (url: string, res: import('node:http').ServerResponse) => void): Promise<{ server: Server; base: string }> {
    const server = createServer((req, res) => handler(req.url ?? '/', res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  it('follows relative redirects, refuses non-http targets and loops', async () => {
    const { server, base } = await serve((url, res) => {
      if (url === '/start') res.writeHead(307, { location: '/end' }).end();
      else if (url === '/file') res.writeHead(307, { location: 'file:///etc/passwd' }).end();
      else if (url === '/loop') res.writeHead(307, { location: '/loop' }).end();
      else res.writeHead(200).end('ok');
    });
    const agents = createAgents(4);
    try {
      expect((await getBuffered(`${base}/start`, agents, { timeoutMs: 2000, maxRedirects: 3 })).body.toString()).toBe('ok');
      await expect(getBuffered(`${base}/file`, agents, { timeoutMs: 2000, maxRedirects: 3 })).rejects.toThrow(/refusing to follow a redirect to file:/);
      await expect(getBuffered(`${base}/loop`, agents, { timeoutMs: 2000, maxRedirects: 3 })).rejects.toThrow(/more than 3 redirects/);
    } finally {
      agents.http.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('local dataset replica choice', () => {
  it('spreads primaries evenly, uses distinct agents and prefers other racks', () => {
    const agents = ['h1', 'h2', 'h3', 'h4'].map((h, i) => ({ id: h, hostname: h, rack: i < 2 ? 'ra' : 'rb', dataDir: `/d/${h}` }));
    const counts = new Map<string, number>();
    for (let c = 0; c < 40; c++) {
      const chosen = chooseReplicas(agents, c, 2);
      expect(new Set(chosen.map((a) => a.hostname)).size).toBe(2);
      expect(new Set(chosen.map((a) => a.rack)).size).toBe(2);
      for (const a of chosen) counts.set(a.hostname, (counts.get(a.hostname) ?? 0) + 1);
    }
    expect([...counts.values()]).toEqual([20, 20, 20, 20]);
    expect(chooseReplicas(agents.slice(0, 1), 3, 3)).toHaveLength(1);
    expect(chooseReplicas(agents, 0, 4).map((a) => a.hostname).sort()).toEqual(['h1', 'h2', 'h3', 'h4']);
  });
});

describe('errors', () => {
  it('LocusErrors carry the URI', () => {
    expect(new LocusError('STORAGE', 'x').code).toBe('STORAGE');
  });
});
