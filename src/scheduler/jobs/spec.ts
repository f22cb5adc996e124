/**
 * The job spec: what a data engineer submits (JSON or YAML), validated into a
 * normalised form with errors that name the field. Documented in
 * docs/job-spec.md; examples/wordcount.yaml is a complete example.
 */
import { Lexer, isPair, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { LocusError, invalidField } from '../../core/errors.js';
import { isObject, refuseProtoKey, type JsonObject } from '../../core/decode.js';
import { parseDurationMs, parseWholeMiB } from '../../core/units.js';
import { placeholderTokens } from '../../core/placeholders.js';
import { closest } from '../../core/suggest.js';
import type { SplitMode } from '../../core/blocks.js';
import type { Constraint, LocalityPolicy } from '../placement/types.js';
import { checkNotSandboxEntry } from '../../volumes/model.js';

/** Largest spec body accepted, in bytes (YAML or JSON). */
export const MAX_SPEC_BYTES = 1024 * 1024;
/** Alias expansions allowed in YAML; a small number defeats alias bombs. */
const MAX_YAML_ALIASES = 100;
/**
 * Deepest flow nesting (`[`, `{`) and widest indentation a YAML spec may have.
 * A real spec nests under ten levels. The YAML composer recurses once per
 * level: a 10 KB body of brackets overflows the stack, and after a few such
 * requests V8 aborts the whole process (a fatal RegExpCompiler out-of-memory
 * while compiling deep in the exhausted stack), so depth is refused before
 * composing, by the lexer, which does not recurse.
 */
const MAX_YAML_FLOW_DEPTH = 64;
const MAX_YAML_INDENT = 200;

/** Per-task resources (cpus in cores, mem/disk in MiB). */
export interface TaskResources {
  readonly cpus: number;
  readonly mem: number;
  readonly disk: number;
}

/** A volume a task mounts, by volume name. */
export interface TaskVolumeRef {
  readonly name: string;
  readonly path: string;
  readonly mode: 'RW' | 'RO';
}

/** The template every task of a stage is made from. */
export interface TaskTemplate {
  readonly command: readonly string[];
  readonly resources: TaskResources;
  readonly env: Readonly<Record<string, string>>;
  readonly volumes: readonly TaskVolumeRef[];
}

// Constraints and locality policies are placement's own types: a spec hands them to placement unchanged.
export type { Constraint, LocalityPolicy } from '../placement/types.js';

/** One group of tasks; later stages start when the previous one succeeded. */
export interface StageSpec {
  readonly name: string;
  /** Input URIs, or `stage:<name>` for an earlier stage's committed outputs. */
  readonly inputs: readonly string[];
  readonly split: SplitMode;
  readonly task: TaskTemplate;
  /** Explicit tasks (instead of one per split): each overrides the template's command/env. */
  readonly tasks?: readonly { readonly command: readonly string[]; readonly env: Readonly<Record<string, string>> }[];
  /**
   * `none`: the tasks write no output (their effect is elsewhere: a database, a service); nothing
   * is staged or committed for them. Absent: each task's `{output}` is committed exactly once.
   */
  readonly outputs?: 'none';
}

/**
 * A job's locality setting as written. Whatever it leaves out is the
 * framework's (`--locality-wait-node`, `--locality-wait-rack`): a job that says
 * nothing has no setting at all, a wait map that names one level inherits the
 * other. Resolved against the framework's policy by `effectiveLocality`.
 */
export type SpecLocality =
  | { readonly mode: 'node-only' }
  /** Place blindly: the job's data hosts are not given to placement at all (for comparisons such as bench/locality.ts). */
  | { readonly mode: 'off' }
  | { readonly mode: 'wait'; readonly nodeWaitMs?: number; readonly rackWaitMs?: number };

/** A validated, normalised job spec. */
export interface JobSpec {
  readonly name: string;
  readonly priority: number;
  readonly retries: number;
  readonly timeoutMs: number;
  /** Undefined when the spec says nothing: the framework's waits apply. */
  readonly locality?: SpecLocality;
  readonly constraints: readonly Constraint[];
  /** Where committed outputs go (a directory or file:// URI); undefined = the framework's default. */
  readonly output: string | undefined;
  readonly stages: readonly StageSpec[];
  readonly labels: Readonly<Record<string, string>>;
}

/** Defaults applied where the spec is silent. */
export const SPEC_DEFAULTS = {
  priority: 0,
  retries: 3,
  timeoutMs: 60 * 60 * 1000,
  resources: { cpus: 0.5, mem: 256, disk: 256 } satisfies TaskResources,
} as const;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const KNOWN_PLACEHOLDERS = new Set(['split.uri', 'split.path', 'split.offset', 'split.length', 'task.index', 'output', 'job.id', 'attempt']);
const STAGE_OUTPUT_RE = /^stages\.[A-Za-z0-9._-]+\.output$/;
/** The placeholders as an error lists them. */
const KNOWN_LIST = ['{split.uri}', '{split.path}', '{split.offset}', '{split.length}', '{task.index}', '{output}', '{stages.<name>.output}', '{job.id}', '{attempt}'].join(', ');

const isPlaceholder = (name: string): boolean => KNOWN_PLACEHOLDERS.has(name) || STAGE_OUTPUT_RE.test(name);

/**
 * Why an argument's `{name}` is no placeholder, or undefined when each is one. Passed on as
 * written, it would reach the task as the literal text (`{Output}` for `{output}`: the task
 * writes into a directory of that name, and nothing is committed). Escaped `{{name}}` and the
 * shell's `${name}` are not placeholders (core/placeholders.ts) and pass.
 */
function unknownPlaceholder(text: string): string | undefined {
  for (const t of placeholderTokens(text)) {
    if (t.escaped || isPlaceholder(t.name) || t.dollar) continue;
    const near = [...KNOWN_PLACEHOLDERS].find((k) => k.toLowerCase() === t.name.toLowerCase());
    return `unknown placeholder {${t.name}}${near === undefined ? '' : ` (did you mean {${near}}? names are case-sensitive)`}; the placeholders are ${KNOWN_LIST}. For the text {${t.name}} itself write {{${t.name}}}`;
  }
  return undefined;
}

/** Parse a spec body: JSON when it looks like JSON or says so, YAML otherwise. */
export function parseJobSpecText(text: string, contentType?: string): JobSpec {
  if (Buffer.byteLength(text, 'utf8') > MAX_SPEC_BYTES) {
    throw new LocusError('TOO_LARGE', `job spec is larger than ${MAX_SPEC_BYTES} bytes`);
  }
  const trimmed = text.trimStart();
  let raw: unknown;
  if (contentType?.includes('json') || trimmed.startsWith('{')) {
    try {
      raw = JSON.parse(text) as unknown;
    } catch (err) {
      throw new LocusError('INVALID_BODY', `job spec is not valid JSON: ${(err as Error).message}`);
    }
  } else {
    raw = parseYamlSafely(text);
  }
  // Before validation copies the spec's maps (labels, env) and the key is lost on the way.
  refuseProtoKey(raw);
  return validateJobSpec(raw);
}

/** Parse YAML with alias expansion bounded and no custom tags. */
export function parseYamlSafely(text: string): unknown {
  checkYamlDepth(text);
  const doc = parseDocument(text, { schema: 'core', uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw new LocusError('INVALID_BODY', `job spec is not valid YAML: ${yamlErrorText(text, doc, first)}`);
  }
  keepWordsAsWritten(doc);
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
  } catch (err) {
    throw new LocusError('INVALID_BODY', `job spec YAML rejected: ${(err as Error).message}`);
  }
}

/**
 * An argument of a `command` list, or a value of an `env` map, that YAML reads as a number or a
 * boolean keeps the text it was written as: they are words. Read as numbers and turned back into
 * text, `3.10` became `3.1`, `0x1F` became `31` and `1e3` became `1000`.
 */
function keepWordsAsWritten(doc: Document): void {
  const keyIs = (node: unknown, name: string): boolean => isPair(node) && isScalar(node.key) && node.key.value === name;
  visit(doc, {
    Scalar(key, node, path) {
      if (typeof node.value !== 'number' && typeof node.value !== 'boolean') return;
      // An anchored value may be aliased where a number is meant (`retries: *n`): left as it is.
      if (node.source === undefined || node.anchor !== undefined) return;
      const parent = path[path.length - 1];
      // An item of a sequence that is the value of a `command` key.
      const inCommand = typeof key === 'number' && isSeq(parent) && keyIs(path[path.length - 2], 'command');
      // The value of a pair in a map that is the value of an `env` key.
      const inEnv = key === 'value' && isPair(parent) && keyIs(path[path.length - 3], 'env');
      if (inCommand || inEnv) node.value = node.source;
    },
  });
}

/** A YAML error as a person reads it: where it is (line, column), and what in words of the spec. */
function yamlErrorText(text: string, doc: Document, err: { readonly message: string; readonly code?: string; readonly pos?: readonly [number, number] } | undefined): string {
  if (err === undefined) return 'parse error';
  const at = err.pos?.[0];
  let where = '';
  if (at !== undefined && at >= 0 && at <= text.length) {
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    where = `line ${line}, column ${at - (before.lastIndexOf('\n') + 1) + 1}: `;
  }
  if (err.code === 'DUPLICATE_KEY') {
    // The key as parsed (quoted, with a colon, in a flow map...), found by where it starts.
    let key = '';
    visit(doc, {
      Pair(_k, pair) {
        const k = pair.key;
        if (key === '' && isScalar(k) && k.range?.[0] === at) {
          key = String(k.value).slice(0, 80);
          return visit.BREAK;
        }
        return undefined;
      },
    });
    return `${where}the key ${key === '' ? '' : `'${key}' `}appears twice in one map`;
  }
  // The library's own advice (parseAllDocuments) is not the user's to follow.
  if (err.code === 'MULTIPLE_DOCS') return `${where}a job spec is one YAML document; this text has more (a line '---' or '...' ends one)`;
  return `${where}${err.message}`;
}

/** Refuse YAML nested deeper than the composer can safely recurse (see MAX_YAML_FLOW_DEPTH). */
function checkYamlDepth(text: string): void {
  const tooDeep = (): LocusError => new LocusError('INVALID_BODY', `job spec YAML rejected: nested deeper than ${MAX_YAML_FLOW_DEPTH} levels`);
  let depth = 0;
  // Block sequences nest on one line too (`- - - x`): their indicators count like brackets.
  let lineIndicators = 0;
  let lineStart = true;
  for (const token of new Lexer().lex(text)) {
    // Tokens are source slices: brackets and indicators come alone; quoted and plain scalars whole.
    if (token === '[' || token === '{') {
      if (++depth > MAX_YAML_FLOW_DEPTH) throw tooDeep();
    } else if (token === ']' || token === '}') {
      depth = Math.max(0, depth - 1);
    } else if (token === '-' || token === '?') {
      if (++lineIndicators > MAX_YAML_FLOW_DEPTH) throw tooDeep();
    } else if (lineStart && /^ +$/.test(token) && token.length > MAX_YAML_INDENT) {
      throw new LocusError('INVALID_BODY', `job spec YAML rejected: indented more than ${MAX_YAML_INDENT} columns`);
    }
    lineStart = token === '\n' || token === '\r\n';
    if (lineStart) lineIndicators = 0;
  }
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw invalidField(field, 'must be a non-empty string');
  return v;
}

function num(v: unknown, field: string, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidField(field, 'must be a number');
  if (integer && !Number.isInteger(v)) throw invalidField(field, 'must be a whole number');
  if (v < min || v > max) throw invalidField(field, `must be between ${min} and ${max}`);
  return v;
}

function checkKeys(o: JsonObject, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) {
      // Unique names: the top level's list is the job's keys plus a stage's, both with `name`.
      const names = [...new Set(allowed)];
      const near = closest(key, names);
      throw invalidField(field ? `${field}.${key}` : key, `unknown field${near === undefined ? '' : ` (did you mean '${near}'?)`}; the fields here are ${names.join(', ')}`);
    }
  }
}

