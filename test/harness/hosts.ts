/**
 * Separate hosts for tests: the network-namespace hosts of
 * src/local/netns.ts (what `locus local --hosts netns` runs agents on),
 * and what a suite needs from the machine to make them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Dependency } from './requires.js';

export { HOST_PRIVATE_DIR, HOSTS_STATE_ROOT, hostsUp, sweepStaleHosts, type Host, type Hosts, type HostsOptions, type LinkBytes } from '../../src/local/netns.js';

function commandMissing(bin: string): boolean {
  return !['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, bin)));
}

/** What separate hosts need: root, iproute2 (ip, tc), util-linux (nsenter, unshare). */
export const NETNS: Dependency = {
  name: 'network namespaces (root, iproute2, util-linux)',
  install: 'run as root with apt-get install iproute2 util-linux (tc needs the sch_tbf module)',
  missing: (() => {
    const why: string[] = [];
    if (process.getuid?.() !== 0) why.push(`running as uid ${String(process.getuid?.())}, not root`);
    for (const b of ['ip', 'tc', 'nsenter', 'unshare']) if (commandMissing(b)) why.push(`${b} is not installed`);
    if (!existsSync('/proc/self/ns/net')) why.push('the kernel has no network namespaces');
    return why.length === 0 ? undefined : why.join('; ');
  })(),
};
