#!/usr/bin/env node
/**
 * The `locus` command: dispatches to one module per subcommand, loaded lazily
 * so `locus exec` does not pay for fastify and gRPC at start-up.
 */
import { exitWith, quietOnClosedPipe, stopOnEarlySignals } from './process.js';

stopOnEarlySignals();
quietOnClosedPipe();

/** A subcommand: its one-line help and its entry point (returns the exit code). */
interface CommandEntry {
  readonly summary: string;
  readonly load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

// Each subcommand lives in ./commands/<name>.ts. Keep this list sorted by name.
const COMMANDS: Record<string, CommandEntry> = {
  agent: { summary: 'run one agent of the local cluster as its own process, registered with a locus local master', load: () => import('./commands/agent.js') },
  cancel: { summary: 'cancel a job (pending tasks dropped, running attempts killed)', load: () => import('./commands/cancel.js') },
  data: { summary: 'lay files out as a local dataset across the local cluster\'s agents', load: () => import('./commands/data.js') },
  demo: { summary: 'run the word-count demo on the embedded local cluster', load: () => import('./commands/demo.js') },
  doctor: { summary: 'run this first: check Node, redis-server, isolation and (with --master/--redis) the master and Redis', load: () => import('./commands/doctor.js') },
  exec: { summary: 'run one command in an isolated container', load: () => import('./commands/exec.js') },
  executor: { summary: 'run a Locus executor: consume its queue, run attempts in isolated containers', load: () => import('./commands/executor.js') },
  explain: { summary: 'explain why a task is pending, or what it is doing', load: () => import('./commands/explain.js') },
  framework: { summary: 'run the framework and its APIs on an existing Mesos master', load: () => import('./commands/framework.js') },
  job: { summary: "show a job: state, stages, task counts, locality and its tasks", load: () => import('./commands/job.js') },
  jobs: { summary: 'list jobs', load: () => import('./commands/jobs.js') },
  local: { summary: 'run the embedded local Mesos cluster (a master and agents on loopback) in the foreground', load: () => import('./commands/local.js') },
  locate: { summary: 'show where the data of a URI lives: splits, hosts, racks', load: () => import('./commands/locate.js') },
  logs: { summary: "print a task's stdout or stderr (-f follows it)", load: () => import('./commands/logs.js') },
  mesos: { summary: 'talk to a Mesos master (probe: subscribe, list offers, tear down)', load: () => import('./commands/mesos.js') },
  submit: { summary: 'submit a job spec (YAML or JSON); --watch follows it to the end', load: () => import('./commands/submit.js') },
  up: { summary: 'start Redis, the local cluster, the framework and its APIs in one process', load: () => import('./commands/up.js') },
  volumes: { summary: 'reserve, list, show and delete persistent volumes', load: () => import('./commands/volumes.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length), 8);
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['usage: locus <command> [options]', '', 'commands:', ...lines, '', "Run 'locus <command> --help' for a command's options."].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write('locus 0.1.0\n');
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`locus: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  const mod = await entry.load();
  return await mod.run(rest);
}

exitWith(main(process.argv.slice(2)));