function size(v: unknown, field: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' && typeof v !== 'number') throw invalidField(field, 'must be a size such as 512MiB');
  const mib = parseWholeMiB(v, field);
  if (mib <= 0) throw invalidField(field, 'must be greater than zero');
  return mib;
}

function duration(v: unknown, field: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' && typeof v !== 'number') throw invalidField(field, 'must be a duration such as 10s');
  return parseDurationMs(v, field);
}

function command(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw invalidField(field, 'must be a non-empty list of arguments (argv)');
  return v.map((arg, i) => {
    // YAML reads a bare `true` or `1` as a boolean or number; in argv they are words.
    if (typeof arg !== 'string' && typeof arg !== 'number' && typeof arg !== 'boolean') throw invalidField(`${field}[${i}]`, 'must be a string');
    const s = String(arg);
    const unknown = unknownPlaceholder(s);
    if (unknown !== undefined) throw invalidField(`${field}[${i}]`, unknown);
    return s;
  });
}

function env(v: unknown, field: string): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v)) throw invalidField(field, 'must be a map of NAME: value');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw invalidField(`${field}.${k}`, 'is not a valid environment variable name');
    // An assignment of `__proto__` sets no property: the variable would vanish without a word.
    if (k === '__proto__') throw invalidField(`${field}.${k}`, 'is a name Locus cannot carry; choose another');
    if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean') {
      throw invalidField(`${field}.${k}`, 'must be a string');
    }
    out[k] = String(val);
  }
  return out;
}

