#!/usr/bin/env node
// Enforces the dependency rules of ARCHITECTURE.md over src/: which layer may
// import which, that placement/ stays pure, and that there are no import
// cycles. Exits 1 with one line per violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const src = join(root, 'src');

// layer → the layers it may import (its own layer is always allowed).
// `node` means node:* built-ins, `npm` any package.
const RULES = {
  core: ['node:crypto'],
  obs: ['core', 'node', 'npm'],
  mesos: ['core', 'obs', 'node', 'npm'],
  'scheduler/placement': ['core'],
  scheduler: ['core', 'obs', 'mesos', 'storage', 'volumes', 'executor/contract', 'scheduler/placement', 'node', 'npm'],
  storage: ['core', 'obs', 'node', 'npm'],
  volumes: ['core', 'obs', 'mesos', 'storage', 'node', 'npm'],
  'executor/isolation': ['core', 'obs', 'node', 'npm'],
  'executor/contract': ['core'],
  executor: ['core', 'obs', 'mesos', 'storage', 'executor/isolation', 'executor/contract', 'node', 'npm'],
  local: ['core', 'obs', 'mesos', 'executor/isolation', 'storage', 'node', 'npm'],
  api: ['core', 'obs', 'scheduler', 'volumes', 'storage', 'mesos', 'node', 'npm'],
  app: ['core', 'obs', 'mesos', 'scheduler', 'scheduler/placement', 'storage', 'volumes', 'executor', 'executor/isolation', 'executor/contract', 'local', 'api', 'node', 'npm'],
  cli: ['*'],
};
// Layers are matched longest first so scheduler/placement wins over scheduler.
const LAYERS = Object.keys(RULES).sort((a, b) => b.length - a.length);

function layerOf(file) {
  const rel = relative(src, file).replace(/\\/g, '/');
  for (const layer of LAYERS) {
    if (rel === layer || rel.startsWith(layer + '/') || rel.startsWith(layer + '.')) return layer;
  }
  return rel.split('/')[0];
}

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

const files = walk(src);
const graph = new Map();
const violations = [];

for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const from = layerOf(file);
  const allowed = RULES[from];
  const edges = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const typeOnly = Boolean(m[1]);
    const spec = m[2] ?? m[3];
    if (!spec) continue;
    let target;
    if (spec.startsWith('.')) {
      const resolved = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      target = layerOf(resolved);
      if (!typeOnly) edges.push(resolved);
    } else if (spec.startsWith('node:')) {
      target = allowed?.includes(spec) ? spec : 'node';
    } else {
      target = 'npm';
    }
    if (!allowed) {
      violations.push(`${relative(root, file)}: layer '${from}' has no dependency rule in scripts/lint-deps.mjs`);
      break;
    }
    if (target === from || allowed.includes('*') || allowed.includes(target)) continue;
    // A sub-layer may use its parent (executor/isolation → executor is not allowed, but executor → executor/x is).
    violations.push(`${relative(root, file)}: '${from}' may not import '${spec}' (layer '${target}')`);
  }
  graph.set(file, edges);
}

// Cycle detection over value imports (type-only imports vanish at runtime).
const WHITE = 0, GREY = 1, BLACK = 2;
const color = new Map(files.map((f) => [f, WHITE]));
const stack = [];
function visit(f) {
  color.set(f, GREY);
  stack.push(f);
  for (const g of graph.get(f) ?? []) {
    if (!color.has(g)) continue;
    if (color.get(g) === GREY) {
      const cycle = stack.slice(stack.indexOf(g)).concat(g).map((x) => relative(root, x));
      violations.push(`import cycle: ${cycle.join(' → ')}`);
    } else if (color.get(g) === WHITE) visit(g);
  }
  stack.pop();
  color.set(f, BLACK);
}
for (const f of files) if (color.get(f) === WHITE) visit(f);

if (violations.length > 0) {
  for (const v of violations) console.error(`lint-deps: ${v}`);
  process.exit(1);
}
console.error(`lint-deps: ${files.length} files, dependency rules and cycles OK`);
