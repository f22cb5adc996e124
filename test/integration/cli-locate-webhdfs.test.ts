/**
 * `locus locate hdfs://…` through the built binary against the loopback
 * NameNode: which user it is, and what it says when the NameNode wants
 * more than a user name.
 */
import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';
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
  beforeAll(async () => {
    ensureBuilt();
    open = await startWebHdfsServer({ files: [{ path: '/mine/a.csv', size: 100, owner: me }] });
  });
  afterAll(async () => {
    await open?.close();
  });

  it('sends the user it runs as when $USER is unset, as the framework does, not dr.who', async () => {
    const r = await locate([`hdfs://127.0.0.1:${open.port}/mine/a.csv`, '--json'], noUser);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(open.log.some((l) => l.includes(`user.name=${me}`))).toBe(true);
  });
});