function resources(v: unknown, field: string): TaskResources {
  if (v === undefined) return SPEC_DEFAULTS.resources;
  if (!isObject(v)) throw invalidField(field, 'must be a map with cpus, mem, disk');
  checkKeys(v, field, ['cpus', 'mem', 'disk']);
  return {
    cpus: v['cpus'] === undefined ? SPEC_DEFAULTS.resources.cpus : num(v['cpus'], `${field}.cpus`, 0.01, 1024),
    mem: size(v['mem'], `${field}.mem`, SPEC_DEFAULTS.resources.mem),
    disk: size(v['disk'], `${field}.disk`, SPEC_DEFAULTS.resources.disk),
  };
}

function volumes(v: unknown, field: string): TaskVolumeRef[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalidField(field, 'must be a list of {name, path, mode}');
  return v.map((item, i) => {
    const f = `${field}[${i}]`;
    if (!isObject(item)) throw invalidField(f, 'must be a map with name, path, mode');
    checkKeys(item, f, ['name', 'path', 'mode']);
    const name = str(item['name'], `${f}.name`);
    const path = str(item['path'], `${f}.path`);
    if (path.startsWith('/') || path.split('/').includes('..')) throw invalidField(`${f}.path`, 'must be relative to the sandbox, without ..');
    // Checked as the agent will join it onto the sandbox: `./stdout` is `stdout`, and `.` the sandbox itself.
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.length === 0) throw invalidField(`${f}.path`, 'must name a directory in the sandbox, not the sandbox itself');
    checkNotSandboxEntry(parts.join('/'), `${f}.path`);
    const mode = item['mode'] === undefined ? 'RW' : item['mode'];
    if (mode !== 'RW' && mode !== 'RO') throw invalidField(`${f}.mode`, "must be 'RW' or 'RO'");
    return { name, path, mode };
  });
}

