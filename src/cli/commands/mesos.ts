/**
 * `locus mesos probe`: subscribe to a master as the framework `locus-probe`,
 * summarise the offers it gets, decline them, tear the framework down. It is
 * the quickest end-to-end check that a master (or ZooKeeper ensemble) is
 * reachable and accepts Locus' credentials.
 */
import { readFileSync } from 'node:fs';
import { LocusError, asLocusError } from '../../core/errors.js';
import { DEFAULT_ROLE } from '../../core/tenants.js';
import { formatMiB } from '../../core/units.js';
import { createLogger, silentLogger } from '../../obs/log.js';
import {
  SchedulerClient, buildFrameworkInfo, formatRanges, isPersistentVolume, isReserved, persistentVolumes, portRanges,
  reservationLabels, currentReservation, toVector, type Offer, type Resource, type SubscriptionInfo,
} from '../../mesos/index.js';
import { CliUsageError, parseCommand, required, waitFlag } from '../args.js';

const HELP = `usage: locus mesos probe --master <http://host:5050 | zk://host:2181/mesos> [options]

Subscribe to a Mesos master as the framework 'locus-probe', print the framework
id, the master reached and a summary of the offers received, decline them all,
tear the probe framework down and exit 0. Exits non-zero with a one-line reason
when the master cannot be reached, refuses authentication or answers garbage.

options:
  --master URL         http(s)://host:port or zk://h1:2181,h2:2181/mesos (env LOCUS_MASTER)
  --principal P        framework principal (HTTP Basic authentication)
  --secret-file F      file holding the principal's secret
  --ca-file F          PEM CA certificate(s) for an https master
  --role R             role to subscribe with (default 'locus', the framework's default role)
  --timeout D          give up after this long (default 10s)
  --json               print {"framework_id", "master", "offers": [...]}`;

const OPTIONS = {
  master: { type: 'string' },
  principal: { type: 'string' },
  'secret-file': { type: 'string' },
  'ca-file': { type: 'string' },
  role: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** How long to keep listening for more offers once the first ones arrived. */
const OFFER_SETTLE_MS = 500;

/** The JSON summary of one offer. */
interface OfferSummary {
  readonly id: string;
  readonly agent_id: string;
  readonly hostname: string;
  readonly resources: { cpus: number; mem: number; disk: number; ports: string };
  readonly unreserved: { cpus: number; mem: number; disk: number };
  readonly reservations: { role: string; principal?: string; labels: Record<string, string>; cpus: number; mem: number; disk: number }[];
  readonly volumes: { id: string; disk: number; role?: string; container_path?: string }[];
}

/** Summarise an offer: totals, unreserved part, reservations grouped by role/principal/labels, volumes. */
export function summarizeOffer(offer: Offer): OfferSummary {
  const all = toVector(offer.resources);
  const free = toVector(offer.resources, (r) => !isReserved(r));
  const groups = new Map<string, { role: string; principal?: string; labels: Record<string, string>; items: Resource[] }>();
  for (const r of offer.resources) {
    const res = currentReservation(r);
    if (!res?.role || isPersistentVolume(r)) continue;
    const labels = reservationLabels(r);
    const key = JSON.stringify([res.role, res.principal ?? '', labels]);
    const g = groups.get(key) ?? { role: res.role, ...(res.principal === undefined ? {} : { principal: res.principal }), labels, items: [] };
    g.items.push(r);
    groups.set(key, g);
  }
  const reservations = [...groups.values()].map(({ items, ...g }) => ({ ...g, ...toVector(items) }));
  const volumes = [...persistentVolumes(offer.resources).entries()].map(([id, r]) => {
    const role = currentReservation(r)?.role;
    const path = r.disk?.volume?.container_path;
    return { id, disk: r.scalar?.value ?? 0, ...(role === undefined ? {} : { role }), ...(path === undefined ? {} : { container_path: path }) };
  });
  return {
    id: offer.id.value,
    agent_id: offer.agent_id.value,
    hostname: offer.hostname,
    resources: { ...all, ports: formatRanges(portRanges(offer.resources)) },
    unreserved: free,
    reservations,
    volumes,
  };
}

function humanReport(info: SubscriptionInfo, role: string, offers: OfferSummary[]): string {
  const agents = new Set(offers.map((o) => o.agent_id));
  const version = info.masterInfo?.version ? ` (Mesos ${info.masterInfo.version})` : '';
  const lines = [
    `framework_id: ${info.frameworkId}`,
    `master:       ${info.master}${version}`,
    `role:         ${role}`,
    `offers:       ${offers.length} from ${agents.size} agent${agents.size === 1 ? '' : 's'}`,
  ];
  for (const o of offers) {
    const r = o.resources;
    lines.push(`  ${o.hostname} (agent ${o.agent_id}): cpus ${r.cpus}, mem ${formatMiB(r.mem)}, disk ${formatMiB(r.disk)}${r.ports ? `, ports ${r.ports}` : ''}`);
    for (const g of o.reservations) {
      const labels = Object.entries(g.labels).map(([k, v]) => `${k}=${v}`).join(',');
      lines.push(`    reserved to ${g.role}${g.principal ? ` by ${g.principal}` : ''}${labels ? ` [${labels}]` : ''}: cpus ${g.cpus}, mem ${formatMiB(g.mem)}, disk ${formatMiB(g.disk)}`);
    }
    for (const v of o.volumes) lines.push(`    volume ${v.id}: ${formatMiB(v.disk)}${v.role ? ` (role ${v.role})` : ''}`);
  }
  lines.push('declined every offer and tore the probe framework down');
  return lines.join('\n');
}

function readSecret(path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new CliUsageError(`--secret-file: cannot read '${path}': ${(err as Error).message}`);
  }
}

