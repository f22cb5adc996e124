import { describe, expect, it } from 'vitest';
import { effectiveLocality, parseJobSpecText, validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { LocusError } from '../../src/core/errors.js';

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof LocusError) return err.field ?? err.code;
    throw err;
  }
  return undefined;
}

describe('job spec', () => {
  it('normalises a single-stage spec with defaults', () => {
    const spec = validateJobSpec({
      name: 'wc', inputs: ['local://words/'], task: { command: ['wc', '-l', '{split.path}'], resources: { mem: '512MiB' } },
    });
    expect(spec.stages).toHaveLength(1);
    expect(spec.stages[0]?.name).toBe('main');
    expect(spec.stages[0]?.split).toBe('block');
    expect(spec.stages[0]?.task.resources).toEqual({ cpus: 0.5, mem: 512, disk: 256 });
    expect(spec.retries).toBe(3);
    // Silent on locality: nothing is filled in, so the framework's waits apply.
    expect(spec.locality).toBeUndefined();
    expect(effectiveLocality(spec.locality, { mode: 'wait', nodeWaitMs: 7000, rackWaitMs: 9000 })).toBeUndefined();
  });

  it('lets a job override one locality wait and inherit the other from the framework', () => {
    const framework = { mode: 'wait', nodeWaitMs: 7000, rackWaitMs: 9000 } as const;
    const base = { name: 'wc', inputs: ['local://words/'], task: { command: ['true'] } };
    const nodeOnly = validateJobSpec({ ...base, locality: { wait: { node: '1s' } } });
    expect(nodeOnly.locality).toEqual({ mode: 'wait', nodeWaitMs: 1000 });
    expect(effectiveLocality(nodeOnly.locality, framework)).toEqual({ mode: 'wait', nodeWaitMs: 1000, rackWaitMs: 9000 });
    const both = validateJobSpec({ ...base, locality: { wait: '2s' } });
    expect(effectiveLocality(both.locality, framework)).toEqual({ mode: 'wait', nodeWaitMs: 2000, rackWaitMs: 2000 });
    expect(effectiveLocality(validateJobSpec({ ...base, locality: 'node-only' }).locality, framework)).toEqual({ mode: 'node-only' });
  });

  it("accepts locality 'off' (place blindly): nothing to wait for", () => {
    const framework = { mode: 'wait', nodeWaitMs: 7000, rackWaitMs: 9000 } as const;
    const off = validateJobSpec({ name: 'wc', inputs: ['local://words/'], task: { command: ['true'] }, locality: 'off' });
    expect(off.locality).toEqual({ mode: 'off' });
    expect(effectiveLocality(off.locality, framework)).toEqual({ mode: 'wait', nodeWaitMs: 0, rackWaitMs: 0 });
    expect(() => validateJobSpec({ name: 'wc', inputs: ['local://words/'], task: { command: ['true'] }, locality: 'blind' })).toThrow(/node-only', 'off'/);
  });

  it('parses the multi-stage YAML form with stage inputs', () => {
    const spec = parseJobSpecText(`
name: wordcount
locality: { wait: { node: 2s, rack: 500ms } }
stages:
  - name: map
    inputs: [local://words/]
    task: { command: [sh, -c, "wc -w {split.path} > {output}/count"] }
  - name: reduce
    inputs: [stage:map]
    split: file
    tasks: [ { command: [cat, "{stages.map.output}"] } ]
    task: { command: [true], resources: { cpus: 1, mem: 1GiB, disk: 10 } }
`);
    expect(spec.stages.map((s) => s.name)).toEqual(['map', 'reduce']);
    expect(spec.locality).toEqual({ mode: 'wait', nodeWaitMs: 2000, rackWaitMs: 500 });
    expect(spec.stages[1]?.tasks?.[0]?.command).toEqual(['cat', '{stages.map.output}']);
    expect(spec.stages[1]?.task.resources.mem).toBe(1024);
  });

  it('says where a YAML error is, and what it is in the spec\'s words', () => {
    expect(() => parseJobSpecText('name: a\ntask: { command: [x] }\nname: b\n')).toThrow(/line 3, column 1: the key 'name' appears twice in one map/);
    expect(() => parseJobSpecText('name: a\n---\nname: b\n')).toThrow(/a job spec is one YAML document; this text has more/);
    expect(() => parseJobSpecText('name: a\n---\nname: b\n')).not.toThrow(/parseAllDocuments/);
    // The key as parsed, wherever and however it is written.
    expect(() => parseJobSpecText('name: a\nlabels: {a: x, a: y}\n')).toThrow(/line 2, column \d+: the key 'a' appears twice/);
    expect(() => parseJobSpecText('name: a\nlabels:\n  "a:b": x\n  "a:b": y\n')).toThrow(/line 4, column 3: the key 'a:b' appears twice/);
  });

  it('keeps the words of a YAML command and env as written, numbers and booleans too', () => {
    const spec = parseJobSpecText(`
name: words
retries: 2
task:
  command: [sh, -c, 'echo "$0 $1 $2 $3"', 0x1F, 1e3, 3.10, yes, true]
  env: { PYVER: 3.10, BUILD: 1_000, DEBUG: false, PORT: 8080 }
  resources: { cpus: 0.50 }
tasks:
  - { command: [python3.10, 007] }
`);
    expect(spec.stages[0]?.task.command).toEqual(['sh', '-c', 'echo "$0 $1 $2 $3"', '0x1F', '1e3', '3.10', 'yes', 'true']);
    expect(spec.stages[0]?.task.env).toEqual({ PYVER: '3.10', BUILD: '1_000', DEBUG: 'false', PORT: '8080' });
    expect(spec.stages[0]?.tasks?.[0]?.command).toEqual(['python3.10', '007']);
    // Numbers elsewhere stay numbers.
    expect(spec.retries).toBe(2);
    expect(spec.stages[0]?.task.resources.cpus).toBe(0.5);
    // An anchored value stays as YAML reads it, for the aliases that use it as a number.
    const anchored = parseJobSpecText('name: a\ntasks: [{}]\ntask: { command: [sleep, &n 3] }\nretries: *n\n');
    expect(anchored.retries).toBe(3);
    expect(anchored.stages[0]?.task.command).toEqual(['sleep', '3']);
    // An env variable named __proto__ would vanish: refused, naming it.
    expect(() => parseJobSpecText('name: p\ntasks: [{}]\ntask: { command: [env], env: { __proto__: x } }\n')).toThrow(/task\.env\.__proto__/);
  });

  it.each([
    ['{Output}/part', 'unknown placeholder {Output} (did you mean {output}?'],
    ['echo {foo}', 'unknown placeholder {foo}; the placeholders are {split.uri}'],
    ['{Split.Path}', 'did you mean {split.path}?'],
    ['{job_id}', 'For the text {job_id} itself write {{job_id}}'],
  ])('refuses the unknown placeholder in %j, naming it and the known ones', (arg, message) => {
    const run = (): unknown => validateJobSpec({ name: 'p', tasks: [{}], task: { command: ['sh', '-c', arg] } });
    expect(fieldOf(run)).toBe('task.command[2]');
    expect(run).toThrow(message);
    // In an explicit task's own command too.
    expect(fieldOf(() => validateJobSpec({ name: 'p', tasks: [{ command: ['x', arg] }], task: { command: ['true'] } }))).toBe('tasks[0].command[1]');
  });

  it.each([
    ['awk', '{ print $1 }'],
    ['awk', '{{print}}'],
    ['sh', '-c', 'for f in *; do echo ${f} ${HOME}; done'],
    ['find', '.', '-exec', 'cat', '{}', '+'],
    ['echo', '{a,b}', '{1..3}', '{}', '{ }', '{{.Name}}'],
    ['sh', '-c', 'cat {split.path} > {output}/x; echo ${task.index}'],
  ])('passes a command whose braces are not placeholders: %j', (...argv) => {
    expect(validateJobSpec({ name: 'p', tasks: [{}], task: { command: argv } }).stages[0]?.task.command).toEqual(argv);
  });

  it('reads {{output}} as text, not as the output of a stage of outputs: none', () => {
    expect(fieldOf(() => validateJobSpec({ name: 'p', tasks: [{}], outputs: 'none', task: { command: ['echo', '{{output}}'] } }))).toBeUndefined();
    expect(fieldOf(() => validateJobSpec({ name: 'p', tasks: [{}], outputs: 'none', task: { command: ['echo', '{output}'] } }))).toBe('task.command[1]');
  });

  it.each([
    ['1B', 'task.resources.mem', "'1B' is less than 0.01 MiB: Mesos counts mem and disk in whole MiB, so a size is 0 or at least 1MiB"],
    ['512KiB', 'task.resources.mem', "'512KiB' is 0.5 MiB"],
    [0.5, 'task.resources.mem', 'at least 1MiB'],
  ])('refuses a task size of %j, under 1 MiB, naming the field', (mem, field, message) => {
    const run = (): unknown => validateJobSpec({ name: 'p', tasks: [{}], task: { command: ['x'], resources: { mem } } });
    expect(fieldOf(run)).toBe(field);
    expect(run).toThrow(message);
    expect(fieldOf(() => validateJobSpec({ name: 'p', tasks: [{}], task: { command: ['x'], resources: { disk: mem } } }))).toBe('task.resources.disk');
  });

  it('takes sizes in any unit, rounding one between whole MiB up', () => {
    const r = validateJobSpec({ name: 'p', tasks: [{}], task: { command: ['x'], resources: { mem: '1.5GiB', disk: '2048KiB' } } }).stages[0]?.task.resources;
    expect(r).toMatchObject({ mem: 1536, disk: 2 });
    // 1GB is 953.67 MiB, 2.5MiB between 2 and 3; 1000MB exactly 953.67 too (not pushed to 955).
    const d = validateJobSpec({ name: 'p', tasks: [{}], task: { command: ['x'], resources: { mem: '1GB', disk: '2.5MiB' } } }).stages[0]?.task.resources;
    expect(d).toMatchObject({ mem: 954, disk: 3 });
    expect(validateJobSpec({ name: 'p', tasks: [{}], task: { command: ['x'], resources: { mem: '1000MB' } } }).stages[0]?.task.resources.mem).toBe(954);
  });

  it('takes explicit tasks without a task: template, and needs a command only where a task has none', () => {
    // "tasks: explicit tasks instead of one per split": a user writes just that, and it was
    // refused with "task: is required" (the docs' examples carried a `command: [true]` never run).
    const st = parseJobSpecText('name: two\ntasks:\n  - command: [echo, a]\n  - command: [echo, b]\n    env: {X: y}\n').stages[0];
    expect(st?.tasks?.map((t) => t.command)).toEqual([['echo', 'a'], ['echo', 'b']]);
    expect(st?.tasks?.[1]?.env).toEqual({ X: 'y' });
    expect(st?.task.resources).toEqual({ cpus: 0.5, mem: 256, disk: 256 });
    // A template of resources alone, as a reduce stage writes it.
    const reduce = validateJobSpec({ name: 'r', tasks: [{ command: ['sort'] }], task: { resources: { mem: '1GiB' } } }).stages[0];
    expect(reduce?.task.resources.mem).toBe(1024);
    expect(reduce?.tasks?.[0]?.command).toEqual(['sort']);
    // A task that gives no command, with no template's to take, is refused, naming it.
    expect(fieldOf(() => validateJobSpec({ name: 'r', tasks: [{ command: ['a'] }, {}] }))).toBe('tasks[1].command');
    expect(fieldOf(() => validateJobSpec({ name: 'r', tasks: [{}], task: { resources: { cpus: 1 } } }))).toBe('tasks[0].command');
    expect(() => validateJobSpec({ name: 'r', tasks: [{}] })).toThrow(/tasks\[0\]\.command: is required: give this task its command, or the stage a task\.command/);
    // Without explicit tasks the template and its command stay required, and the message says what goes there.
    expect(() => validateJobSpec({ name: 'r', inputs: ['local://x/'] })).toThrow(/^task: is required: the command each task runs/);
    expect(fieldOf(() => validateJobSpec({ name: 'r', inputs: ['local://x/'], task: { resources: { cpus: 1 } } }))).toBe('task.command');
  });

  it('suggests the field a misspelt one was meant to be, and lists each allowed field once', () => {
    const err = (() => {
      try {
        parseJobSpecText('name: t\ntasks: [{command: [x]}]\nretires: 2\n');
      } catch (e) {
        return e as LocusError;
      }
      return undefined;
    })();
    expect(err?.field).toBe('retires');
    expect(err?.message).toContain("unknown field (did you mean 'retries'?)");
    expect(err?.message.match(/\bname\b/g)).toHaveLength(1);
    expect(() => parseJobSpecText('name: t\ntask: {comand: [x]}\ntasks: [{}]\n')).toThrow(/task\.comand: unknown field \(did you mean 'command'\?\); the fields here are command, resources, env, volumes/);
    // Nothing close: no guess.
    expect(() => parseJobSpecText('name: t\ntasks: [{command: [x]}]\ncolour: red\n')).toThrow(/colour: unknown field; the fields here are/);
  });

  it('refuses a __proto__ key anywhere in a spec text, naming it, instead of dropping its entry', () => {
    // JSON text is what gRPC SubmitJob sends; YAML what `locus submit` reads. Both once kept
    // the label's key out of sight: the label was lost and the job created without it.
    expect(fieldOf(() => parseJobSpecText('{"name":"p","tasks":[{}],"task":{"command":["x"]},"labels":{"__proto__":"x","team":"a"}}'))).toBe('labels.__proto__');
    expect(fieldOf(() => parseJobSpecText('name: p\ntasks: [{}]\ntask: {command: [x]}\nlabels: {team: a, __proto__: x}\n'))).toBe('labels.__proto__');
    expect(fieldOf(() => parseJobSpecText('name: p\nstages: [{name: a, tasks: [{env: {__proto__: x}}], task: {command: [x]}}]\n'))).toBe('stages[0].tasks[0].env.__proto__');
    // `constructor` is an ordinary key: an unknown field where no field has that name.
    expect(fieldOf(() => parseJobSpecText('{"name":"p","tasks":[{}],"task":{"command":["x"]},"constructor":{"prototype":{"x":1}}}'))).toBe('constructor');
  });

  it.each([
    [{ inputs: ['local://x'], task: { command: ['a'] } }, 'name'],
    [{ name: 'bad name!', inputs: ['local://x'], task: { command: ['a'] } }, 'name'],
    [{ name: 'a', inputs: ['not a uri'], task: { command: ['a'] } }, 'inputs[0]'],
    [{ name: 'a', inputs: ['local://x'], task: { command: [] } }, 'task.command'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['{nope}'] } }, 'task.command[0]'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'], resources: { mem: '12 parsecs' } } }, 'task.resources.mem'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'], volumes: [{ name: 'v', path: 'stderr' }] } }, 'task.volumes[0].path'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'], volumes: [{ name: 'v', path: './stdout' }] } }, 'task.volumes[0].path'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'], volumes: [{ name: 'v', path: '.' }] } }, 'task.volumes[0].path'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'], resources: { cpus: -1 } } }, 'task.resources.cpus'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'], volumes: [{ name: 'v', path: '../etc' }] } }, 'task.volumes[0].path'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'] }, retries: 1.5 }, 'retries'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'] }, timeout: 'soon' }, 'timeout'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'] }, colour: 'red' }, 'colour'],
    [{ name: 'a', stages: [{ name: 'r', inputs: ['stage:m'], task: { command: ['a'] } }] }, 'stages[0].inputs[0]'],
    [{ name: 'a', task: { command: ['a'] } }, 'inputs'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'] }, constraints: [{ colour: 'x' }] }, 'constraints[0]'],
  ])('rejects %j naming %s', (raw, field) => {
    expect(fieldOf(() => validateJobSpec(raw))).toBe(field);
  });

  it("accepts outputs: none, and 'committed' as the default written out", () => {
    const none = validateJobSpec({ name: 'load', tasks: [{ command: ['load-db', '{task.index}'] }], task: { command: ['x'] }, outputs: 'none' });
    expect(none.stages[0]?.outputs).toBe('none');
    // The default leaves the stage as every stored spec has it (no field), so old records read alike.
    const committed = validateJobSpec({ name: 'wc', inputs: ['local://x'], task: { command: ['wc', '{output}'] }, outputs: 'committed' });
    expect(committed.stages[0]).not.toHaveProperty('outputs');
    const staged = validateJobSpec({
      name: 'two',
      stages: [
        { name: 'notify', tasks: [{ command: ['curl', 'http://svc/{task.index}'] }], task: { command: ['x'] }, outputs: 'none' },
        { name: 'sum', inputs: ['local://x'], task: { command: ['sum', '{split.path}', '{output}'] } },
      ],
    });
    expect(staged.stages.map((x) => x.outputs)).toEqual(['none', undefined]);
  });

  it.each([
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'] }, outputs: 'some' }, 'outputs'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a', '{output}/part'] }, outputs: 'none' }, 'task.command[1]'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'], env: { OUT: '{output}' } }, outputs: 'none' }, 'task.env.OUT'],
    [{ name: 'a', tasks: [{ command: ['b'] }, { command: ['c', '{output}'] }], task: { command: ['a'] }, outputs: 'none' }, 'tasks[1].command[1]'],
    [{ name: 'a', tasks: [{ command: ['b'], env: { O: 'x{output}' } }], task: { command: ['a'] }, outputs: 'none' }, 'tasks[0].env.O'],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a'] }, outputs: 'none', output: 'results' }, 'output'],
    [{ name: 'a', stages: [{ name: 'm', inputs: ['local://x'], task: { command: ['a'] }, outputs: 'none' }, { name: 'r', inputs: ['stage:m'], task: { command: ['a'] } }] }, 'stages[1].inputs[0]'],
    [{ name: 'a', stages: [{ name: 'm', inputs: ['local://x'], task: { command: ['a'] }, outputs: 'none' }, { name: 'r', tasks: [{ command: ['cat', '{stages.m.output}'] }], task: { command: ['a'] } }] }, 'stages[1].tasks[0].command[1]'],
    [{ name: 'a', stages: [{ name: 'm', inputs: ['local://x'], task: { command: ['a'] } }], outputs: 'none' }, 'outputs'],
    // Its own stage's directory, or a later stage's: neither exists either.
    [{ name: 'a', tasks: [{ command: ['load', '{stages.main.output}'] }], task: { command: ['a'] }, outputs: 'none' }, 'tasks[0].command[1]'],
    [{ name: 'a', stages: [{ name: 'm', inputs: ['local://x'], task: { command: ['a'], env: { LATER: '{stages.r.output}' } } }, { name: 'r', inputs: ['local://x'], task: { command: ['a'] }, outputs: 'none' }] }, 'stages[0].task.env.LATER'],
  ])('refuses an output that is not there: %j naming %s', (raw, field) => {
    expect(fieldOf(() => validateJobSpec(raw))).toBe(field);
  });

  it('checks the template only where a task runs it: a command or variable every explicit task gives itself is never refused', () => {
    // Every task has its own command: the template's {output} never runs in this stage of outputs: none.
    const own = validateJobSpec({ name: 'a', tasks: [{ command: ['b'] }, { command: ['c'] }], task: { command: ['a', '{output}'] }, outputs: 'none' });
    expect(own.stages[0]?.tasks?.map((t) => t.command)).toEqual([['b'], ['c']]);
    // Not the env: K is the template's in the task.
    expect(fieldOf(() => validateJobSpec({ name: 'a', tasks: [{ command: ['b'] }], task: { command: ['a', '{output}'], env: { K: '{output}' } }, outputs: 'none' }))).toBe('task.env.K');
    // K given by every task itself: the template's K is never used.
    const envOwn = validateJobSpec({ name: 'a', tasks: [{ command: ['b'], env: { K: '1' } }, { command: ['c'], env: { K: '2' } }], task: { command: ['a', '{output}'], env: { K: '{output}' } }, outputs: 'none' });
    expect(envOwn.stages[0]?.tasks?.map((t) => t.env['K'])).toEqual(['1', '2']);
    // One task without its own command runs the template's: refused, naming the template.
    expect(fieldOf(() => validateJobSpec({ name: 'a', tasks: [{ command: ['b'] }, {}], task: { command: ['a', '{output}'] }, outputs: 'none' }))).toBe('task.command[1]');
    // A later stage's output in a template variable every task overrides.
    const later = validateJobSpec({ name: 'a', stages: [
      { name: 'm', tasks: [{ command: ['a'], env: { O: 'x' } }], task: { command: ['a'], env: { O: '{stages.r.output}' } } },
      { name: 'r', inputs: ['stage:m'], task: { command: ['a'] } },
    ] });
    expect(later.stages[0]?.tasks?.[0]?.env['O']).toBe('x');
    // An inherited name is no override: every task still runs the template's `constructor`.
    expect(fieldOf(() => validateJobSpec({ name: 'a', tasks: [{ env: { O: 'x' } }], task: { command: ['a'], env: { constructor: '{output}' } }, outputs: 'none' }))).toBe('task.env.constructor');
  });

  it.each([
    // No such stage: the argument would reach the command as the literal text.
    [{ name: 'a', stages: [{ name: 'm', inputs: ['local://x'], task: { command: ['a'] } }, { name: 'r', tasks: [{ command: ['cat', '{stages.mpa.output}'] }], task: { command: ['a'] } }] }, 'stages[1].tasks[0].command[1]', /no earlier stage is named 'mpa'.*: m\)/],
    // A later stage's output does not exist yet when this stage's tasks run.
    [{ name: 'a', stages: [{ name: 'm', inputs: ['local://x'], task: { command: ['a', '{stages.r.output}'] } }, { name: 'r', inputs: ['stage:m'], task: { command: ['a'] } }] }, 'stages[0].task.command[1]', /'r' is a later stage/],
    // Its own stage: {output} is the attempt's directory, the stage's is not there yet.
    [{ name: 'a', stages: [{ name: 'm', inputs: ['local://x'], task: { command: ['a'], env: { O: '{stages.m.output}' } } }] }, 'stages[0].task.env.O', /own output: use \{output\}/],
    [{ name: 'a', inputs: ['local://x'], task: { command: ['a', '{stages.main.output}'] } }, 'task.command[1]', /own output/],
  ])('refuses {stages.<name>.output} of a stage that is not an earlier one: %j naming %s', (raw, field, why) => {
    expect(fieldOf(() => validateJobSpec(raw))).toBe(field);
    expect(() => validateJobSpec(raw)).toThrow(why);
  });

  it('refuses a YAML alias bomb and oversized bodies', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 9; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill('*' + String.fromCharCode(97 + i)).join(',')}]`);
    expect(() => parseJobSpecText(bomb.join('\n'))).toThrow(/YAML/);
    expect(fieldOf(() => parseJobSpecText('x'.repeat(2 * 1024 * 1024)))).toBe('TOO_LARGE');
  });

  it('reports malformed JSON as INVALID_BODY', () => {
    expect(fieldOf(() => parseJobSpecText('{"name": ', 'application/json'))).toBe('INVALID_BODY');
  });
});
