/**
 * `locus data put <local file or dir> local://<dataset>/<path>`: lay data out
 * as a local dataset across the local cluster's agents (blocks replicated on
 * distinct agents, different racks when possible), so embedded mode has
 * real locality. See src/storage/local/dataset.ts for the format.
 */
import { parseSizeMiB } from '../../core/units.js';
import { defaultLocalWorkDir } from '../../local/work-dir.js';
import { putLocalDataset } from '../../storage/local/put.js';
import { parseStorageUri } from '../../storage/uri.js';
import { CliUsageError, intFlag, parseCommand } from '../args.js';

const HELP = `usage: locus data put <local file or dir> local://<dataset>/<path> [options]

Copies the file (or every file under the directory) into the dataset: each
block goes to --replicas agents of the local cluster, spread evenly, on
different racks when possible. Then 'locus locate local://<dataset>/...'
shows where it lives.

options:
  --work-dir DIR       local cluster work directory (default: the one 'locus up' and
                       'locus local' use, $LOCUS_HOME/local or ~/.locus/local; as root
                       with a private home, /var/lib/locus/local)
  --replicas N         copies of each block (default 2); at most one per agent: with
                       fewer agents, each gets one and a warning says so
  --block-size SIZE    block size (default 8MiB)
  --json               print the layout as JSON
`;

const OPTIONS = {
  'work-dir': { type: 'string' },
  replicas: { type: 'string' },
  'block-size': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Entry point. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, OPTIONS, HELP);
  if (parsed === undefined) return 0;
  const [sub, source, target, ...extra] = parsed.positionals;
  if (sub !== 'put') throw new CliUsageError(`unknown data command '${sub ?? ''}'\n${HELP.trimEnd()}`);
  if (source === undefined || target === undefined || extra.length > 0) throw new CliUsageError(`put takes a source and a local:// target\n${HELP.trimEnd()}`);
  let uri;
  try {
    uri = parseStorageUri(target);
  } catch {
    throw new CliUsageError(`target must be local://<dataset>/<path>, got '${target}'`);
  }
  if (uri.scheme !== 'local' || uri.authority === '') throw new CliUsageError(`target must be local://<dataset>/<path>, got '${target}'`);
  const blockSize = Math.round(parseSizeMiB(parsed.values['block-size'] ?? '8MiB', '--block-size') * 1024 * 1024);
  // Ctrl-C stops the put, which then removes what it wrote (it writes under temporary names):
  // exiting at once left those behind in the agents' data directories.
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const replicas = intFlag(parsed.values.replicas, 'replicas', 2, 1);
  let result;
  try {
    result = await putLocalDataset({
      // The default is the cluster's own (`locus up`/`locus local` as root with a private home
      // use /var/lib/locus/local): ~/.locus/local put the data where no agent read it, and the
      // job then failed with "no dataset".
      workDir: parsed.values['work-dir'] ?? defaultLocalWorkDir().workDir,
      source,
      dataset: uri.authority,
      path: uri.path || '/',
      replicas,
      blockSize,
      signal: stop.signal,
    });
  } catch (err) {
    if (!stop.signal.aborted) throw err;
    process.stderr.write(`locus: data put stopped; local://${uri.authority} is as it was before it\n`);
    return 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // Written with fewer copies rather than refused: the data is all there and readable, one copy
  // on each agent. But the user asked for more, and a dataset that loses an agent then has one
  // copy fewer than they think: said on stderr (stdout and --json stay the result alone).
  if (result.replicas < replicas) {
    process.stderr.write(`locus: warning: --replicas ${replicas}, but the local cluster has ${result.replicas} agent${result.replicas === 1 ? '' : 's'}: each block was written ${result.replicas} time${result.replicas === 1 ? '' : 's'} (one copy per agent)\n`);
  }
  if (parsed.values.json === true) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    const blocks = result.files.reduce((n, f) => n + f.blocks.length, 0);
    process.stdout.write(`put ${result.files.length} file${result.files.length === 1 ? '' : 's'} (${result.bytes} bytes, ${blocks} block${blocks === 1 ? '' : 's'}) into local://${result.dataset}\n`);
  }
  return 0;
}