/** Subscribe, collect offers, decline, tear down. Exit code 0 on success. */
async function probe(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP, false);
  if (!parsed) return 0;
  const v = parsed.values;
  const master = required(v.master, 'master');
  if (v['secret-file'] !== undefined && v.principal === undefined) throw new CliUsageError('--secret-file needs --principal');
  const timeoutMs = waitFlag(v.timeout, 'timeout', 10_000);
  // The framework's own default: a probe of another role could pass where the framework is refused.
  const role = v.role ?? DEFAULT_ROLE;
  const credentials = v.principal !== undefined ? { principal: v.principal, secret: v['secret-file'] !== undefined ? readSecret(v['secret-file']) : '' } : undefined;
  const logger = process.env['LOCUS_LOG_LEVEL'] ? createLogger('locus-probe') : silentLogger();
  const deadline = Date.now() + timeoutMs;

  const client = new SchedulerClient({
    master,
    framework: buildFrameworkInfo({ name: 'locus-probe', roles: [role], ...(v.principal === undefined ? {} : { principal: v.principal }), failoverTimeoutSeconds: 0 }),
    ...(credentials ? { credentials } : {}),
    ...(v['ca-file'] === undefined ? {} : { caFile: v['ca-file'] }),
    logger,
    backoff: { initialMs: 200, maxMs: 2000 },
    callRetries: 2,
    callTimeoutMs: Math.max(1000, Math.min(timeoutMs, 10_000)),
  });
  const offers = new Map<string, Offer>();
  let firstOfferAt: number | undefined;
  client.on('OFFERS', (e) => {
    for (const o of e.offers.offers ?? []) offers.set(o.id.value, o);
    firstOfferAt ??= Date.now();
  });
  client.on('RESCIND', (e) => offers.delete(e.rescind.offer_id.value));

  try {
    // A master that answers garbage will not improve by retrying: stop at once.
    const garbage = new Promise<never>((_, reject) => {
      client.on('disconnected', (d) => {
        if (d.error?.code === 'PROTOCOL') reject(d.error);
      });
    });
    garbage.catch(() => undefined);
    await client.start();
    let info: SubscriptionInfo;
    try {
      info = await Promise.race([client.waitForSubscribed(Math.max(1, deadline - Date.now())), garbage]);
    } catch (err) {
      const e = asLocusError(err);
      if (e.code === 'TIMEOUT') {
        const why = client.lastError ? client.lastError.message : 'no leading master found';
        throw new LocusError('UNAVAILABLE', `cannot subscribe to ${master} within ${v.timeout ?? '10s'}: ${why}`);
      }
      throw e;
    }
    // Offers come per agent as the allocator runs; wait for the first batch, then briefly for more.
    while (Date.now() < deadline && client.state === 'SUBSCRIBED') {
      if (firstOfferAt !== undefined && Date.now() - firstOfferAt >= OFFER_SETTLE_MS) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (client.state !== 'SUBSCRIBED') {
      throw new LocusError('UNAVAILABLE', `lost the subscription to ${info.master}: ${client.lastError?.message ?? 'unknown reason'}`);
    }
    const received = [...offers.values()];
    if (received.length > 0) await client.decline(received.map((o) => o.id), { refuse_seconds: 60 });
    await client.teardown();
    const summaries = received.map(summarizeOffer);
    if (v.json) {
      process.stdout.write(JSON.stringify({ framework_id: info.frameworkId, master: info.master, role, offers: summaries }) + '\n');
    } else {
      process.stdout.write(humanReport(info, role, summaries) + '\n');
    }
    return 0;
  } catch (err) {
    const e = asLocusError(err);
    process.stderr.write(`locus: mesos probe: ${e.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  } finally {
    await client.stop();
  }
}

/** `locus mesos <subcommand>`. */
export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'probe') return await probe(rest);
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(`usage: locus mesos probe [options]   (see 'locus mesos probe --help')\n`);
    return sub === undefined ? 2 : 0;
  }
  throw new CliUsageError(`unknown 'mesos' subcommand '${sub}' (known: probe)`);
}
