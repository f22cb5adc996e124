/**
 * Every `locus …` command line in docs/*.md and README.md must be a command
 * the CLI accepts: each is run through the built CLI with
 * LOCUS_CLI_PARSE_ONLY=1, which stops right after argument parsing and prints
 * `parsed`. A doc that shows a flag the CLI does not have, or a command that
 * does not exist, fails here with the file and line.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJobSpecText } from '../../src/scheduler/jobs/spec.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'dist/src/cli/main.js');

/** One `locus …` invocation found in a document. */
interface DocCommand {
  readonly file: string;
  readonly line: number;
  /** The arguments after `locus`. */
  readonly args: string[];
  readonly text: string;
}

const SHELL_LANGS = new Set(['', 'sh', 'bash', 'shell', 'console', 'zsh', 'shell-session']);
const OPERATORS = new Set(['|', '||', '&&', ';', '&']);
const REDIRECTS = /^(\d?>>?|<|\d?>&\d|&>)$/;

/**
 * Split one shell line into simple commands, each a list of words, the way a
 * POSIX shell would for the cases docs use: quotes, backslashes, comments,
 * pipes, `&&`, `;` and redirections (whose targets are dropped).
 */
function shellCommands(line: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let dropNext = false;
  const endWord = (): void => {
    if (!inWord) return;
    if (dropNext) dropNext = false;
    else if (REDIRECTS.test(word)) dropNext = true;
    else words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i] ?? '';
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      const stop = end < 0 ? line.length : end;
      word += line.slice(i + 1, stop);
      inWord = true;
      i = stop;
    } else if (c === '"') {
      inWord = true;
      for (i++; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1] ?? '')) i++;
        word += line[i] ?? '';
      }
    } else if (c === '\\') {
      word += line[i + 1] ?? '';
      inWord = true;
      i++;
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if (c === '#' && !inWord) {
      break;
    } else if (c === '|' || c === ';' || c === '&') {
      const two = line.slice(i, i + 2);
      if (c === '&' && line[i + 1] === '>') {
        endWord();
        word = '&>';
        inWord = true;
        i++;
        endWord();
        continue;
      }
      if (c === '&' && inWord && /^\d?>$/.test(word)) {
        word += c;
        continue;
      }
      endCommand();
      if (two === '||' || two === '&&') i++;
    } else if (c === '>' || c === '<') {
      if (!(inWord && /^\d$/.test(word))) endWord();
      word += c;
      inWord = true;
      if (line[i + 1] === '>') {
        word += '>';
        i++;
      }
      if (line[i + 1] === '&') {
        word += '&';
        i++;
        while (/\d/.test(line[i + 1] ?? '')) word += line[++i] ?? '';
      }
      endWord();
    } else {
      word += c;
      inWord = true;
    }
  }
  endCommand();
  return commands.filter((cmd) => !OPERATORS.has(cmd[0] ?? ''));
}

/**
 * The `locus` arguments of one simple command, or undefined when it does not
 * run locus: `locus …`, `VAR=x locus …`, `sudo locus …`, and
 * `docker-compose exec [-T] <service> locus …` / `docker exec <c> locus …`.
 */
function locusArgs(words: readonly string[]): string[] | undefined {
  let i = 0;
  while (i < words.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i] ?? '') || ['sudo', 'exec', 'time', 'env'].includes(words[i] ?? ''))) i++;
  if (words[i] === 'locus') return words.slice(i + 1);
  const isCompose = words[i] === 'docker-compose' || (words[i] === 'docker' && words[i + 1] === 'compose');
  const isDocker = words[i] === 'docker';
  if (!isCompose && !isDocker) return undefined;
  const execAt = words.indexOf('exec', i);
  if (execAt < 0) return undefined;
  // After `exec`: options, then the service or container, then the command.
  let j = execAt + 1;
  while (j < words.length && (words[j] ?? '').startsWith('-')) {
    // Options with a separate value.
    if (['-u', '--user', '-w', '--workdir', '-e', '--env', '--index'].includes(words[j] ?? '')) j++;
    j++;
  }
  j++; // the service or container
  return words[j] === 'locus' ? words.slice(j + 1) : undefined;
}

