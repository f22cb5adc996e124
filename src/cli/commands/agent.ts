/**
 * `locus agent --master URL`: one agent of the local cluster as its own
 * process, registered with a `locus local` master over HTTP — on this
 * machine, on another machine, or on a separate host made by the test
 * harness. Prints its agent id and URL, stops cleanly on SIGINT / SIGTERM
 * (its tasks are reported lost at once).
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { createLogger } from '../../obs/log.js';
import { startAgentProcess } from '../../local/agent/process.js';
import { parseResourceString } from '../../local/resources.js';
import { DEFAULT_AGENT_RESOURCES } from '../../local/topology.js';
import { defaultLocalWorkDir } from '../../local/work-dir.js';
import { CliUsageError, intFlag, parseCommand, required } from '../args.js';

const HELP = `usage: locus agent --master URL [options]

Run one agent of the embedded local cluster as its own process and register
it with a 'locus local' master (e.g. http://10.0.0.1:5050). Start one on each
machine that should run tasks; the master offers its resources like any other.

options:
  --master URL          the master to register with (required)
  --hostname H          the agent's hostname in offers and datasets (default: this machine's)
  --attributes A        Mesos-style attributes, e.g. "rack:r1;zone:a"; rack defaults to the hostname
                        (an agent alone in its rack)
  --resources SPEC      resources (default "cpus:2;mem:4096;disk:20480;ports:[31000-32000]")
  --work-dir DIR        state: agent id, reservations, volumes, sandboxes, datasets under
                        DIR/agents/<hostname> (default: the local cluster's work dir)
  --port P              port of the agent's HTTP endpoints (default 5051; 0 = any free port)
  --ip A                address to listen on and advertise (default: the address this
                        machine uses to reach the master)
  --isolation MODE      auto | linux | process (default auto)
  --principal P         register with this principal when the master requires credentials
  --secret-file F       the principal's secret (the file's content, trimmed)
`;

/** Mesos attribute text `k:v;k2:v2` as a record. */
function parseAttributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(';').map((p) => p.trim()).filter((p) => p !== '')) {
    const i = part.indexOf(':');
    if (i <= 0 || i === part.length - 1) throw new CliUsageError(`--attributes: expected name:value, got '${part}'`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** The local address of a connection to the master: what the master can reach this agent at. */
async function addressTowards(masterUrl: string): Promise<string> {
  const u = new URL(masterUrl);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  return new Promise((res, rej) => {
    const s = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port, timeout: 5000 });
    s.once('connect', () => { const a = s.localAddress; s.destroy(); if (a === undefined) rej(new Error('no local address')); else res(a); });
    s.once('timeout', () => { s.destroy(); rej(new Error(`cannot reach ${masterUrl} (timeout)`)); });
    s.once('error', (err) => rej(new Error(`cannot reach ${masterUrl}: ${err.message}`)));
  });
}

/** Run an agent until a signal arrives. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    master: { type: 'string' }, hostname: { type: 'string' }, attributes: { type: 'string' }, resources: { type: 'string' },
    'work-dir': { type: 'string' }, port: { type: 'string' }, ip: { type: 'string' }, isolation: { type: 'string' },
    principal: { type: 'string' }, 'secret-file': { type: 'string' },
  }, HELP, false);
  if (!parsed) return 0;
  const v = parsed.values;
  const masterUrl = required(v.master, 'master');
  if (!/^https?:\/\//.test(masterUrl)) throw new CliUsageError(`--master must be an http(s) URL of a 'locus local' master, got '${masterUrl}'`);
  const isolation = v.isolation ?? 'auto';
  if (isolation !== 'auto' && isolation !== 'linux' && isolation !== 'process') throw new CliUsageError(`--isolation must be auto, linux or process, got '${isolation}'`);
  let resources;
  try {
    resources = parseResourceString(v.resources ?? DEFAULT_AGENT_RESOURCES);
  } catch (err) {
    throw new CliUsageError(`--resources: ${err instanceof Error ? err.message : String(err)}`);
  }
  const hostname = v.hostname ?? osHostname();
  const { rack, ...attributes } = parseAttributes(v.attributes ?? '');
  const fallback = defaultLocalWorkDir();
  const workDir = resolve(v['work-dir'] ?? fallback.workDir);
  const ip = v.ip ?? (await addressTowards(masterUrl));
  if ((v.principal === undefined) !== (v['secret-file'] === undefined)) throw new CliUsageError('--principal and --secret-file go together');
  const credential = v.principal !== undefined && v['secret-file'] !== undefined
    ? { principal: v.principal, secret: (await readFile(v['secret-file'], 'utf8')).trim() }
    : undefined;
  const logger = createLogger('locus-agent');
  const agent = await startAgentProcess({
    masterUrl, hostname, rack: rack ?? hostname, attributes, resources, workDir, ip,
    port: intFlag(v.port, 'port', 5051, 0), isolation, logger, ...(credential ? { credential } : {}),
  });
  process.stdout.write(`${agent.id} ${agent.url}\n`);
  process.stderr.write(`locus: agent ${hostname} registered with ${masterUrl}; work dir ${workDir}; Ctrl-C stops it\n`);
  await new Promise<void>((res) => {
    const done = (): void => res();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await agent.stop();
  process.stderr.write('locus: agent stopped\n');
  return 0;
}