/**
 * `commandOptional`: the stage has explicit tasks, so the template's command is only the one
 * those that give none take (checked there); left out, it is empty.
 */
function taskTemplate(v: unknown, field: string, commandOptional: boolean): TaskTemplate {
  if (!isObject(v)) throw invalidField(field, 'must be a map with command, resources, env, volumes');
  checkKeys(v, field, ['command', 'resources', 'env', 'volumes']);
  return {
    command: commandOptional && v['command'] === undefined ? [] : command(v['command'], `${field}.command`),
    resources: resources(v['resources'], `${field}.resources`),
    env: env(v['env'], `${field}.env`),
    volumes: volumes(v['volumes'], `${field}.volumes`),
  };
}

function inputs(v: unknown, field: string, earlierStages: readonly string[]): string[] {
  if (v === undefined) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw invalidField(field, 'must be a URI or a list of URIs');
  return list.map((item, i) => {
    const uri = str(item, `${field}[${i}]`);
    if (uri.startsWith('stage:')) {
      const name = uri.slice('stage:'.length);
      if (!earlierStages.includes(name)) throw invalidField(`${field}[${i}]`, `names no earlier stage '${name}'`);
      return uri;
    }
    if (!/^[a-z][a-z0-9+.-]*:\/\//.test(uri)) {
      throw invalidField(`${field}[${i}]`, `'${uri}' is not a URI (examples: local://words/, hdfs://nn:9870/data, file:///srv/data)`);
    }
    return uri;
  });
}

const STAGE_KEYS = ['name', 'inputs', 'split', 'task', 'tasks', 'outputs'] as const;

/** A stage's `outputs` as written: `committed` (the default) or `none`. */
function outputsMode(v: unknown, field: string): 'none' | undefined {
  if (v === undefined || v === 'committed') return undefined;
  if (v === 'none') return 'none';
  throw invalidField(field, "must be 'committed' (each task's {output} is committed once, the default) or 'none' (the tasks write no output)");
}

