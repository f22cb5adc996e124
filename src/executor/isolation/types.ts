/**
 * The isolation port: run one workload in a container and observe it. The
 * Linux implementation uses namespaces and cgroups; the process fallback uses
 * plain child processes with rlimits and says so.
 */

/** A host directory made visible inside the container. */
export interface VolumeMount {
  readonly hostPath: string;
  /** Absolute inside the container, or relative to the sandbox. */
  readonly containerPath: string;
  readonly readOnly: boolean;
  /** Whether its usage counts toward the container's `disk` (default true; false for shared host directories). */
  readonly countsAsDisk?: boolean;
  /**
   * A persistent volume the workload writes: its top directory is handed to the container's
   * user when another user owns it, as a Mesos agent does for a task running as another user.
   */
  readonly ownByWorkload?: boolean;
}

/** Resource limits of one container. */
export interface ContainerLimits {
  /** CPU cores (quota); also sets shares/weight. */
  readonly cpus: number;
  /** Memory limit in MiB. */
  readonly memMiB: number;
  /** Sandbox + volumes disk limit in MiB (polled, like Mesos disk/du); 0 = no limit. */
  readonly diskMiB: number;
  /** Max processes; 0 = default. */
  readonly pids: number;
}

/** Everything needed to launch one container. */
export interface ContainerSpec {
  /** Unique id (the cgroup's name, where cgroups are not pooled: see cgroup-pool.ts); `parentId` nests it under another container. */
  readonly id: string;
  readonly parentId?: string;
  /** argv; argv[0] is looked up on PATH. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The sandbox: working directory, writable, holds stdout/stderr unless paths are given. */
  readonly sandboxDir: string;
  readonly limits: ContainerLimits;
  readonly volumes: readonly VolumeMount[];
  /** User to run as; undefined = the configured default unprivileged user. */
  readonly user?: string;
  readonly network: 'none' | 'host';
  readonly stdoutPath?: string;
  readonly stderrPath?: string;
  /** Rotate stdout/stderr files past this many bytes (0 = never). */
  readonly logRotateBytes?: number;
  readonly hostname?: string;
  /**
   * Show the host's filesystem as it is (writable where the user may write, the host's /tmp),
   * as a Mesos agent does for a container without an image under either filesystem isolator;
   * default false: a read-only root with a private /tmp.
   */
  readonly hostFilesystem?: boolean;
  /** Also hand every chunk of output to this callback (e.g. `locus exec` forwards it to its own stdout/stderr). */
  readonly onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

/** Why a container ended, beyond its exit status. */
export type TerminationReason = 'EXITED' | 'OOM' | 'DISK_LIMIT' | 'KILLED' | 'LAUNCH_FAILED';

/** Resource usage of a container. */
export interface ContainerUsage {
  readonly cpuTimeSeconds: number;
  readonly memPeakBytes: number;
  readonly memCurrentBytes: number;
  readonly diskUsedBytes: number;
}

/** The end of a container. */
export interface ContainerExit {
  /** The workload's exit code, or null when it died by a signal. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly reason: TerminationReason;
  /** A human-readable sentence, e.g. `OOM-killed: memory limit 256MiB`. */
  readonly message: string;
  readonly usage: ContainerUsage;
}

/** A running container. */
export interface Container {
  readonly id: string;
  /** Host pid of the workload (pid 1 inside its namespace), when known. */
  readonly pid: number | undefined;
  /** Resolves once when the container has ended and been cleaned up. */
  wait(): Promise<ContainerExit>;
  /** SIGTERM the whole tree, then SIGKILL after graceMs; resolves when it is gone. */
  kill(graceMs?: number): Promise<void>;
  usage(): Promise<ContainerUsage>;
}

/** What isolation this host gives, for logs and `locus doctor`. */
export interface IsolationReport {
  readonly kind: 'linux' | 'process';
  readonly cgroups: 'v1' | 'v2' | 'none';
  readonly namespaces: readonly string[];
  /** Lines explaining the choice (why not linux, what is missing). */
  readonly notes: readonly string[];
  /** With linux isolation: what starts the containers (the native locus-spawn, or bwrap and setpriv). */
  readonly launcher?: 'native' | 'bwrap';
}

/** The isolation port. */
export interface Isolator {
  readonly report: IsolationReport;
  launch(spec: ContainerSpec): Promise<Container>;
  /**
   * A launch is coming (an agent got a task, before its checkpoint and sandbox): start what the
   * launch will wait for and can start early. Optional; the Linux isolator starts the kernel's wait
   * for a cgroup join (JoinWarmer).
   */
  expectLaunch?(): void;
  /** Look up a running container launched by this isolator. */
  get(id: string): Container | undefined;
  /** Kill everything still running (shutdown). */
  close(): Promise<void>;
}

/** How to choose the isolator. */
export type IsolationMode = 'auto' | 'linux' | 'process';
