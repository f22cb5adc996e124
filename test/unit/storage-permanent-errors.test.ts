/**
 * Transport failures of WebHDFS that are configuration mistakes, not a storage away: asking again
 * gives the same answer, so a stage's listing must fail its job at once (naming the URI and what
 * to correct) rather than wait input-storage-give-up for it. A host DNS does not know (a typo in
 * the NameNode's name), TLS to a port that does not speak it, a port that does not speak HTTP.
 */
import { lookup } from 'node:dns/promises';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWith, type Dependency } from '../harness/requires.js';
import { isTransientStorageError } from '../../src/storage/errors.js';
import { createStorageRegistry } from '../../src/storage/registry.js';

const NO_SUCH_HOST = 'no-such-namenode.invalid';

/** What this host's resolver answers for NO_SUCH_HOST: ENOTFOUND when it has one; without one it may say EAI_AGAIN. */
const dnsAnswer = await lookup(NO_SUCH_HOST).then(() => 'an address', (err: NodeJS.ErrnoException) => err.code ?? String(err));
/** A resolver that says "no such name": a missing one is a skip outside CI (one SKIPPED line) and a failure in CI. */
const RESOLVER: Dependency = {
  name: 'a DNS resolver answering ENOTFOUND for .invalid names',
  install: 'give the machine a resolver (/etc/resolv.conf) or an nsswitch "hosts: files dns" that answers',
  missing: dnsAnswer === 'ENOTFOUND' ? undefined : `${NO_SUCH_HOST} resolved to ${dnsAnswer}`,
};

describeWith([RESOLVER], 'a NameNode host DNS does not know (ENOTFOUND)', () => {
  it.each([
    ['through the webhdfs package (user.name set)', { user: 'alice', timeoutMs: 2_000 }],
    ['through the direct WebHDFS client', { timeoutMs: 2_000 }],
  ])('%s: permanent, naming the URI and the host', async (_how, webhdfs) => {
    const storage = createStorageRegistry({ cache: { ttlMs: 0 }, webhdfs });
    try {
      const err = await storage.resolve(`hdfs://${NO_SUCH_HOST}:9870/data/`, { split: 'file' }).catch((e: unknown) => e);
      expect(isTransientStorageError(err)).toBe(false);
      expect((err as Error).message).toBe(`hdfs://${NO_SUCH_HOST}:9870/data/: the host ${NO_SUCH_HOST} is not known to DNS (ENOTFOUND): check the host in the URI`);
    } finally {
      await storage.close();
    }
  });
});

describe('a port that does not speak what the URI asks', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    // A TCP service that is not an HTTP server (an SSH daemon: a NameNode's port typo'd to another service's).
    server = createServer((s) => { s.on('error', () => undefined); s.end('SSH-2.0-OpenSSH_9.6\r\n'); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => { server.close(); });

  it.each([
    ['swebhdfs:// (TLS) to a port without TLS', 'swebhdfs', /TLS with 127\.0\.0\.1:\d+ failed \(is it an HTTPS port\? .*\): wrong version number$/],
    ['hdfs:// to a port that does not speak HTTP', 'hdfs', /127\.0\.0\.1:\d+ does not answer in HTTP/],
  ])('%s: permanent, naming the URI', async (_what, scheme, says) => {
    const storage = createStorageRegistry({ cache: { ttlMs: 0 }, webhdfs: { user: 'alice', timeoutMs: 2_000, usePackage: false } });
    try {
      const uri = `${scheme}://127.0.0.1:${port}/data/`;
      const err = await storage.resolve(uri, { split: 'file' }).catch((e: unknown) => e);
      expect(isTransientStorageError(err)).toBe(false);
      expect((err as Error).message.startsWith(`${uri}: `)).toBe(true);
      expect((err as Error).message).toMatch(says);
    } finally {
      await storage.close();
    }
  });
});
