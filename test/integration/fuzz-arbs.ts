/**
 * Generators of bad inputs for the fuzzing pass (fast-check arbitraries):
 * random and structure-aware HTTP requests over the routes a running server
 * declares in /openapi.json, bad job specs (JSON and YAML), bad volume and
 * reservation bodies, broken HTTP framing, gRPC messages and metadata, and
 * CLI argument vectors. Every generator that claims an input is bad makes it
 * bad for certain (a wrong type, an unknown field, a value out of range), so
 * an accepted input is a finding, not noise.
 */
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';

// ---------------------------------------------------------------- values

/** Strings that fail every id, name and tenant pattern of the API (a character none allows). */
export const badToken: fc.Arbitrary<string> = fc.tuple(
  fc.string({ maxLength: 20 }),
  fc.constantFrom('!', ' ', 'Ü', '\u0000', '%', '"', '<', '\u202e', '*', '\t', '\u{1F4A9}'),
  fc.string({ maxLength: 20 }),
).map(([a, bad, b]) => `${a}${bad}${b}`);

/** Anything JSON can carry, including deep and odd shapes. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 4 }), weight: 6 },
  { arbitrary: fc.constantFrom<unknown>(null, true, false, 0, -1, 1e308, -0.5, '', ' ', '0', 'null', [], {}, [[]], { '': '' }), weight: 2 },
  { arbitrary: fc.integer({ min: 20, max: 300 }).map((d) => JSON.parse('['.repeat(d) + ']'.repeat(d)) as unknown), weight: 1 },
);

/** JSON text nested far deeper than any parser that recurses can take. */
export const deepJsonText: fc.Arbitrary<string> = fc.tuple(fc.integer({ min: 1000, max: 30_000 }), fc.constantFrom('[', '{"a":'))
  .map(([d, open]) => `{"name":"deep","labels":${open.repeat(d)}1${(open === '[' ? ']' : '}').repeat(d)}}`);

/** A value of a type other than string. */
export const notAString: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
);

/** A value of a type other than number and string. */
const notNumberOrString: fc.Arbitrary<unknown> = fc.oneof(
  fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
);

/** A key that is none of `known`. */
const unknownKey = (known: readonly string[]): fc.Arbitrary<string> =>
  fc.string({ minLength: 1, maxLength: 24 }).filter((k) => !known.includes(k) && k !== '__proto__').map((k) => (known.includes(k) ? `${k}_x` : k));

/** Sizes that are never valid (not a size, a negative one, zero, an unknown unit). */
const badSize: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('12 parsecs', '-1GiB', 'GiB', '', ' ', '1e999MiB', '1,5GiB', '0x10MiB', '10 GiBs', 'NaN', '∞'),
  fc.integer({ min: -1_000_000, max: -1 }),
  notNumberOrString,
  badToken.map((s) => `1${s}GiB`),
);

/** Durations that are never valid. */
const badDuration: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('abc', '10 parsecs', '', 's', '-5s', '5x', '1h 30m', '1.h', 'PT5S'),
  fc.integer({ min: -1_000_000, max: -1 }),
  notNumberOrString,
);

// ---------------------------------------------------------------- job specs

/** A valid job spec (one stage of explicit tasks): the base every mutation breaks. */
export function validSpec(name = 'fz'): Record<string, unknown> {
  return {
    name, retries: 0, timeout: '1m',
    tasks: [{ command: ['true'] }],
    task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } },
  };
}

/** A valid two-stage spec. */
export function validStagedSpec(name = 'fz-staged'): Record<string, unknown> {
  return {
    name, retries: 0,
    stages: [
      { name: 'a', tasks: [{ command: ['true'] }], task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } } },
      { name: 'b', inputs: ['stage:a'], tasks: [{ command: ['true'] }], task: { command: ['true'] } },
    ],
  };
}

type Spec = Record<string, unknown>;
type Mutation = { readonly field: string; readonly apply: (s: Spec) => void };

const TOP_KEYS = ['name', 'priority', 'retries', 'timeout', 'locality', 'constraints', 'output', 'stages', 'labels', 'inputs', 'split', 'task', 'tasks'];

const isMap = (v: unknown): v is Spec => typeof v === 'object' && v !== null && !Array.isArray(v);
/**
 * The first stage (or the spec itself without stages) and its task template.
 * An earlier mutation may have broken them already; then a scratch object
 * takes the write, and the spec stays broken by that earlier mutation.
 */
const stageOf = (s: Spec): Spec => {
  const stages = s['stages'];
  if (stages === undefined) return s;
  const first: unknown = Array.isArray(stages) ? stages[0] : undefined;
  return isMap(first) ? first : {};
};
const taskOf = (s: Spec): Spec => {
  const t = stageOf(s)['task'];
  return isMap(t) ? t : {};
};

const mut = (field: string, value: fc.Arbitrary<unknown>, apply: (s: Spec, v: unknown) => void): fc.Arbitrary<Mutation> =>
  value.map((v) => ({ field, apply: (s: Spec) => apply(s, v) }));

