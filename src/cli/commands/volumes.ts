/**
 * `locus volumes reserve|ls|show|rm`: manage persistent volumes through the
 * HTTP API. `reserve` and `rm` wait, showing each state change, until the
 * volume is READY or DELETED, unless --no-wait.
 */
import { isObject } from '../../core/decode.js';
import { LocusError } from '../../core/errors.js';
import { formatMiB, parseDurationMs } from '../../core/units.js';
import { CliUsageError, parseCommand } from '../args.js';
import { LocusClient, resolveClientConfig } from '../client.js';

const HELP = `usage: locus volumes <command> [options]

commands:
  reserve NAME --size 10GiB [--near URI | --agent HOST] [--path data] [--mode RW]
               [--label key=value]... [--idempotency-key KEY] [--no-wait]
  ls [--all]
  show NAME
  rm NAME [--force] [--no-wait]

options (every command):
  --server URL     the Locus API (LOCUS_SERVER, ~/.locus/config; default http://127.0.0.1:8080)
  --token TOKEN    bearer token (LOCUS_TOKEN, ~/.locus/config)
  --tenant NAME    admin only: act for this tenant
  --timeout DUR    how long to wait (default 5m)
  --json           print JSON

A volume is created read-write (Mesos has no read-only persistent volumes); a job mounts it
read-only with mode: RO in its task.volumes.
`;

const OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  tenant: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  size: { type: 'string' },
  near: { type: 'string' },
  agent: { type: 'string' },
  path: { type: 'string' },
  mode: { type: 'string' },
  label: { type: 'string', multiple: true },
  'idempotency-key': { type: 'string' },
  'no-wait': { type: 'boolean' },
  force: { type: 'boolean' },
  all: { type: 'boolean' },
} as const;

/** The bits of a volume view the CLI prints. */
interface VolumeView {
  readonly name: string;
  readonly state: string;
  readonly tenant: string;
  readonly sizeMiB: number;
  readonly containerPath: string;
  readonly mode: string;
  readonly hostname?: string;
  readonly reason?: string;
  readonly raw: Readonly<Record<string, unknown>>;
}