/** Every `locus …` command in one Markdown document: fenced shell blocks and inline code. */
function extractCommands(markdown: string, file: string): DocCommand[] {
  const out: DocCommand[] = [];
  const lines = markdown.split('\n');
  let fence: { marker: string; lang: string } | undefined;
  const add = (text: string, line: number): void => {
    for (const words of shellCommands(text)) {
      const args = locusArgs(words);
      if (args !== undefined && args.length > 0) out.push({ file, line, args, text: text.trim() });
    }
  };
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n] ?? '';
    const fenceMatch = /^\s*(```+|~~~+)\s*([\w-]*)/.exec(raw);
    if (fenceMatch) {
      if (!fence) {
        fence = { marker: fenceMatch[1] ?? '```', lang: (fenceMatch[2] ?? '').toLowerCase() };
        continue;
      }
      if (raw.trim().startsWith(fence.marker)) {
        fence = undefined;
        continue;
      }
    }
    if (fence) {
      if (!SHELL_LANGS.has(fence.lang)) continue;
      let text = raw;
      const start = n + 1;
      // Backslash-newline continues a command.
      while (/\\\s*$/.test(text) && n + 1 < lines.length) {
        text = text.replace(/\\\s*$/, ' ') + (lines[++n] ?? '');
      }
      const prompt = /^\s*[$%]\s+/.exec(text);
      if (fence.lang === 'console' || fence.lang === 'shell-session') {
        if (!prompt) continue; // output, not a command
      }
      add(prompt ? text.slice(prompt[0].length) : text, start);
      continue;
    }
    for (const m of raw.matchAll(/(`+)([^`]+?)\1/g)) {
      const code = (m[2] ?? '').trim();
      if (/^(?:\$\s+)?locus\s+\S/.test(code)) add(code.replace(/^\$\s+/, ''), n + 1);
    }
  }
  return out;
}

/** YAML blocks that are job specs (a top-level `name:` and `stages:` or `task:`), with their line. */
function jobSpecBlocks(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const blocks = markdown.matchAll(/^```ya?ml[^\n]*\n([\s\S]*?)^```/gm);
  for (const m of blocks) {
    const text = m[1] ?? '';
    if (/^name:/m.test(text) && /^(stages|task):/m.test(text)) {
      out.push({ line: markdown.slice(0, m.index).split('\n').length + 1, text });
    }
  }
  return out;
}

function docFiles(): string[] {
  const files: string[] = [];
  const docs = join(root, 'docs');
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.md')) files.push(p);
    }
  };
  if (existsSync(docs)) walk(docs);
  const readme = join(root, 'README.md');
  if (existsSync(readme)) files.push(readme);
  return files;
}

function newestMtime(dir: string): number {
  let newest = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (name.endsWith('.ts')) newest = Math.max(newest, st.mtimeMs);
    }
  };
  walk(dir);
  return newest;
}

/** The outcome of running one command with LOCUS_CLI_PARSE_ONLY=1. */
interface ParseResult {
  readonly ok: boolean;
  readonly reason: string;
}

function isHelpOrVersion(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h') || ['--version', 'version', 'help'].includes(args[0] ?? '');
}

async function parseOnly(args: readonly string[], home: string): Promise<ParseResult> {
  return await new Promise<ParseResult>((resolvePromise) => {
    // Its own process group, so a command that ignores parse-only mode and
    // starts children (redis-server, agents) is stopped with all of them.
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: root,
      env: { ...process.env, LOCUS_CLI_PARSE_ONLY: '1', HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        // already gone
      }
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const firstErr = stderr.split('\n').find((l) => l.trim() !== '') ?? '';
      if (timedOut) {
        resolvePromise({ ok: false, reason: 'did not exit within 20 s (does it call parseCommand before doing work?)' });
      } else if (code !== 0) {
        resolvePromise({ ok: false, reason: `exit ${String(code)}: ${firstErr}` });
      } else if (stdout.trim().split('\n').includes('parsed') || isHelpOrVersion(args)) {
        resolvePromise({ ok: true, reason: '' });
      } else {
        resolvePromise({ ok: false, reason: `exited 0 without printing 'parsed' (does it parse with parseCommand?): ${stdout.trim().slice(0, 120)}` });
      }
    });
  });
}

