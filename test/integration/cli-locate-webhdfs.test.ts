/**
 * `locus locate hdfs://…` through the built binary against the loopback
 * NameNode: which user it is, the host-map forms it takes, and what it says
 * when the NameNode wants more than a user name.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, userInfo } from 'node:os';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCUS_CLI, ensureBuilt } from '../harness/build.js';
import { startWebHdfsServer, type WebHdfsServer } from '../harness/webhdfs-server.js';

const run = promisify(execFile);

interface Result { code: number; stdout: string; stderr: string }

async function locate(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  try {
    const r = await run(process.execPath, [LOCUS_CLI, 'locate', ...args], { env, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('locus locate hdfs://', () => {
  const me = userInfo().username;
  // Environments of daemons, cron jobs and containers often carry no $USER.
  const noUser = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'USER' && k !== 'LOGNAME'));
  let open: WebHdfsServer;
  let secure: WebHdfsServer;
  beforeAll(async () => {
    ensureBuilt();
    open = await startWebHdfsServer({ files: [{ path: '/mine/a.csv', size: 100, owner: me }] });
    secure = await startWebHdfsServer({ files: [{ path: '/data/a.csv', size: 100 }], delegationToken: 'tok-1', bind: { namenode: '127.0.0.1', datanode: '127.0.0.3' } });
  });
  afterAll(async () => {
    await open?.close();
    await secure?.close();
  });

  it('sends the user it runs as when $USER is unset, as the framework does, not dr.who', async () => {
    const r = await locate([`hdfs://127.0.0.1:${open.port}/mine/a.csv`, '--json'], noUser);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(open.log.some((l) => l.includes(`user.name=${me}`))).toBe(true);
  });

  it('takes a host-map file in the short form, as the framework does', async () => {
    // The guide's short form: storage host: agent host. The framework's host-map took it; locate refused it.
    const dir = mkdtempSync(join(tmpdir(), 'locus-locate-'));
    try {
      const short = join(dir, 'short.yaml');
      writeFileSync(short, 'dn-a: agent-1\ndn-b: agent-2\ndn-c: agent-3\ndn-d: agent-4\n');
      const full = join(dir, 'full.yaml');
      writeFileSync(full, 'hosts:\n  dn-a: agent-1\n  dn-b: agent-2\n  dn-c: agent-3\n  dn-d: agent-4\n');
      const outs: unknown[] = [];
      for (const file of [short, full]) {
        const r = await locate([`hdfs://127.0.0.1:${open.port}/mine/a.csv`, '--json', '--host-map', file], noUser);
        expect(r.stderr, file).toBe('');
        const doc = JSON.parse(r.stdout) as { files: { splits: { hosts: string[] }[] }[] };
        for (const h of doc.files[0]?.splits[0]?.hosts ?? []) expect(h).toMatch(/^agent-[1-4]$/);
        outs.push(doc);
      }
      expect(outs[0]).toEqual(outs[1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says a secure NameNode wants a delegation token instead of "Unknown error"', async () => {
    const r = await locate([`hdfs://127.0.0.1:${secure.port}/data/`], noUser);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/Unknown error/);
    expect(r.stderr).toMatch(new RegExp(`hdfs://127\\.0\\.0\\.1:${secure.port}/data/: .*authentication required by .* \\(Kerberos\\): give a delegation token .*--webhdfs-token`));
    const ok = await locate([`hdfs://127.0.0.1:${secure.port}/data/`, '--webhdfs-token', 'tok-1', '--json'], noUser);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ files: [{ uri: `hdfs://127.0.0.1:${secure.port}/data/a.csv`, size: 100 }] });
  });
});
