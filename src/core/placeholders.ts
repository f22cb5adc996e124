/**
 * How placeholders are written in a task's command and env (docs/job-spec.md): `{name}`, the
 * name a word or dotted words (`{split.uri}`, `{stages.<stage>.output}`). Only text of that
 * shape is a placeholder, so a command's other braces are its own: awk's `{ print $1 }`, the
 * shell's `{a,b}`, `{}` of `find -exec`. Two forms are kept from being read as placeholders:
 * `{{name}}`, which stands for the text `{name}` (the way to write it literally), and, when the
 * name is not a placeholder's, the shell's `${name}`.
 *
 * Shared by the spec's checks (scheduler), the scheduler's substitution and the executor's
 * (`{output}`, `{split.path}`), which must agree on what a placeholder is.
 */

/** A word, or dotted words: a stage's name may hold `.` and `-` (`{stages.map-1.output}`). */
const NAME = '[A-Za-z_][A-Za-z0-9_-]*(?:\\.[A-Za-z0-9_-]+)*';

/** `{{name}}` (group 1), or `{name}` (group 3) with a `$` before it or not (group 2). */
const TOKEN_RE = new RegExp(`\\{\\{(${NAME})\\}\\}|(\\$?)\\{(${NAME})\\}`, 'g');

/** One placeholder-shaped piece of a command's argument or an env value. */
export interface PlaceholderToken {
  readonly name: string;
  /** Written `{{name}}`: the literal text `{name}`, never substituted. */
  readonly escaped: boolean;
  /** Written `${name}`: a shell expansion unless `name` is a placeholder's. */
  readonly dollar: boolean;
}

/** The placeholder-shaped pieces of a text, in order. */
export function placeholderTokens(text: string): PlaceholderToken[] {
  const out: PlaceholderToken[] = [];
  for (const m of text.matchAll(TOKEN_RE)) {
    if (m[1] !== undefined) out.push({ name: m[1], escaped: true, dollar: false });
    else out.push({ name: m[3] ?? '', escaped: false, dollar: m[2] === '$' });
  }
  return out;
}

/**
 * Replace the placeholders `valueOf` knows (undefined: left as written). `{{name}}` is turned
 * into `{name}` only by the last substitution (`unescape`, the executor's): the scheduler's
 * leaves it whole, or the executor would then read the `{output}` it made as its placeholder.
 */
export function substitutePlaceholders(text: string, valueOf: (name: string) => string | undefined, unescape: boolean): string {
  return text.replace(TOKEN_RE, (whole, escapedName: string | undefined, dollar: string | undefined, name: string | undefined) => {
    if (escapedName !== undefined) return unescape ? `{${escapedName}}` : whole;
    const value = valueOf(name ?? '');
    return value === undefined ? whole : `${dollar ?? ''}${value}`;
  });
}