/**
 * Where a stage reads an output that is not there: `{output}` in a stage of `outputs: none`,
 * `stage:<name>` and `{stages.<name>.output}` of any stage that has none (earlier, later or
 * itself), and `{stages.<name>.output}` of a stage that is not an earlier one (no such stage,
 * this one or a later one: its output does not exist yet when the task runs, and the argument
 * would reach the command as the literal text). The field named is the first such input,
 * argument or variable.
 */
function checkOutputReferences(field: string, st: StageSpec, raw: JsonObject, noneStages: ReadonlySet<string>, earlier: readonly string[], later: readonly string[] = []): void {
  const { task, tasks } = st;
  const ownNone = st.outputs === 'none';
  st.inputs.forEach((uri, i) => {
    const ref = uri.startsWith('stage:') ? uri.slice('stage:'.length) : undefined;
    if (ref !== undefined && noneStages.has(ref)) throw invalidField(`${field}inputs[${i}]`, `stage '${ref}' writes no output (outputs: none): there is nothing to read`);
  });
  const wrong = (text: string): string | undefined => {
    for (const t of placeholderTokens(text)) {
      if (t.escaped) continue;
      const name = t.name;
      if (name === 'output' && ownNone) return "{output} names the task's output, but this stage says outputs: none";
      const ref = /^stages\.(.+)\.output$/.exec(name)?.[1];
      if (ref !== undefined && noneStages.has(ref)) return `{${name}}: stage '${ref}' writes no output (outputs: none)`;
      if (ref !== undefined && !earlier.includes(ref)) {
        if (ref === st.name) return `{${name}} is this stage's own output: use {output}`;
        if (later.includes(ref)) return `{${name}}: '${ref}' is a later stage, whose output does not exist when this stage's tasks run`;
        return `{${name}}: no earlier stage is named '${ref}' (a task reads only the outputs of stages before its own${earlier.length > 0 ? `: ${earlier.join(', ')}` : '; this stage is the first'})`;
      }
    }
    return undefined;
  };
  const check = (f: string, text: string): void => {
    const why = wrong(text);
    if (why !== undefined) throw invalidField(f, why);
  };
  // The template's command and each of its variables are checked where some task runs them: a
  // stage's explicit tasks may each give their own, and what none of them takes never reaches a
  // command (refusing it would refuse a spec that runs as written).
  const explicit = Array.isArray(raw['tasks']) ? raw['tasks'] : [];
  const ownOf = (i: number): JsonObject | undefined => {
    const own = explicit[i];
    return isObject(own) ? own : undefined;
  };
  const templateRuns = (overrides: (own: JsonObject | undefined) => boolean): boolean => tasks === undefined || tasks.some((_, i) => !overrides(ownOf(i)));
  if (templateRuns((own) => own?.['command'] !== undefined)) task.command.forEach((a, i) => check(`${field}task.command[${i}]`, a));
  for (const [k, val] of Object.entries(task.env)) {
    // Own keys only: the merge (`{ ...task.env, ...own }`) copies no inherited name (`constructor`).
    if (templateRuns((own) => isObject(own?.['env']) && Object.hasOwn(own['env'], k))) check(`${field}task.env.${k}`, val);
  }
  // Explicit tasks: only what each one says itself (the template's part was checked above).
  tasks?.forEach((t, i) => {
    const own = ownOf(i);
    if (own?.['command'] !== undefined) t.command.forEach((a, j) => check(`${field}tasks[${i}].command[${j}]`, a));
    const ownEnv = isObject(own?.['env']) ? own['env'] : {};
    for (const k of Object.keys(ownEnv)) check(`${field}tasks[${i}].env.${k}`, t.env[k] ?? '');
  });
}

