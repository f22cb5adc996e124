/**
 * On the local cluster, as on a genuine agent, a command task or an executor runs as its
 * CommandInfo.user, else as the framework's FrameworkInfo.user (a genuine agent's
 * `--switch_user`). Locus run as root therefore gets its executors as root, and they run each
 * tenant's attempts under that tenant's own uid, also with `isolation: process`. Before, the
 * local agent ran every executor as `nobody`, so every tenant's attempts shared `nobody`'s uid
 * (and could read the executor's environment, its Redis credentials included).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith, ROOT } from '../harness/requires.js';
import { DEFAULT_TENANT_UIDS, tenantUid } from '../../src/executor/isolation/tenant.js';
import { resolveUser } from '../../src/executor/isolation/host.js';
import type { RunningFramework } from '../../src/app/framework.js';
import { validateJobSpec } from '../../src/scheduler/jobs/spec.js';
import { startBed, startInProcess, waitForJob, type Bed } from './framework-harness.js';

/** Node processes whose working directory is under `root`, with their real uids. */
function processesUnder(root: string): { pid: number; uid: number; cmd: string }[] {
  const out: { pid: number; uid: number; cmd: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readlinkSync(`/proc/${name}/cwd`).startsWith(`${root}/`)) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
      if (!cmd.includes('node')) continue;
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'))?.[1]);
      out.push({ pid: Number(name), uid, cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describeWith([ROOT], 'the local cluster runs executors as the framework\'s user, and attempts as their tenants\'', () => {
  let bed: Bed | undefined;
  let fw: RunningFramework | undefined;

  beforeAll(async () => {
    bed = await startBed({ agents: 1, files: 1 });
    fw = await startInProcess(bed, { isolation: 'process', 'allow-unisolated-tenants': 'true' });
  }, 120_000);

  afterAll(async () => {
    await fw?.stop();
    await bed?.dispose();
  });

  it('each tenant\'s task runs under its own uid, none as nobody; the executor runs as root', async () => {
    if (!bed) throw new Error('set-up failed');
    if (!fw) throw new Error('set-up failed');
    const spec = validateJobSpec({
      name: 'who-am-i',
      stages: [{
        name: 'main',
        // The executor is the task's parent: its uid says who the agent ran it as.
        tasks: [{ command: ['sh', '-c', "id -u > '{output}/uid'"] }],
        task: { command: ['true'], resources: { cpus: 0.1, mem: '32MiB', disk: '8MiB' } },
      }],
    });
    const nobody = resolveUser('nobody').uid;
    for (const tenant of ['alpha', 'beta']) {
      const job = await fw.jobs.submit(tenant, spec);
      const done = await waitForJob(() => fw?.jobs.get(job.id) ?? Promise.reject(new Error('no framework')), 60_000);
      const rec = await fw.jobs.getTaskRecord(`${job.id}.0.0`);
      const sandbox = rec?.attempts[0]?.sandboxDir;
      const stderr = sandbox === undefined ? '' : readFileSync(join(sandbox, 'stderr'), 'utf8');
      expect(done.state, `${tenant}: ${rec?.attempts[0]?.message ?? ''} ${stderr}`).toBe('SUCCEEDED');
      const out = join(done.outputDir, 'main', '00000');
      const uid = Number(readFileSync(join(out, 'uid'), 'utf8').trim());
      expect(uid, tenant).toBe(tenantUid(tenant, DEFAULT_TENANT_UIDS));
      expect(uid).not.toBe(nobody);
    }
    // The executors (idle, kept 30 s) are the Node processes working in sandboxes of this bed's agents.
    const executors = processesUnder(join(bed.dir, 'local', 'agents'));
    expect(executors.length).toBeGreaterThan(0);
    for (const e of executors) expect(e.uid, e.cmd).toBe(0);
  });
});