describe('extracting locus commands from Markdown', () => {
  it('finds commands in shell blocks, console prompts, continuations, compose exec and inline code', () => {
    const md = [
      'Run `locus jobs --json` or `locus` alone; `redis-cli ping` is not locus.',
      '```bash',
      '# a comment',
      'locus submit job.yaml --watch   # watch it',
      'LOCUS_SERVER=http://127.0.0.1:8080 locus volumes ls | head -3',
      'locus mesos probe \\',
      '  --master zk://zk1:2181,zk2:2181/mesos --principal "locus" 2>/dev/null && echo ok',
      "docker-compose exec -T locus locus explain 'task 7'",
      '```',
      '```yaml',
      'command: locus framework --bogus',
      '```',
      '```console',
      '$ locus locate hdfs://nn:9870/data --json',
      'locus 0.1.0',
      '```',
    ].join('\n');
    const found = extractCommands(md, 'x.md').map((c) => [c.line, ...c.args]);
    expect(found).toEqual([
      [1, 'jobs', '--json'],
      [4, 'submit', 'job.yaml', '--watch'],
      [5, 'volumes', 'ls'],
      [6, 'mesos', 'probe', '--master', 'zk://zk1:2181,zk2:2181/mesos', '--principal', 'locus'],
      [8, 'explain', 'task 7'],
      [14, 'locate', 'hdfs://nn:9870/data', '--json'],
    ]);
  });
});

describe('every locus command in docs/ and README.md parses', () => {
  let home: string;
  let commands: DocCommand[];

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'locus-docs-'));
    commands = docFiles().flatMap((f) => extractCommands(readFileSync(f, 'utf8'), relative(root, f)));
    // Build when dist is missing or older than the sources (npm test builds
    // first; this keeps a lone `vitest run` of this file honest).
    const stale = !existsSync(cli) || statSync(cli).mtimeMs < newestMtime(join(root, 'src'));
    if (stale) {
      try {
        execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' });
      } catch {
        // Type errors in files being written elsewhere still emit JavaScript;
        // whether the CLI exists is checked below.
      }
    }
  }, 240_000);

  afterAll(() => {
    rmSync(home, { recursive: true, force: true });
  });

  it('finds the operator guide and its commands', () => {
    const files = new Set(commands.map((c) => c.file));
    expect(files).toContain('docs/operator-guide.md');
    const guide = commands.filter((c) => c.file === 'docs/operator-guide.md');
    expect(guide.length).toBeGreaterThanOrEqual(30);
    const names = new Set(guide.map((c) => c.args.slice(0, c.args[0] === 'mesos' || c.args[0] === 'volumes' || c.args[0] === 'data' ? 2 : 1).join(' ')));
    for (const name of ['mesos probe', 'framework', 'submit', 'volumes reserve', 'locate', 'doctor']) expect(names).toContain(name);
  });

  it('shows only job specs that validate', () => {
    const problems: string[] = [];
    let seen = 0;
    for (const f of docFiles()) {
      for (const block of jobSpecBlocks(readFileSync(f, 'utf8'))) {
        seen++;
        try {
          parseJobSpecText(block.text);
        } catch (err) {
          problems.push(`${relative(root, f)}:${block.line}: ${(err as Error).message}`);
        }
      }
    }
    expect(seen).toBeGreaterThan(0);
    expect(problems, `invalid job specs in the docs:\n${problems.join('\n')}`).toEqual([]);
  });

  it('parses each one with the built CLI', async () => {
    expect(existsSync(cli), `${relative(root, cli)} is built`).toBe(true);
    // One run per distinct argument list; report every place it appears.
    const byArgs = new Map<string, DocCommand[]>();
    for (const c of commands) {
      const key = JSON.stringify(c.args);
      byArgs.set(key, [...(byArgs.get(key) ?? []), c]);
    }
    const keys = [...byArgs.keys()];
    const failures: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keys[next++] ?? '[]';
        const args = JSON.parse(key) as string[];
        const result = await parseOnly(args, home);
        if (!result.ok) {
          for (const c of byArgs.get(key) ?? []) failures.push(`${c.file}:${c.line}: locus ${args.join(' ')}\n    → ${result.reason}`);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    failures.sort();
    expect(failures, `unparsable locus commands in the docs:\n${failures.join('\n')}\n`).toEqual([]);
  }, 240_000);
});