function stage(v: JsonObject, field: string, defaultName: string, earlier: readonly string[]): StageSpec {
  const name = v['name'] === undefined ? defaultName : str(v['name'], `${field}name`);
  if (!NAME_RE.test(name)) throw invalidField(`${field}name`, 'must be letters, digits, ., _ or - (up to 63)');
  if (earlier.includes(name)) throw invalidField(`${field}name`, `stage name '${name}' is used twice`);
  const split = v['split'] === undefined ? 'block' : v['split'];
  if (split !== 'block' && split !== 'file') throw invalidField(`${field}split`, "must be 'block' or 'file'");
  const outputs = outputsMode(v['outputs'], `${field}outputs`);
  const ins = inputs(v['inputs'], `${field}inputs`, earlier);
  const taskField = `${field}task`;
  // With explicit tasks, `task:` is optional and so is its command: it only holds what the
  // tasks share (resources, env, volumes, a command for those that give none). A spec of
  // `tasks:` alone, each with its command, was refused with "task: is required", which the
  // docs' "explicit tasks instead of one per split" does not lead anyone to expect.
  const explicit = v['tasks'] !== undefined;
  if (v['task'] === undefined && !explicit) {
    throw invalidField(taskField, 'is required: the command each task runs (task: {command: [...]}), or an explicit tasks: list');
  }
  const task: TaskTemplate = v['task'] === undefined ? { command: [], resources: SPEC_DEFAULTS.resources, env: {}, volumes: [] } : taskTemplate(v['task'], taskField, explicit);
  let tasks: StageSpec['tasks'];
  if (explicit) {
    if (!Array.isArray(v['tasks']) || v['tasks'].length === 0) throw invalidField(`${field}tasks`, 'must be a non-empty list');
    tasks = v['tasks'].map((t, i) => {
      const f = `${field}tasks[${i}]`;
      if (!isObject(t)) throw invalidField(f, 'must be a map with command and env');
      checkKeys(t, f, ['command', 'env']);
      if (t['command'] === undefined && task.command.length === 0) {
        throw invalidField(`${f}.command`, `is required: give this task its command, or the stage a ${taskField}.command for the tasks that give none`);
      }
      return {
        command: t['command'] === undefined ? task.command : command(t['command'], `${f}.command`),
        env: { ...task.env, ...env(t['env'], `${f}.env`) },
      };
    });
  }
  if (ins.length === 0 && tasks === undefined) {
    throw invalidField(`${field}inputs`, 'a stage needs inputs (one task per split) or an explicit tasks list');
  }
  return { name, inputs: ins, split, task, ...(tasks ? { tasks } : {}), ...(outputs === undefined ? {} : { outputs }) };
}

function constraints(v: unknown, field: string): Constraint[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalidField(field, 'must be a list');
  return v.map((c, i) => {
    const f = `${field}[${i}]`;
    if (!isObject(c)) throw invalidField(f, 'must be a map such as {attribute: rack, equals: r1}');
    if (c['attribute'] !== undefined) {
      checkKeys(c, f, ['attribute', 'equals']);
      return { kind: 'attribute', attribute: str(c['attribute'], `${f}.attribute`), equals: str(c['equals'], `${f}.equals`) };
    }
    if (c['hostname'] !== undefined) {
      checkKeys(c, f, ['hostname']);
      return { kind: 'hostname', equals: str(c['hostname'], `${f}.hostname`) };
    }
    if (c['notHostnames'] !== undefined) {
      checkKeys(c, f, ['notHostnames']);
      const list = c['notHostnames'];
      if (!Array.isArray(list)) throw invalidField(`${f}.notHostnames`, 'must be a list of hostnames');
      return { kind: 'hostname-not', values: list.map((h, j) => str(h, `${f}.notHostnames[${j}]`)) };
    }
    throw invalidField(f, 'must have attribute+equals, hostname, or notHostnames');
  });
}

function locality(v: unknown, field: string): SpecLocality | undefined {
  // Nothing is filled in here: what the spec leaves out is the framework's to decide.
  if (v === undefined) return undefined;
  if (v === 'node-only') return { mode: 'node-only' };
  if (v === 'off') return { mode: 'off' };
  if (!isObject(v)) throw invalidField(field, "must be 'node-only', 'off' or {wait: {node: 3s, rack: 3s}}");
  checkKeys(v, field, ['wait']);
  const wait = v['wait'];
  if (wait === undefined) return { mode: 'wait' };
  if (typeof wait === 'string' || typeof wait === 'number') {
    const ms = parseDurationMs(wait, `${field}.wait`);
    return { mode: 'wait', nodeWaitMs: ms, rackWaitMs: ms };
  }
  if (!isObject(wait)) throw invalidField(`${field}.wait`, 'must be a duration or {node, rack}');
  checkKeys(wait, `${field}.wait`, ['node', 'rack']);
  const node = optionalDuration(wait['node'], `${field}.wait.node`);
  const rack = optionalDuration(wait['rack'], `${field}.wait.rack`);
  return { mode: 'wait', ...(node === undefined ? {} : { nodeWaitMs: node }), ...(rack === undefined ? {} : { rackWaitMs: rack }) };
}