function asView(v: unknown): VolumeView {
  if (!isObject(v)) throw new LocusError('PROTOCOL', 'the server answered something that is not a volume');
  const s = (k: string): string => (typeof v[k] === 'string' ? (v[k] as string) : '');
  return {
    name: s('name'),
    state: s('state'),
    tenant: s('tenant'),
    sizeMiB: typeof v['sizeMiB'] === 'number' ? v['sizeMiB'] : 0,
    containerPath: s('containerPath'),
    mode: s('mode'),
    ...(s('hostname') ? { hostname: s('hostname') } : {}),
    ...(s('reason') ? { reason: s('reason') } : {}),
    raw: v,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function one(positionals: string[], what: string): string {
  const [name, ...rest] = positionals;
  if (name === undefined) throw new CliUsageError(`${what}: NAME is required\n${HELP.trimEnd()}`);
  if (rest.length > 0) throw new CliUsageError(`${what}: unexpected arguments: ${rest.join(' ')}`);
  return name;
}

/**
 * Poll until the volume reaches `target` (READY or DELETED), printing each
 * state change to stderr. FAILED ends the wait with an error.
 */
async function waitFor(client: LocusClient, name: string, tenant: string | undefined, target: 'READY' | 'DELETED', timeoutMs: number, shown = ''): Promise<VolumeView | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = shown;
  let delay = 200;
  for (;;) {
    let view: VolumeView | undefined;
    try {
      view = asView(await client.get(`/v1/volumes/${encodeURIComponent(name)}`, { tenant }));
    } catch (err) {
      if (target === 'DELETED' && err instanceof LocusError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
    const line = stateLine(view);
    if (line !== last) {
      process.stderr.write(`locus: volume ${name}: ${line}\n`);
      last = line;
    }
    if (view.state === target) return view;
    if (view.state === 'FAILED') throw new LocusError('CONFLICT', `volume ${name} FAILED: ${view.reason ?? 'no reason given'}`);
    if (Date.now() >= deadline) throw new LocusError('TIMEOUT', `volume ${name} is still ${view.state} after ${Math.round(timeoutMs / 1000)}s (waiting for ${target})`);
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    delay = Math.min(2000, delay * 1.5);
  }
}

/** A volume's state as progress shows it: where, and what it waits for. */
function stateLine(v: VolumeView): string {
  return `${v.state}${v.hostname ? ` on ${v.hostname}` : ''}${v.reason ? ` (${v.reason})` : ''}`;
}

function printVolume(v: VolumeView, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(v.raw, null, 2) + '\n');
    return;
  }
  const lines = [
    ['name', v.name], ['state', v.state], ['tenant', v.tenant], ['size', formatMiB(v.sizeMiB)],
    ['path', v.containerPath], ['mode', v.mode], ['agent', v.hostname ?? '-'], ...(v.reason ? [['reason', v.reason]] : []),
  ];
  for (const [k, val] of lines) process.stdout.write(`${(k ?? '').padEnd(8)} ${val ?? ''}\n`);
}

function parseLabels(list: string[] | undefined): Record<string, string> | undefined {
  if (!list || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    if (i <= 0) throw new CliUsageError(`--label must be key=value, got '${l}'`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** The request's fields as the flags that set them, so an error names what the user typed. */
const FLAG_OF: Readonly<Record<string, string>> = {
  containerPath: '--path', size: '--size', mode: '--mode', near: '--near', agent: '--agent', labels: '--label', 'Idempotency-Key': '--idempotency-key',
};

/** A refusal of `reserve` naming the flag rather than the API field (`--path`, not containerPath). */
function asFlagError(err: unknown): unknown {
  if (!(err instanceof LocusError) || err.field === undefined) return err;
  const top = err.field.split('.')[0] ?? err.field;
  const flag = FLAG_OF[top];
  if (flag === undefined) return err;
  // `labels.team` is the --label of key `team`: `--label team: ...`.
  const rest = err.field.slice(top.length + 1);
  const named = rest === '' ? flag : `${flag} ${rest}`;
  const message = err.message.startsWith(`${err.field}:`) ? `${named}${err.message.slice(err.field.length)}` : `${named}: ${err.message}`;
  return new LocusError(err.code, message, { field: flag, cause: err, ...(err.details === undefined ? {} : { details: err.details }) });
}

/** Entry point of `locus volumes`. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const parsed = parseCommand(rest, OPTIONS, HELP);
  if (!parsed) return 0;
  const f = parsed.values;
  const client = new LocusClient(resolveClientConfig({ server: f.server, token: f.token }));
  const timeoutMs = f.timeout === undefined ? 300_000 : parseDurationMs(f.timeout, '--timeout');
  const json = f.json === true;
  const tenant = f.tenant;

  switch (sub) {
    case 'reserve':
    case 'create': {
      const name = one(parsed.positionals, 'reserve');
      if (f.size === undefined) throw new CliUsageError('reserve: --size is required (e.g. --size 10GiB)');
      if (f.near !== undefined && f.agent !== undefined) throw new CliUsageError('reserve: give --near or --agent, not both');
      const labels = parseLabels(f.label);
      const body = {
        name,
        size: f.size,
        ...(f.path === undefined ? {} : { containerPath: f.path }),
        ...(f.mode === undefined ? {} : { mode: f.mode.toUpperCase() }),
        ...(f.near === undefined ? {} : { near: f.near }),
        ...(f.agent === undefined ? {} : { agent: f.agent }),
        ...(labels === undefined ? {} : { labels }),
        ...(tenant === undefined ? {} : { tenant }),
      };
      const res = await client.request('POST', '/v1/volumes', {
        body,
        ...(f['idempotency-key'] === undefined ? {} : { headers: { 'idempotency-key': f['idempotency-key'] } }),
      }).catch((err: unknown) => { throw asFlagError(err); });
      const created = asView(res.body);
      if (f['no-wait'] === true) {
        printVolume(created, json);
        return 0;
      }
      const ready = await waitFor(client, name, created.tenant || tenant, 'READY', timeoutMs);
      if (ready) printVolume(ready, json);
      return 0;
    }
    case 'ls':
    case 'list': {
      if (parsed.positionals.length > 0) throw new CliUsageError(`ls: unexpected arguments: ${parsed.positionals.join(' ')}`);
      const body = await client.get('/v1/volumes', { tenant, ...(f.all === true ? { all: 'true' } : {}) });
      const list = isObject(body) && Array.isArray(body['volumes']) ? body['volumes'].map(asView) : [];
      if (json) {
        process.stdout.write(JSON.stringify(list.map((v) => v.raw), null, 2) + '\n');
        return 0;
      }
      const rows = [['NAME', 'STATE', 'SIZE', 'AGENT', 'PATH', 'TENANT'], ...list.map((v) => [v.name, v.state, formatMiB(v.sizeMiB), v.hostname ?? '-', v.containerPath, v.tenant])];
      const widths = rows[0]?.map((_c, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
      for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd() + '\n');
      return 0;
    }
    case 'show':
    case 'get': {
      const name = one(parsed.positionals, 'show');
      printVolume(asView(await client.get(`/v1/volumes/${encodeURIComponent(name)}`, { tenant })), json);
      return 0;
    }
    case 'rm':
    case 'delete': {
      const name = one(parsed.positionals, 'rm');
      const res = await client.request('DELETE', `/v1/volumes/${encodeURIComponent(name)}`, { query: { tenant, ...(f.force === true ? { force: 'true' } : {}) } });
      const after = asView(res.body);
      if (f['no-wait'] === true || after.state === 'DELETED') {
        if (json) printVolume(after, true);
        else process.stderr.write(`locus: volume ${name}: ${after.state}\n`);
        return 0;
      }
      // What the delete waits for first, as answered (an executor to release, say): the polls
      // that follow may only see the states after it.
      const first = stateLine(after);
      process.stderr.write(`locus: volume ${name}: ${first}\n`);
      await waitFor(client, name, after.tenant || tenant, 'DELETED', timeoutMs, first);
      return 0;
    }
    default:
      throw new CliUsageError(`unknown volumes command '${sub}'\n${HELP.trimEnd()}`);
  }
}
