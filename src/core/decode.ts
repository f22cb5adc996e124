/**
 * Small decoders for data from the wire (JSON bodies, Redis hashes, files).
 * They turn `unknown` into typed values or throw a DecodeError naming the
 * path, so no `any` travels inward from an edge.
 */
import { invalidField } from './errors.js';

/** A value did not have the expected shape; `path` names where. */
export class DecodeError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path || '<root>'}: ${message}`);
    this.name = 'DecodeError';
  }
}

/** A plain JSON object. */
export type JsonObject = { readonly [key: string]: unknown };

const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Whether v is a plain object (not null, not an array). */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** v as an object, or throw. */
export function asObject(v: unknown, path: string): JsonObject {
  if (!isObject(v)) throw new DecodeError(path, `expected an object, got ${describe(v)}`);
  return v;
}

/** v as a string, or throw. */
export function asString(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new DecodeError(path, `expected a string, got ${describe(v)}`);
  return v;
}

/** v as a finite number, or throw. */
export function asNumber(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new DecodeError(path, `expected a number, got ${describe(v)}`);
  return v;
}

/** v as a boolean, or throw. */
export function asBoolean(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw new DecodeError(path, `expected a boolean, got ${describe(v)}`);
  return v;
}

/** v as an array decoded element-wise, or throw. */
export function asArray<T>(v: unknown, path: string, item: (x: unknown, path: string) => T): T[] {
  if (!Array.isArray(v)) throw new DecodeError(path, `expected an array, got ${describe(v)}`);
  return v.map((x, i) => item(x, `${path}[${i}]`));
}

/** An optional field: undefined stays undefined, anything else is decoded. */
export function optional<T>(v: unknown, path: string, decode: (x: unknown, path: string) => T): T | undefined {
  return v === undefined || v === null ? undefined : decode(v, path);
}

/** v as one of the given string literals, or throw. */
export function asEnum<T extends string>(v: unknown, path: string, values: readonly T[]): T {
  const s = asString(v, path);
  if (!(values as readonly string[]).includes(s)) {
    throw new DecodeError(path, `expected one of ${values.join(', ')}, got '${s}'`);
  }
  return s as T;
}

/** Parse JSON text into unknown, turning syntax errors into DecodeError. */
export function parseJson(text: string, path = ''): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new DecodeError(path, `invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * Where a parsed JSON or YAML value has a `__proto__` key, as a field path (`labels.__proto__`,
 * `stages[0].task.env.__proto__`), or undefined when it has none. The parsers make it an own
 * key, harmless itself, but every map the value is copied into by assignment (`out[k] = v`) turns
 * it into a prototype change: the entry vanishes without a word (a label, a variable) or, worse,
 * changes what the map inherits. Walked with a stack, not recursion: a body may nest deeply.
 */
export function protoKeyPath(value: unknown): string | undefined {
  const stack: { readonly v: unknown; readonly path: string }[] = [{ v: value, path: '' }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { v, path } = top;
    if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ v: item, path: `${path}[${i}]` }));
    } else if (isObject(v)) {
      const child = (k: string): string => (path === '' ? k : `${path}.${k}`);
      if (Object.hasOwn(v, '__proto__')) return child('__proto__');
      for (const [k, item] of Object.entries(v)) stack.push({ v: item, path: child(k) });
    }
  }
  return undefined;
}

/** The refusal of a value with a `__proto__` key (see protoKeyPath): INVALID_FIELD naming it. */
export function refuseProtoKey(value: unknown): void {
  const field = protoKeyPath(value);
  if (field === undefined) return;
  throw invalidField(field, "'__proto__' is not accepted as a key (JavaScript would read it as the object's prototype, and the entry would be lost); choose another name");
}