function optionalDuration(v: unknown, field: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw invalidField(field, 'must be a duration such as 10s');
  return parseDurationMs(v, field);
}

/**
 * The policy placement applies to a job's tasks: undefined when the spec says
 * nothing (placement then uses the framework's own default), else the spec's
 * setting with every level it leaves out taken from the framework's policy.
 */
export function effectiveLocality(spec: SpecLocality | undefined, framework: LocalityPolicy): LocalityPolicy | undefined {
  if (spec === undefined) return undefined;
  if (spec.mode === 'node-only') return spec;
  // Off: tasks carry no data hosts (see JobService.addPending), so there is nothing to wait for.
  if (spec.mode === 'off') return { mode: 'wait', nodeWaitMs: 0, rackWaitMs: 0 };
  const base = framework.mode === 'wait' ? framework : { nodeWaitMs: 0, rackWaitMs: 0 };
  return { mode: 'wait', nodeWaitMs: spec.nodeWaitMs ?? base.nodeWaitMs, rackWaitMs: spec.rackWaitMs ?? base.rackWaitMs };
}

const TOP_KEYS = ['name', 'priority', 'retries', 'timeout', 'locality', 'constraints', 'output', 'stages', 'labels', ...STAGE_KEYS];

/** Validate a decoded spec (from JSON, YAML or gRPC) into a JobSpec. */
export function validateJobSpec(raw: unknown): JobSpec {
  if (!isObject(raw)) throw new LocusError('INVALID_BODY', 'a job spec must be a map (JSON object or YAML mapping)');
  checkKeys(raw, '', TOP_KEYS);
  const name = str(raw['name'], 'name');
  if (!NAME_RE.test(name)) throw invalidField('name', 'must be letters, digits, ., _ or - (up to 63), starting with a letter or digit');
  const stages: StageSpec[] = [];
  if (raw['stages'] !== undefined) {
    for (const key of STAGE_KEYS) {
      if (key !== 'name' && raw[key] !== undefined) throw invalidField(key, "goes inside each stage when 'stages' is used");
    }
    const list = raw['stages'];
    if (!Array.isArray(list) || list.length === 0) throw invalidField('stages', 'must be a non-empty list');
    if (list.length > 16) throw invalidField('stages', 'at most 16 stages');
    list.forEach((s, i) => {
      if (!isObject(s)) throw invalidField(`stages[${i}]`, 'must be a map');
      checkKeys(s, `stages[${i}]`, STAGE_KEYS);
      stages.push(stage(s, `stages[${i}].`, `stage-${i}`, stages.map((x) => x.name)));
    });
    const none = new Set(stages.filter((x) => x.outputs === 'none').map((x) => x.name));
    stages.forEach((st, i) => checkOutputReferences(`stages[${i}].`, st, list[i] as JsonObject, none, stages.slice(0, i).map((x) => x.name), stages.slice(i + 1).map((x) => x.name)));
  } else {
    const { name: _jobName, ...single } = raw;
    const st = stage(single, '', 'main', []);
    stages.push(st);
    checkOutputReferences('', st, single, new Set(st.outputs === 'none' ? [st.name] : []), []);
  }
  const labels: Record<string, string> = {};
  if (raw['labels'] !== undefined) {
    if (!isObject(raw['labels'])) throw invalidField('labels', 'must be a map of strings');
    for (const [k, v] of Object.entries(raw['labels'])) labels[k] = str(v, `labels.${k}`);
  }
  const output = raw['output'] === undefined ? undefined : str(raw['output'], 'output');
  const last = stages[stages.length - 1];
  if (output !== undefined && last?.outputs === 'none') {
    throw invalidField('output', `the last stage ('${last.name}') says outputs: none: there is no output to put at '${output}'`);
  }
  return {
    name,
    priority: raw['priority'] === undefined ? SPEC_DEFAULTS.priority : num(raw['priority'], 'priority', -1000, 1000, true),
    retries: raw['retries'] === undefined ? SPEC_DEFAULTS.retries : num(raw['retries'], 'retries', 0, 100, true),
    timeoutMs: duration(raw['timeout'], 'timeout', SPEC_DEFAULTS.timeoutMs),
    ...(raw['locality'] === undefined ? {} : { locality: locality(raw['locality'], 'locality') }),
    constraints: constraints(raw['constraints'], 'constraints'),
    output,
    stages,
    labels,
  };
}