/** One mutation that makes any valid spec invalid, naming the field it breaks. */
const specMutation: fc.Arbitrary<Mutation> = fc.oneof(
  mut('name', fc.oneof(notAString, badToken, fc.constantFrom('', '-lead', '.dot', 'x'.repeat(64))), (s, v) => { s['name'] = v; }),
  unknownKey(TOP_KEYS).chain((k) => mut(k, anyJson, (s, v) => { s[k] = v; })),
  mut('priority', fc.oneof(fc.constantFrom<unknown>(1.5, 1001, -1001, 1e12, '1', true, null, [], {})), (s, v) => { s['priority'] = v; }),
  mut('retries', fc.oneof(fc.constantFrom<unknown>(-1, 101, 2.5, 'x', '3', false, null), fc.integer({ min: 101, max: 1e9 })), (s, v) => { s['retries'] = v; }),
  mut('timeout', badDuration, (s, v) => { s['timeout'] = v; }),
  mut('cpus', fc.oneof(fc.constantFrom<unknown>(0, -1, 1025, 0.001, '1', true, null, []), fc.double({ min: 1024.5, max: 1e300, noNaN: true })), (s, v) => {
    const t = taskOf(s);
    t['resources'] = { ...(t['resources'] as object), cpus: v };
  }),
  mut('mem', badSize, (s, v) => {
    const t = taskOf(s);
    t['resources'] = { ...(t['resources'] as object), mem: v };
  }),
  mut('disk', fc.oneof(badSize, fc.constant(0)), (s, v) => {
    const t = taskOf(s);
    t['resources'] = { ...(t['resources'] as object), disk: v };
  }),
  unknownKey(['cpus', 'mem', 'disk']).chain((k) => mut(k, anyJson, (s, v) => {
    const t = taskOf(s);
    t['resources'] = { ...(t['resources'] as object), [k]: v };
  })),
  mut('resources', fc.oneof(fc.constantFrom<unknown>('1cpu', 5, true, null, []), fc.array(fc.integer(), { maxLength: 3 })), (s, v) => { taskOf(s)['resources'] = v; }),
  mut('command', fc.oneof(
    fc.constantFrom<unknown>([], 'true', null, 7, {}, [null], [{}], [[]], ['echo', '{nope}'], ['{split.nope}'], ['{stages..output}x{bogus}']),
    fc.string({ minLength: 1, maxLength: 10 }).filter((w) => /^[a-z]+$/.test(w)).map((w) => ['echo', `{${w}.zz}`]),
  ), (s, v) => { taskOf(s)['command'] = v; }),
  mut('env', fc.oneof(
    fc.constantFrom<unknown>('A=1', 5, [], ['A=1']),
    fc.tuple(fc.constantFrom('1A', 'A-B', 'A B', '', 'é', 'A=B', '$A'), fc.string()).map(([k, v]) => ({ [k]: v })),
    fc.constantFrom<unknown>({ A: null }, { A: {} }, { A: [] }, { A: [1] }),
  ), (s, v) => { taskOf(s)['env'] = v; }),
  mut('volumes', fc.oneof(
    fc.constantFrom<unknown>('data', 5, {}, [5], [{}], [{ name: 'v' }], [{ path: 'p' }]),
    fc.constantFrom('/abs', '../up', 'a/../b', '..', '').map((p) => [{ name: 'v', path: p }]),
    fc.constantFrom<unknown>('rw', 'XX', 1, true).map((m) => [{ name: 'v', path: 'p', mode: m }]),
    unknownKey(['name', 'path', 'mode']).map((k) => [{ name: 'v', path: 'p', [k]: 1 }]),
  ), (s, v) => { taskOf(s)['volumes'] = v; }),
  unknownKey(['command', 'resources', 'env', 'volumes']).chain((k) => mut(k, anyJson, (s, v) => { taskOf(s)[k] = v; })),
  mut('task', fc.constantFrom<unknown>(null, 'true', 5, [], ['true']), (s, v) => { stageOf(s)['task'] = v; }),
  mut('tasks', fc.constantFrom<unknown>([], 'x', 5, {}, [5], [null], [{ command: [] }], [{ cmd: ['true'] }], [{ env: { '1': 'x' } }]), (s, v) => { stageOf(s)['tasks'] = v; }),
  mut('split', fc.oneof(fc.constantFrom<unknown>('rows', 'BLOCK', '', 1, null, true), badToken), (s, v) => { stageOf(s)['split'] = v; }),
  mut('inputs', fc.oneof(
    fc.constantFrom<unknown>([''], [5], 'no-scheme', ['no-scheme'], [null], 7, {}, ['stage:nope'], ['stage:'], ['//host/x'], ['HTTP://x'], ['1abc://x']),
    badToken.map((t) => [t]),
  ), (s, v) => { stageOf(s)['inputs'] = v; }),
  mut('locality', fc.oneof(
    fc.constantFrom<unknown>('sometimes', 'NODE-ONLY', 5, true, [], { wait: 'abc' }, { wait: [] }, { wait: { node: 'x' } }, { wait: { node: -1 } }, { wait: { disk: '1s' } }, { mode: 'off' }),
  ), (s, v) => { s['locality'] = v; }),
  mut('constraints', fc.constantFrom<unknown>('rack=r1', 5, {}, [5], [{}], [{ attribute: 1, equals: 'x' }], [{ attribute: 'rack' }],
    [{ hostname: '' }], [{ hostname: 5 }], [{ notHostnames: 'a' }], [{ notHostnames: [1] }], [{ attribute: 'rack', equals: 'r1', extra: 1 }], [{ op: 'EQ' }]), (s, v) => { s['constraints'] = v; }),
  mut('labels', fc.oneof(fc.constantFrom<unknown>('a=b', 5, [], ['a']), fc.tuple(fc.string({ maxLength: 8 }), notAString).map(([k, v]) => ({ [k || 'k']: v })),
    fc.constant({ a: '' })), (s, v) => { s['labels'] = v; }),
  mut('output', fc.oneof(notAString, fc.constant('')), (s, v) => { s['output'] = v; }),
  mut('stages', fc.constantFrom<unknown>([], 'a', 5, {}, [5], [null], Array.from({ length: 17 }, (_, i) => ({ name: `s${i}`, tasks: [{ command: ['true'] }], task: { command: ['true'] } }))), (s, v) => {
    s['stages'] = v;
    delete s['tasks'];
    delete s['task'];
  }),
  mut('stages', fc.constant(null), (s) => {
    // Two stages of the same name.
    s['stages'] = [0, 1].map(() => ({ name: 'twice', tasks: [{ command: ['true'] }], task: { command: ['true'] } }));
    delete s['tasks'];
    delete s['task'];
  }),
  mut('task', fc.constant(null), (s) => {
    // Stage keys at the top level next to `stages`.
    Object.assign(s, validStagedSpec(String(s['name'] ?? 'fz')));
    s['task'] = { command: ['true'] };
  }),
);

/** A bad spec as an object: a valid one (single or staged) with one to three mutations. */
export const badSpecObject: fc.Arbitrary<{ spec: Spec; fields: string[] }> = fc.tuple(
  fc.boolean(), fc.array(specMutation, { minLength: 1, maxLength: 3 }),
).map(([staged, muts]) => {
  const spec = structuredClone(staged ? validStagedSpec() : validSpec());
  for (const m of muts) m.apply(spec);
  return { spec, fields: muts.map((m) => m.field) };
});

