/**
 * Building an executor's data plane from the framework's storage
 * configuration: the storage readers, the block server (started here and
 * advertised in the executor's registration), the data-plane token read from
 * Redis with the executor's own user, and the Redis commit ledger.
 */
import { networkInterfaces } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../obs/log.js';
import { createStorageRegistry, type StorageRegistry } from '../storage/registry.js';
import { registryConfigFor, type ExecutorStorageConfig } from '../storage/executor-config.js';
import { WebHdfsBackend } from '../storage/hdfs/backend.js';
import { HostMapper } from '../storage/hostmap.js';
import { startBlockServer, type BlockServer } from './block-server.js';
import { DATAPLANE_SECRETS_KEY } from './contract.js';
import { RedisCommitLedger, outputMapper, type DataPlane } from './data-plane.js';
import { InputMounts } from './input-mounts.js';
import { LocusError } from '../core/errors.js';

/** A started data plane and how to stop it. */
export interface RunningDataPlane {
  readonly dataPlane: DataPlane;
  readonly blockServer: BlockServer;
  close(): Promise<void>;
}

function isWildcard(bind: string | undefined): boolean {
  return bind === '0.0.0.0' || bind === '::';
}

/** This host's first non-loopback IPv4 address (in a network namespace: the namespace's own). */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

/** How often the token is re-read (a rotated token reaches every executor within this). */
const TOKEN_REFRESH_MS = 30_000;

/** Start the data plane of one executor. `redis` is a connection with the executor's own user. */
export async function startDataPlane(o: { readonly config: ExecutorStorageConfig; readonly redis: Redis; readonly logger: Logger }): Promise<RunningDataPlane> {
  const { config, redis, logger } = o;
  let secrets: Record<string, string> = {};
  let readAt = 0;
  const refresh = async (): Promise<void> => {
    secrets = await redis.hgetall(DATAPLANE_SECRETS_KEY);
    readAt = Date.now();
  };
  await refresh().catch((err: unknown) => logger.warn({ err: String(err) }, 'cannot read the data-plane secrets; block servers will refuse this executor'));
  const token = async (): Promise<string> => {
    if (Date.now() - readAt > TOKEN_REFRESH_MS) await refresh().catch(() => undefined);
    const t = secrets['blockToken'];
    if (t === undefined || t === '') throw new LocusError('UNAVAILABLE', 'no data-plane token in Redis: the framework has not published one');
    return t;
  };
  const delegation = secrets['webhdfsDelegationToken'];
  let registry: StorageRegistry | undefined;
  let hdfs: WebHdfsBackend | undefined;
  const outputs = outputMapper(config.outputs);
  const inputMounts = InputMounts.fromConfig(config);
  const blockServer = await startBlockServer({
    roots: {
      ...(config.localDataDir === undefined ? {} : { datasets: config.localDataDir }),
      ...(outputs.outputsRoot === undefined ? {} : { outputs: outputs.outputsRoot }),
    },
    // Synchronous for the server: the last token read (refreshed by reads and a timer).
    token: () => secrets['blockToken'],
    ...(config.blockServer?.bind === undefined ? {} : { bind: config.blockServer.bind }),
    ...(config.blockServer?.port === undefined ? {} : { port: config.blockServer.port }),
    logger,
  });
  const timer = setInterval(() => void refresh().catch(() => undefined), TOKEN_REFRESH_MS);
  timer.unref();
  const adv = config.blockServer?.advertise ?? (isWildcard(config.blockServer?.bind) ? hostAddress() : undefined);
  // A bind-all address is no address for others: advertise the configured name (else this
  // host's own address) with our port.
  const advertised = adv === undefined ? blockServer.address : adv.includes(':') ? adv : `${adv}:${blockServer.port}`;
  const dataPlane: DataPlane = {
    blockServer: advertised,
    token,
    readUri: async (uri, offset, length) => {
      registry ??= createStorageRegistry(registryConfigFor(config, delegation === undefined ? {} : { webhdfsDelegationToken: delegation }));
      return await registry.read(uri, offset, length);
    },
    ledger: new RedisCommitLedger(redis),
    ...(config.localDataDir === undefined ? {} : { localDataDir: config.localDataDir }),
    hdfs: () => {
      hdfs ??= new WebHdfsBackend({ ...(config.webhdfs ?? {}), ...(delegation === undefined ? {} : { delegationToken: delegation }) }, new HostMapper({}));
      return hdfs;
    },
    outputFor: outputs.outputFor,
    ...(outputs.outputsRoot === undefined ? {} : { outputsRoot: outputs.outputsRoot }),
    ...(inputMounts === undefined ? {} : { inputMounts }),
  };
  logger.info({ blockServer: advertised, roots: { datasets: config.localDataDir, outputs: outputs.outputsRoot } }, 'data plane ready');
  return {
    dataPlane,
    blockServer,
    async close() {
      clearInterval(timer);
      await blockServer.close().catch(() => undefined);
      await registry?.close().catch(() => undefined);
      await hdfs?.close().catch(() => undefined);
    },
  };
}