/** A bad spec as text, JSON or YAML, with the content type it is sent with. */
export const badSpecText: fc.Arbitrary<{ text: string; contentType: string; fields: string[] }> = fc.tuple(
  badSpecObject, fc.constantFrom('json', 'yaml'),
).map(([{ spec, fields }, kind]) => {
  if (kind === 'json') return { text: JSON.stringify(spec), contentType: 'application/json', fields };
  try {
    return { text: toYaml(spec), contentType: 'application/yaml', fields };
  } catch {
    // The YAML writer recurses: a deeply nested value goes as JSON (which YAML reads too).
    return { text: JSON.stringify(spec), contentType: 'application/yaml', fields };
  }
});

/** Text that is not a job spec at all: random, YAML-looking, broken JSON, alias bombs, odd scalars. */
export const junkSpecText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.array(fc.constantFrom('name: x\n', 'stages:\n', '  - ', '{', '}', '[', ']', ':', '&a ', '*a ', '!!binary ', '!!js/function ', '? ', '|\n', '>\n', '---\n', '...\n', '"', "'", '#', '\t', '%YAML 1.2\n', '<<: *a\n', 'task: ', 'command: [true]\n'), { maxLength: 30 }).map((xs) => xs.join('')),
  anyJson.map((v) => JSON.stringify(v) ?? 'null'),
  fc.integer({ min: 1, max: 40 }).map((n) => `{"name": "x", "stages": ${'['.repeat(n)}`),
  fc.integer({ min: 2, max: 9 }).map((n) => {
    // An alias bomb: each level refers to the previous one n times.
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: n }, () => `*a${i - 1}`).join(', ')}]`);
    return lines.join('\n') + '\nname: bomb\n';
  }),
  // Deep nesting in every YAML spelling: flow brackets (closed or not), compact block sequences, indentation.
  fc.tuple(fc.integer({ min: 65, max: 20_000 }), fc.constantFrom('flow', 'closed', 'braces', 'dashes', 'indent', 'keys')).map(([n, how]) => {
    if (how === 'flow') return 'name: x\nstages: ' + '['.repeat(n);
    if (how === 'closed') return '['.repeat(n) + ']'.repeat(n);
    if (how === 'braces') return 'x: ' + '{a: '.repeat(n) + '1' + '}'.repeat(n);
    if (how === 'dashes') return '- '.repeat(n) + 'x\n';
    if (how === 'keys') return '? '.repeat(n) + 'x\n';
    return Array.from({ length: Math.min(n, 1400) }, (_, i) => `${' '.repeat(i)}a${i}:`).join('\n') + ' 1\n';
  }),
  fc.constantFrom('', ' ', '\n', 'null', '~', '42', 'true', '[]', '"str"', '- a\n- b\n', 'name: x\nname: y\n', 'name: [\n', '{"name": "x",}', '\ufeff{"name":1}',
    'name: !!binary aGVsbG8=\n', 'name: !custom x\n', 'name: !!set {a, b}\n', 'name: 0x1F\n', 'name: .nan\n'),
);

// ---------------------------------------------------------------- volumes and reservations

const VOLUME_KEYS = ['name', 'size', 'containerPath', 'mode', 'agent', 'near', 'constraints', 'labels', 'tenant'];
const RESERVATION_KEYS = ['resources', 'agent', 'near', 'constraints', 'labels', 'tenant'];

const placementMutation: fc.Arbitrary<[string, unknown]> = fc.oneof(
  fc.tuple(fc.constant('agent'), fc.oneof(badToken, notAString, fc.constant(''), fc.constant('x'.repeat(256)))),
  // A well-formed name the cluster does not have: UNKNOWN_AGENT.
  fc.tuple(fc.constant('agent'), fc.stringMatching(/^[a-z]{4,12}$/).map((s) => `no-such-agent-${s}`)),
  fc.tuple(fc.constant('near'), fc.oneof(notAString, fc.constantFrom('', 'ab', 'x'.repeat(2049)))),
  fc.tuple(fc.constant('constraints'), fc.constantFrom<unknown>('x', 5, {}, [5], [{}], [{ attribute: 'a b', value: 'x' }], [{ attribute: 'rack', value: '' }],
    [{ attribute: 'rack', value: 'x', op: 'LIKE' }], [{ attribute: 'rack', value: 'x', extra: 1 }], Array.from({ length: 17 }, () => ({ attribute: 'rack', value: 'r1' })))),
  fc.tuple(fc.constant('labels'), fc.oneof(
    fc.constantFrom<unknown>('a=b', 5, [], { 'bad key': 'x' }, { '-lead': 'x' }, { a: 5 }, { a: null }, { a: 'x'.repeat(256) }),
    fc.constant(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))),
  )),
  fc.tuple(fc.constant('tenant'), fc.oneof(badToken, notAString, fc.constantFrom('', 'UPPER', '-lead', 'x'.repeat(64)))),
);

/** A bad POST /v1/volumes body (and its gRPC ReserveVolume form where it has one). */
export const badVolumeBody: fc.Arbitrary<Record<string, unknown>> = fc.tuple(
  fc.oneof(
    fc.tuple(fc.constant('name'), fc.oneof(badToken, notAString, fc.constantFrom('', '.', '..', 'x'.repeat(64)))),
    fc.tuple(fc.constant('size'), badSize),
    fc.tuple(fc.constant('size'), fc.constantFrom<unknown>('2000000TiB', 1e15)),
    fc.tuple(fc.constant('containerPath'), fc.oneof(notAString, fc.constantFrom('', '/abs', '../x', 'a/../b', 'x'.repeat(256), 'a b', 'a//b'))),
    fc.tuple(fc.constant('mode'), fc.oneof(notAString, fc.constantFrom('rw', 'XX', ''))),
    placementMutation,
    unknownKey(VOLUME_KEYS).chain((k) => fc.tuple(fc.constant(k), anyJson)),
    fc.tuple(fc.constant('__drop__'), fc.constantFrom('name', 'size')),
  ),
  fc.stringMatching(/^[a-z][a-z0-9]{2,10}$/),
).map(([[k, v], suffix]) => {
  const body: Record<string, unknown> = { name: `fzvol-${suffix}`, size: '64MiB' };
  if (k === '__drop__') delete body[String(v)];
  else body[k] = v;
  return body;
});

/** A bad POST /v1/reservations body. */
export const badReservationBody: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.constantFrom<unknown>({}, null, 5, 'cpus', []).map((r) => ({ resources: r })),
  fc.oneof(notNumberOrString, fc.constantFrom<unknown>(-1, 4097, 1e9, '1', ''), fc.double({ min: 4096.5, max: 1e300, noNaN: true })).map((v) => ({ resources: { cpus: v } })),
  fc.tuple(fc.constantFrom('mem', 'disk'), badSize).map(([k, v]) => ({ resources: { [k]: v } })),
  unknownKey(['cpus', 'mem', 'disk']).map((k) => ({ resources: { cpus: 1, [k]: 1 } })),
  placementMutation.map(([k, v]) => ({ resources: { cpus: 0.1 }, [k]: v })),
  unknownKey(RESERVATION_KEYS).chain((k) => anyJson.map((v) => ({ resources: { cpus: 0.1 }, [k]: v }))),
);

// ---------------------------------------------------------------- HTTP

/** A route as /openapi.json declares it. */
export interface RouteInfo {
  readonly method: string;
  /** fastify syntax: `/v1/jobs/:id`. */
  readonly path: string;
  readonly params: readonly string[];
  readonly query: readonly { readonly name: string; readonly schema: Record<string, unknown> }[];
  readonly public: boolean;
  readonly hasBody: boolean;
}

/** The routes of an OpenAPI document. */
export function routesOf(doc: unknown): RouteInfo[] {
  const out: RouteInfo[] = [];
  const paths = (doc as { paths?: Record<string, Record<string, Record<string, unknown>>> }).paths ?? {};
  for (const [p, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const parameters = (Array.isArray(op['parameters']) ? op['parameters'] : []) as { name: string; in: string; schema: Record<string, unknown> }[];
      out.push({
        method: method.toUpperCase(),
        path: p.replace(/\{([^}]+)\}/g, ':$1'),
        params: parameters.filter((x) => x.in === 'path').map((x) => x.name),
        query: parameters.filter((x) => x.in === 'query').map((x) => ({ name: x.name, schema: x.schema })),
        public: Array.isArray(op['security']) && op['security'].length === 0,
        hasBody: op['requestBody'] !== undefined,
      });
    }
  }
  return out;
}

/** One HTTP request to send raw. */
export interface HttpInput {
  readonly method: string;
  /** Path and query, already encoded as sent. */
  readonly target: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body?: Buffer;
  /** Whether the input is known to be bad (an accepted answer is then a finding). */
  readonly mustRefuse: boolean;
  readonly label: string;
}

/** Serialise a request: `Connection: close` and a correct Content-Length unless the input names its own. */
export function serialise(input: HttpInput): Buffer {
  const lines = [`${input.method} ${input.target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  const names = new Set(input.headers.map(([k]) => k.toLowerCase()));
  for (const [k, v] of input.headers) lines.push(`${k}: ${v}`);
  if (input.body !== undefined && !names.has('content-length') && !names.has('transfer-encoding')) lines.push(`Content-Length: ${input.body.length}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), input.body ?? Buffer.alloc(0)]);
}

/** A path parameter value that no resource has: malformed (400) or well-formed and absent (404). */
const badParam: fc.Arbitrary<string> = fc.oneof(
  badToken.map(encodeURIComponent),
  fc.constantFrom('%2e%2e', '..%2F..%2Fetc%2Fpasswd', '%00', 'a%2Fb', '%ZZ', '%', '%E2%82', '%ff%fe', 'x'.repeat(161), '-lead', '.', '%20'),
  fc.stringMatching(/^[a-z0-9]{6,20}$/).map((s) => `nope-${s}`),
  fc.uuid().map((u) => `res-${u}`),
  fc.string({ minLength: 1, maxLength: 30 }).map(encodeURIComponent),
);

/** A query value that fails every enum and pattern of the API's query schemas. */
const badQueryValue: fc.Arbitrary<string> = fc.oneof(badToken.map(encodeURIComponent), fc.constantFrom('', '%ZZ', 'TRUE', '-1', '1.5', `${'9'.repeat(12)}!`, 'x'.repeat(300)));

const queryPart = (route: RouteInfo): fc.Arbitrary<{ query: string; bad: boolean }> => {
  const known = route.query.map((q) => q.name);
  const good = fc.constant({ query: '', bad: false });
  if (known.length === 0) {
    // Routes without a query schema ignore the query: not a refusal by itself.
    return fc.oneof(good, fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([k, v]) => ({ query: `?${encodeURIComponent(k)}=${encodeURIComponent(v)}`, bad: false })));
  }
  return fc.oneof(
    good,
    unknownKey(known).chain((k) => fc.string({ maxLength: 10 }).map((v) => ({ query: `?${encodeURIComponent(k)}=${encodeURIComponent(v)}`, bad: true }))),
    fc.tuple(fc.constantFrom(...known), badQueryValue).map(([k, v]) => ({ query: `?${k}=${v}`, bad: true })),
    // The same key twice: an array where the schema wants a string.
    fc.tuple(fc.constantFrom(...known), fc.stringMatching(/^[a-z]{1,5}$/)).map(([k, v]) => ({ query: `?${k}=${v}&${k}=${v}`, bad: true })),
    fc.constantFrom('?=', '?%ZZ=1', '?a[b]=1', '?__proto__[x]=1', '?constructor=1').map((q) => ({ query: q, bad: true })),
    // Empty pairs parse to no query at all: odd, not bad.
    fc.constantFrom('?&&&', '?&', '?').map((q) => ({ query: q, bad: false })),
  );
};

/** Every declared route with bad path parameters and/or a bad query, authenticated as `token`. */
export function routeProbe(routes: readonly RouteInfo[], token: string): fc.Arbitrary<HttpInput> {
  return fc.constantFrom(...routes).chain((route) => fc.tuple(
    fc.array(badParam, { minLength: route.params.length, maxLength: route.params.length }),
    queryPart(route),
    fc.constantFrom<[string, string][]>([], [['Accept', 'text/event-stream']], [['Accept', '*/*']], [['Accept-Encoding', 'gzip, br']], [['Accept', 'application/xml']]),
  ).map(([params, q, extra]): HttpInput => {
    let i = 0;
    const path = route.path.replace(/:[A-Za-z0-9_]+/g, () => params[i++] ?? 'x');
    const body = route.hasBody ? Buffer.from('{}') : undefined;
    return {
      method: route.method, target: path + q.query,
      headers: [['Authorization', `Bearer ${token}`], ...extra, ...(body ? [['Content-Type', 'application/json'] as const] : [])],
      ...(body ? { body } : {}),
      // A body of {} is never a valid job, volume or reservation either.
      mustRefuse: route.params.length > 0 || q.bad || route.hasBody,
      label: `${route.method} ${route.path}`,
    };
  }));
}

/** Bad credentials on every route that needs them. */
export function authProbe(routes: readonly RouteInfo[]): fc.Arbitrary<HttpInput> {
  const guarded = routes.filter((r) => !r.public);
  const badAuth: fc.Arbitrary<[string, string][]> = fc.oneof(
    fc.constant<[string, string][]>([]),
    fc.constantFrom('Bearer', 'Bearer ', 'bearer', 'Basic YWRtaW46YWRtaW4=', 'Token abc', 'Bearer a b', 'Bearer\tx', 'Bearer ' + 'x'.repeat(5000), 'Bearer \u00ff\u00fe', 'Digest x=1', ' Bearer x', 'Bearer%20x')
      .map((v) => [['Authorization', v]] as [string, string][]),
    fc.string({ minLength: 1, maxLength: 64 }).filter((s) => /^[\x21-\x7e]+$/.test(s)).map((t) => [['Authorization', `Bearer ${t}`]] as [string, string][]),
    fc.constant([['Authorization', 'Bearer wrong-1'], ['Authorization', 'Bearer wrong-2']] as [string, string][]),
  );
  return fc.tuple(fc.constantFrom(...guarded), badAuth).map(([route, headers]): HttpInput => ({
    method: route.method, target: route.path.replace(/:[A-Za-z0-9_]+/g, 'x1'), headers,
    ...(route.hasBody ? { body: Buffer.from('{}') } : {}),
    mustRefuse: true, label: `auth ${route.method} ${route.path}`,
  }));
}

const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'application/yaml', 'text/yaml', 'application/x-yaml', 'text/plain',
  'application/octet-stream', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16',
  'application/json; charset=latin1', ';;;', 'json', 'application/', '*/*', 'text/html', 'application/json, text/plain', 'APPLICATION/JSON',
  'application/yaml; charset=utf-8', 'application/vnd.api+json',
];

/** Random bodies with random content types to every route that takes a body (and POST to an existing job's action routes). */
export function bodyProbe(routes: readonly RouteInfo[], token: string): fc.Arbitrary<HttpInput> {
  const posts = routes.filter((r) => r.method === 'POST');
  const body: fc.Arbitrary<Buffer> = fc.oneof(
    { arbitrary: anyJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), weight: 4 },
    { arbitrary: junkSpecText.map((t) => Buffer.from(t)), weight: 3 },
    { arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), weight: 2 },
    { arbitrary: fc.constantFrom('{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '{"name":"\\ud800"}', '\ufeff{}', '{"a":1}{"b":2}', '1'.repeat(400), '{"name":' + '9'.repeat(400) + '}').map((s) => Buffer.from(s)), weight: 1 },
    { arbitrary: fc.integer({ min: 70, max: 200 }).map((kib) => Buffer.alloc(kib * 1024, 0x61)), weight: 1 },
    { arbitrary: deepJsonText.map((t) => Buffer.from(t)), weight: 1 },
  );
  const ct: fc.Arbitrary<[string, string][]> = fc.oneof(
    fc.constantFrom(...CONTENT_TYPES).map((c) => [['Content-Type', c]] as [string, string][]),
    fc.constant<[string, string][]>([]),
  );
  return fc.tuple(fc.constantFrom(...posts), body, ct).map(([route, b, headers]): HttpInput => ({
    method: route.method, target: route.path.replace(/:[A-Za-z0-9_]+/g, 'nope-job'),
    headers: [['Authorization', `Bearer ${token}`], ...headers], body: b,
    mustRefuse: true, label: `body ${route.method} ${route.path}`,
  }));
}

/** Bad job specs submitted over HTTP, JSON or YAML, with odd Idempotency-Keys now and then. */
export function specProbe(token: string): fc.Arbitrary<HttpInput> {
  const key: fc.Arbitrary<[string, string][]> = fc.oneof(
    { arbitrary: fc.constant<[string, string][]>([]), weight: 4 },
    { arbitrary: fc.constantFrom('', ' ', 'x'.repeat(201), 'a b', '\u00e9').map((k) => [['Idempotency-Key', k]] as [string, string][]), weight: 1 },
  );
  return fc.tuple(fc.oneof(
    { arbitrary: badSpecText, weight: 4 },
    { arbitrary: junkSpecText.map((text) => ({ text, contentType: 'application/yaml', fields: ['<junk>'] })), weight: 1 },
    // Valid specs refused at submission: an input no backend serves, an output outside the tenant's directory.
    { arbitrary: fc.constantFrom(
      { ...validSpec('fz-scheme'), inputs: ['gopher://x/y'], tasks: undefined },
      { ...validSpec('fz-out'), output: '/etc/locus-fuzz' },
      { ...validSpec('fz-out2'), output: '../../other-tenant/x' },
    ).map((s) => ({ text: JSON.stringify(s), contentType: 'application/json', fields: ['inputs|output'] })), weight: 1 },
  ), key).map(([s, headers]): HttpInput => ({
    method: 'POST', target: '/v1/jobs',
    headers: [['Authorization', `Bearer ${token}`], ['Content-Type', s.contentType], ...headers], body: Buffer.from(s.text),
    mustRefuse: true, label: `spec ${s.fields.join(',')}`,
  }));
}

/** Bad volume and reservation requests. */
export function volumeProbe(token: string): fc.Arbitrary<HttpInput> {
  return fc.oneof(
    badVolumeBody.map((b): HttpInput => ({ method: 'POST', target: '/v1/volumes', headers: [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json']], body: Buffer.from(JSON.stringify(b)), mustRefuse: true, label: 'volume body' })),
    badReservationBody.map((b): HttpInput => ({ method: 'POST', target: '/v1/reservations', headers: [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json']], body: Buffer.from(JSON.stringify(b)), mustRefuse: true, label: 'reservation body' })),
  );
}

/** Paths and methods nobody declared. */
export function pathProbe(token: string): fc.Arbitrary<HttpInput> {
  const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'PROPFIND', 'TRACE', 'SEARCH', 'PURGE');
  const path = fc.oneof(
    fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
    fc.constantFrom('/v1', '/v1/', '/v2/jobs', '/v1/jobs/', '/v1/jobs//x', '//', '/v1/volumes/a/b/c', '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/v1/jobs/x/tasks/y', '/ui', '/ui/../v1/jobs', '/healthz/', '/HEALTHZ', '/v1/JOBS', '/v1/jobs;x', '/v1/jobs%00', '/%', '/%ZZ', '/\u00e9'),
    fc.array(fc.string({ minLength: 1, maxLength: 8 }).map(encodeURIComponent), { minLength: 1, maxLength: 6 }).map((xs) => `/${xs.join('/')}`),
  );
  return fc.tuple(method, path, fc.boolean()).filter(([m, p]) => !KNOWN_PATH.test(p.split('?')[0] ?? '') || m === 'PUT' || m === 'PATCH' || m === 'PROPFIND' || m === 'TRACE' || m === 'SEARCH' || m === 'PURGE')
    .map(([m, p, auth]): HttpInput => ({
      method: m, target: p.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c)), headers: auth ? [['Authorization', `Bearer ${token}`]] : [],
      mustRefuse: true, label: `path ${m}`,
    }));
}
/**
 * The dashboard's plain routes (not in /openapi.json): module names that are
 * not modules — path traversal in every encoding, odd names, absent files —
 * and unknown paths and methods under /ui/. All are 404 NOT_FOUND.
 */
export function uiProbe(): fc.Arbitrary<HttpInput> {
  const badModule = fc.oneof(
    fc.constantFrom('..%2F..%2F..%2Fetc%2Fpasswd', '%2e%2e%2fpackage.json', '..%5c..%5cx.js', '%00.js', 'app.js%00', '.js', 'APP.js', 'app.JS', 'app.js.map.map',
      'x'.repeat(41) + '.js', 'a b.js', '%2Fetc%2Fpasswd', '..', '.', '%2e', 'app.ts', '~root.js', 'a.js?x=1'),
    fc.stringMatching(/^[a-z0-9-]{1,12}$/).map((n) => `nope-${n}.js`),
    badToken.map((t) => encodeURIComponent(`${t}.js`)),
  );
  return fc.oneof(
    badModule.map((m): HttpInput => ({ method: 'GET', target: `/ui/js/${m}`, headers: [], mustRefuse: true, label: 'ui module' })),
    fc.array(fc.stringMatching(/^[a-z0-9._-]{1,10}$/), { minLength: 1, maxLength: 3 }).filter((xs) => !['app.css', 'js'].includes(xs[0] ?? '') || xs.length > 1)
      .map((xs): HttpInput => ({ method: 'GET', target: `/ui/${xs.join('/')}x`, headers: [], mustRefuse: true, label: 'ui path' })),
    fc.constantFrom('POST', 'PUT', 'DELETE', 'PATCH').map((m): HttpInput => ({ method: m, target: '/ui/', headers: [['Content-Type', 'application/json']], body: Buffer.from('{}'), mustRefuse: true, label: 'ui method' })),
  );
}

// Declared paths (or prefixes a route parameter would match): excluded from the unknown-path probe.
const KNOWN_PATH = /^\/(healthz|readyz|metrics|openapi\.json|docs|ui(\/.*)?|v1\/(jobs|volumes|reservations|cluster)(\/[^/]*)?(\/(tasks|cancel|purge|events))?|v1\/tasks\/[^/]+\/(logs|explain))$/;

/** Broken HTTP framing: Content-Length lies, bad chunking, bad request lines and headers, oversized heads. */
export function framingProbe(token: string): fc.Arbitrary<{ bytes: Buffer; endAfterMs?: number; label: string; mustRefuse?: false }> {
  const auth = `Authorization: Bearer ${token}\r\n`;
  const post = (extraHead: string, body: string): string => `POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${auth}Content-Type: application/json\r\n${extraHead}\r\n${body}`;
  const spec = JSON.stringify(validSpec('fz-framing'));
  return fc.oneof(
    // Content-Length shorter than the body: the server reads a truncated spec, then garbage as the next request.
    fc.integer({ min: 0, max: spec.length - 1 }).map((n) => ({ bytes: Buffer.from(post(`Content-Length: ${n}\r\n`, spec)), label: 'content-length short' })),
    // Content-Length longer than the body, then the client stops sending.
    fc.integer({ min: 1, max: 5000 }).map((extra) => ({ bytes: Buffer.from(post(`Content-Length: ${spec.length + extra}\r\n`, spec)), endAfterMs: 30, label: 'content-length long' })),
    fc.constantFrom('abc', '-1', '1, 2', '0x10', '1e3', ' ', '99999999999999999999', '+5').map((v) => ({ bytes: Buffer.from(post(`Content-Length: ${v}\r\n`, spec)), label: 'content-length invalid' })),
    fc.constant({ bytes: Buffer.from(post(`Content-Length: ${spec.length}\r\nContent-Length: ${spec.length + 1}\r\n`, spec)), label: 'content-length twice' }),
    fc.constant({ bytes: Buffer.from(post(`Content-Length: ${spec.length}\r\nTransfer-Encoding: chunked\r\n`, spec)), label: 'length and chunked' }),
    fc.constantFrom('zz\r\nabc\r\n0\r\n\r\n', '5\r\nabc\r\n0\r\n\r\n', '3;x\r\nabc\r\n', '-1\r\n', 'ffffffffffffffff\r\nx\r\n', '3\r\nabcde\r\n0\r\n\r\n', '3\nabc\n0\n\n')
      .map((b) => ({ bytes: Buffer.from(post('Transfer-Encoding: chunked\r\n', b)), endAfterMs: 30, label: 'bad chunks' })),
    fc.constantFrom('chunked, gzip', 'gzip', 'identity', 'x-custom', 'chunked\r\nTransfer-Encoding: chunked')
      .map((te) => ({ bytes: Buffer.from(post(`Transfer-Encoding: ${te}\r\n`, '3\r\nabc\r\n0\r\n\r\n')), endAfterMs: 30, label: 'transfer-encoding' })),
    fc.constantFrom('GET\r\n\r\n', 'GET /healthz\r\n\r\n', 'GET /healthz HTTP/9.9\r\n\r\n', 'GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n', 'get /healthz HTTP/1.1\r\n\r\n',
      'FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n', '\r\n\r\n\r\n', 'GET /healthz HTTP/1.1\r\nNoColon\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n', 'GET /healthz HTTP/1.1\r\nX: a\r\n folded\r\n\r\n', 'GET /healthz HTTP/1.1\r\nX: a\x00b\r\n\r\n', 'GET /healthz HTTP/1.1\r\n: empty\r\n\r\n',
      'GET /healthz HTTP/1.1\nHost: x\n\n', 'GET http://[::1/ HTTP/1.1\r\nHost: x\r\n\r\n', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n', 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n')
      .map((s) => ({ bytes: Buffer.from(s, 'latin1'), endAfterMs: 30, label: 'request line or header' })),
    fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => ({ bytes: Buffer.concat([Buffer.from(a), Buffer.from('\r\n\r\n')]), endAfterMs: 30, label: 'random bytes' })),
    // An upgrade nobody serves: answered as a plain request, never a dropped connection.
    fc.constantFrom('websocket', 'h2c', 'x-nope').map((p) => ({ bytes: Buffer.from(`GET /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${p}\r\n\r\n`), endAfterMs: 200, label: 'upgrade', mustRefuse: false as const })),
    fc.integer({ min: 17, max: 40 }).map((kib) => ({ bytes: Buffer.from(`GET /v1/jobs HTTP/1.1\r\nHost: x\r\n${auth}X-Big: ${'x'.repeat(kib * 1024)}\r\n\r\n`), label: 'oversized head' })),
    // Node keeps the first 2000 headers and drops the rest: answered, never a fault.
    fc.integer({ min: 2100, max: 3000 }).map((n) => ({ bytes: Buffer.from(`GET /v1/jobs HTTP/1.1\r\nHost: x\r\n${auth}${Array.from({ length: n }, (_, i) => `X-H${i}: 1\r\n`).join('')}\r\n`), label: 'many headers', mustRefuse: false as const })),
  );
}

// ---------------------------------------------------------------- gRPC

/** A gRPC call with a bad request. */
export interface GrpcInput {
  readonly method: string;
  readonly request: Record<string, unknown>;
  readonly mustRefuse: boolean;
}

/** Structure-aware bad gRPC requests, one generator per method. */
export const grpcMessage: fc.Arbitrary<GrpcInput> = fc.oneof(
  fc.tuple(fc.oneof(badSpecText.map((s) => s.text), junkSpecText), fc.oneof(fc.constant(''), fc.string({ maxLength: 210 })))
    .map(([spec, key]) => ({ method: 'SubmitJob', request: { spec, idempotency_key: key }, mustRefuse: true })),
  fc.tuple(fc.constant(JSON.stringify(validSpec('fz-grpc-tenant'))), fc.oneof(badToken, fc.constantFrom('UPPER', '-x', 'x'.repeat(64))))
    .map(([spec, tenant]) => ({ method: 'SubmitJob', request: { spec, tenant }, mustRefuse: true })),
  fc.tuple(fc.constantFrom('GetJob', 'CancelJob', 'WatchJob'), fc.oneof(badToken, fc.string({ maxLength: 300 }), fc.stringMatching(/^job-[a-z0-9]{4,12}$/)))
    .map(([method, id]) => ({ method, request: { id }, mustRefuse: true })),
  fc.tuple(fc.constantFrom('ListJobs', 'ListVolumes'), fc.oneof(badToken, fc.constantFrom('UPPER', '-x', 'x'.repeat(64), ' ')))
    .map(([method, tenant]) => ({ method, request: { tenant }, mustRefuse: true })),
  badVolumeBody.filter((b) => ['name', 'size', 'mode', 'agent', 'near'].every((k) => b[k] === undefined || typeof b[k] === 'string') && b['constraints'] === undefined && b['labels'] === undefined && b['tenant'] === undefined
    && Object.keys(b).every((k) => VOLUME_KEYS.includes(k)) && b['containerPath'] === undefined
    // proto3 sends an empty string as "not set": an empty optional field is no mutation there.
    && ['mode', 'agent', 'near'].every((k) => b[k] !== ''))
    .map((b) => ({ method: 'ReserveVolume', request: { ...b, size: b['size'] ?? '' }, mustRefuse: true })),
  fc.tuple(fc.constantFrom('bad key', '-x', '', 'x'.repeat(64)), fc.string({ maxLength: 8 }))
    .map(([k, v]) => ({ method: 'ReserveVolume', request: { name: 'fzvol-labels', size: '64MiB', labels: { [k]: v } }, mustRefuse: true })),
  fc.tuple(fc.oneof(badToken, fc.stringMatching(/^[a-z]{3,10}$/).map((s) => `nope-${s}`)), fc.boolean())
    .map(([name, force]) => ({ method: 'DeleteVolume', request: { name, force }, mustRefuse: true })),
);

/** Methods of locus.v1.Locus. */
export const GRPC_METHODS = ['SubmitJob', 'GetJob', 'ListJobs', 'CancelJob', 'WatchJob', 'ReserveVolume', 'ListVolumes', 'DeleteVolume'] as const;

/** Bad `authorization` metadata values (undefined: none at all). */
export const grpcBadAuth: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom('', 'Bearer', 'Bearer ', 'Basic YTpi', 'bearer x y', 'Bearer ' + 'x'.repeat(5000), 'Token x'),
  fc.string({ minLength: 1, maxLength: 64 }).filter((s) => /^[\x20-\x7e]+$/.test(s)).map((t) => `Bearer ${t}`),
);

// ---------------------------------------------------------------- CLI

/** A CLI argument vector and what its refusal must name. */
export interface CliInput {
  readonly args: readonly string[];
  /** A text the error message must contain (the flag or field at fault). */
  readonly names: string;
  /** `usage`: exit 2; `server`: exit 1 with `locus: <CATALOG CODE>:` (the server refused it). */
  readonly kind: 'usage' | 'server';
  /** Written to a file whose path replaces `{file}` in args. */
  readonly file?: string;
}

const COMMANDS = ['agent', 'cancel', 'data', 'demo', 'doctor', 'exec', 'executor', 'explain', 'framework', 'job', 'jobs', 'local', 'locate', 'logs', 'mesos', 'submit', 'up', 'volumes'];

/** Integer flags whose values are checked before the command does anything. */
const INT_FLAGS: readonly (readonly [string, string, number])[] = [
  ['up', 'http-port', 0], ['up', 'grpc-port', 0], ['up', 'agents', 1], ['up', 'racks', 1], ['up', 'master-port', 0],
  ['demo', 'agents', 1], ['demo', 'files', 1], ['local', 'agents', 0], ['local', 'racks', 1], ['local', 'port', 0],
  ['logs', 'tail', 0], ['logs', 'attempt', 1],
];
/** Choice flags and their command. */
const CHOICE_FLAGS: readonly (readonly [string, string, readonly string[]])[] = [
  ['up', 'isolation', []], ['up', 'log-format', []], ['local', 'isolation', []], ['exec', 'isolation', ['--', 'true']], ['exec', 'network', ['--', 'true']],
  ['locate', 'splits', ['local://x/']],
];

/** Bad command lines. Client commands get `--server`/`--token` from the caller (appended by the test). */
export const cliInput: fc.Arbitrary<CliInput> = fc.oneof(
  fc.stringMatching(/^[a-z][a-z-]{0,12}$/).filter((c) => !COMMANDS.includes(c) && !['help', 'version'].includes(c))
    .map((c) => ({ args: [c], names: `'${c}'`, kind: 'usage' as const })),
  fc.tuple(fc.constantFrom(...COMMANDS), fc.stringMatching(/^[a-z]{2,10}$/))
    .map(([c, f]) => ({ args: [c, `--zz-${f}`], names: `--zz-${f}`, kind: 'usage' as const })),
  fc.tuple(fc.constantFrom('job', 'jobs', 'cancel', 'explain', 'logs', 'submit'), fc.constantFrom('server', 'token', 'tenant'))
    .map(([c, f]) => ({ args: [c, `--${f}`], names: `--${f}`, kind: 'usage' as const })),
  fc.tuple(fc.constantFrom(...INT_FLAGS), fc.oneof(fc.constantFrom('abc', '-5', '1.5', '', '1e3x', '0x', ' ', 'NaN', '99999999999999999999999'), badToken))
    .filter(([[, , min], v]) => !(Number.isInteger(Number(v)) && Number(v) >= min && v.trim() !== ''))
    .map(([[c, f], v]) => ({ args: [c, `--${f}`, v, ...(c === 'logs' ? ['job-x.main.0'] : [])], names: `--${f}`, kind: 'usage' as const })),
  fc.tuple(fc.constantFrom(...CHOICE_FLAGS), fc.oneof(badToken, fc.constantFrom('zz', 'AUTO', 'none ')))
    .map(([[c, f, rest], v]) => ({ args: [c, `--${f}`, v, ...rest], names: `--${f}`, kind: 'usage' as const })),
  fc.constantFrom<CliInput>(
    { args: ['job'], names: 'ID is required', kind: 'usage' },
    { args: ['job', 'a', 'b'], names: 'unexpected arguments', kind: 'usage' },
    { args: ['jobs', 'extra'], names: 'unexpected arguments', kind: 'usage' },
    { args: ['submit'], names: 'FILE', kind: 'usage' },
    { args: ['submit', '/nonexistent/locus-fuzz.yaml'], names: '/nonexistent/locus-fuzz.yaml', kind: 'usage' },
    { args: ['logs', '--json', 'job-x.main.0'], names: '--json', kind: 'usage' },
    { args: ['data', 'get', 'a', 'b'], names: "'get'", kind: 'usage' },
    { args: ['data', 'put', 'a', 'http://x/'], names: 'local://', kind: 'usage' },
    { args: ['exec'], names: 'command', kind: 'usage' },
    { args: ['mesos', 'nope', '--master', 'http://127.0.0.1:1'], names: "'nope'", kind: 'usage' },
    { args: ['jobs', '--server', 'ftp://127.0.0.1:1'], names: 'server', kind: 'usage' },
    { args: ['job', 'x', '--server', 'not a url'], names: 'server', kind: 'usage' },
  ),
  fc.oneof(fc.stringMatching(/^[a-z0-9]{4,12}$/).map((s) => `nope-${s}`), fc.constantFrom('job-x', 'nope'))
    .chain((id) => fc.constantFrom('job', 'cancel', 'explain').map((c): CliInput => (c === 'explain'
      // None of these ids is a task id, which explain says before asking the server.
      ? { args: [c, id], names: 'is not a task id', kind: 'usage' }
      : { args: [c, id], names: 'NOT_FOUND', kind: 'server' }))),
  badSpecText.map((s): CliInput => ({ args: ['submit', '{file}'], names: 'INVALID', kind: 'server', file: s.text })),
// An argument vector cannot carry a NUL byte (the kernel's strings end there): not an input the CLI can receive.
).filter((i) => i.args.every((a) => !a.includes('\u0000')));
