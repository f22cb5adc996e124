/*
 * locus-spawn: Locus's container launcher, a small resident process that
 * starts containers on request.
 *
 * Why it exists: on a small VM a fork+exec is expensive (about 6 ms of CPU
 * here), and a container started by bubblewrap costs three of them (bwrap,
 * setpriv, the workload) plus a fork of the Node helper that spawns bwrap.
 * This launcher is started once; for each container it clones itself
 * straight into new namespaces, builds the root, drops privileges and execs
 * the workload: one exec per container, from a process of a few hundred KiB.
 *
 * It accepts the subset of bubblewrap's and setpriv's options that Locus's
 * bwrapArgs() produces (bwrap options, then `--`, the setpriv path and its
 * options, then `--` and the workload's argv), so one builder describes the
 * container for both paths and its tests cover both. Anything else is an
 * error, reported as a launch failure: drift between the builder and this
 * file shows at once.
 *
 * Each container is cloned with CLONE_VM | CLONE_VFORK: the child runs in the
 * launcher's memory until its exec while the launcher waits, so no page
 * tables are copied (on this VM a plain fork of even a tiny process costs
 * about 2 ms of CPU). The launcher checks the request into a plan first; the
 * child only makes system calls from it: it joins its cgroups (writing 0 to
 * cgroup.procs, before it does any work), builds the root, drops privileges
 * and execs. Requests are served one at a time; a container whose set-up
 * blocks (a hung mount source) holds up the ones behind it.
 *
 * Protocol, on stdin (from Locus): frames of a 4-byte little-endian length
 * and that many bytes of NUL-terminated strings:
 *   "L" id stdout-path stderr-path uid gid n-cgroups cgroup.procs... args...
 *   "K" id                       (SIGKILL the container's init)
 * On stdout, one line per event:
 *   "S id pid"                   (the init has its cgroups and ran its exec,
 *                                 or failed before it: an E line follows)
 *   "E id code signal failure"   (code/signal "-" when not applicable;
 *                                 failure "-" or a message to the line end;
 *                                 a refused request has code 127)
 * EOF on stdin: every container is killed and the launcher exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 4096
#define MAX_RUNNING 4096

/* ---------- the container side (runs in the cloned child) ---------- */

/* The child's failure pipe (written only by the child, between its clone and its exec). */
static int err_fd = -1;

/*
 * Format a message and write all of it to fd; as one event line, its own line
 * breaks become spaces. Returns -1 when the reader is gone.
 */
static int write_message(int fd, int one_line, const char *fmt, va_list ap) {
  char buf[2048];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return 0;
  if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
  for (int k = 0; one_line && k < n - 1; k++)
    if (buf[k] == '\n') buf[k] = ' ';
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (int)w;
  }
  return 0;
}

/* Report why the container could not start (read by the launcher at reap time) and end. */
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err_fd >= 0) write_message(err_fd, 0, fmt, ap);
  va_end(ap);
  _exit(127);
}

static void die_errno(const char *what, const char *path) {
  die("%s %s: %s", what, path ? path : "", strerror(errno));
}

/* Whether a directory is there (a mount point inside a read-only bind cannot be made, but may exist). */
static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p with mode 0755 for the parents and `mode` for the last one. */
static void mkdirs(const char *path, mode_t mode) {
  /* Usually the parents are there already (made for an earlier mount point): one call. */
  if (mkdir(path, mode) == 0) {
    if (chmod(path, mode) != 0) die_errno("cannot set the mode of", path);
    return;
  }
  int first = errno;
  if (first == EEXIST || is_dir(path)) return;
  if (first != ENOENT) {
    errno = first;
    die_errno("cannot create directory", path);
  }
  char tmp[4096];
  size_t len = strlen(path);
  if (len >= sizeof tmp) die("path too long: %s", path);
  memcpy(tmp, path, len + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST && !is_dir(tmp)) die_errno("cannot create directory", tmp);
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0) {
    if (errno != EEXIST && !is_dir(tmp)) die_errno("cannot create directory", tmp);
  } else if (chmod(tmp, mode) != 0) {
    die_errno("cannot set the mode of", tmp);
  }
}

static void parent_dirs(const char *path) {
  char tmp[4096];
  size_t len = strlen(path);
  if (len >= sizeof tmp) die("path too long: %s", path);
  memcpy(tmp, path, len + 1);
  char *slash = strrchr(tmp, '/');
  if (slash == NULL || slash == tmp) return;
  *slash = '\0';
  struct stat st;
  if (stat(tmp, &st) == 0) return;
  mkdirs(tmp, 0755);
}

/* "/newroot" + path */
static const char *in_new(const char *path, char *buf, size_t size) {
  if (snprintf(buf, size, "/newroot%s", path) >= (int)size) die("path too long: %s", path);
  return buf;
}

static const char *in_old(const char *path, char *buf, size_t size) {
  if (snprintf(buf, size, "/oldroot%s", path) >= (int)size) die("path too long: %s", path);
  return buf;
}

static void make_readonly(const char *path, int recursive) {
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof attr) == 0) return;
  if (errno != ENOSYS) die_errno("cannot make read-only", path);
  /* Kernels before 5.12: remount this mount only. */
  if (mount("none", path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) die_errno("cannot make read-only", path);
}

static void bind_path(const char *src, const char *dst, int readonly, int try_only) {
  char from[4096], to[4096];
  in_old(src, from, sizeof from);
  in_new(dst, to, sizeof to);
  struct stat st;
  if (stat(from, &st) != 0) {
    if (try_only) return;
    die_errno("cannot bind", src);
  }
  if (S_ISDIR(st.st_mode)) {
    mkdirs(to, 0755);
  } else if (lstat(to, &st) != 0) {
    /* A file mounted over one that is there already (inside an earlier read-only bind) needs no new mount point. */
    parent_dirs(to);
    int fd = open(to, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0) die_errno("cannot create mount point", dst);
    close(fd);
  }
  if (mount(from, to, NULL, MS_BIND | MS_REC, NULL) != 0) die_errno("cannot bind", src);
  if (readonly) make_readonly(to, 1);
}

static void mount_proc(const char *dst) {
  char to[4096], sub[4200];
  in_new(dst, to, sizeof to);
  mkdirs(to, 0755);
  if (mount("proc", to, "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) != 0) die_errno("cannot mount proc at", dst);
  /* As bubblewrap does: the parts of /proc that change the host stay read-only. */
  static const char *const ro[] = {"sys", "sysrq-trigger", "irq", "bus"};
  for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
    snprintf(sub, sizeof sub, "%s/%s", to, ro[i]);
    if (access(sub, F_OK) != 0) continue;
    if (mount(sub, sub, NULL, MS_BIND | MS_REC, NULL) != 0) die_errno("cannot bind", sub);
    make_readonly(sub, 1);
  }
}

static void mount_dev(const char *dst) {
  char to[4096], p[4200], from[4200];
  in_new(dst, to, sizeof to);
  mkdirs(to, 0755);
  if (mount("tmpfs", to, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) die_errno("cannot mount /dev at", dst);
  static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", to, nodes[i]);
    snprintf(from, sizeof from, "/oldroot/dev/%s", nodes[i]);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0) die_errno("cannot create", p);
    close(fd);
    if (mount(from, p, NULL, MS_BIND, NULL) != 0) die_errno("cannot bind", from);
  }
  static const char *const links[][2] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", to, links[i][1]);
    if (symlink(links[i][0], p) != 0) die_errno("cannot create", p);
  }
  snprintf(p, sizeof p, "%s/shm", to);
  mkdirs(p, 01777);
  snprintf(p, sizeof p, "%s/pts", to);
  mkdirs(p, 0755);
  if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") != 0) die_errno("cannot mount devpts at", p);
}

static void mount_tmpfs(const char *dst, mode_t mode) {
  char to[4096], opts[64];
  in_new(dst, to, sizeof to);
  mkdirs(to, 0755);
  snprintf(opts, sizeof opts, "mode=%04o", (unsigned)mode);
  if (mount("tmpfs", to, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die_errno("cannot mount tmpfs at", dst);
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die_errno("cannot open a socket for", "lo");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) die_errno("cannot read the flags of", "lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) die_errno("cannot bring up", "lo");
  close(s);
}

static const struct { const char *name; int cap; } CAPS[] = {
    {"chown", CAP_CHOWN}, {"dac_override", CAP_DAC_OVERRIDE}, {"dac_read_search", CAP_DAC_READ_SEARCH}, {"fowner", CAP_FOWNER},
    {"fsetid", CAP_FSETID}, {"kill", CAP_KILL}, {"setgid", CAP_SETGID}, {"setuid", CAP_SETUID}, {"setpcap", CAP_SETPCAP},
    {"linux_immutable", CAP_LINUX_IMMUTABLE}, {"net_bind_service", CAP_NET_BIND_SERVICE}, {"net_broadcast", CAP_NET_BROADCAST},
    {"net_admin", CAP_NET_ADMIN}, {"net_raw", CAP_NET_RAW}, {"ipc_lock", CAP_IPC_LOCK}, {"ipc_owner", CAP_IPC_OWNER},
    {"sys_module", CAP_SYS_MODULE}, {"sys_rawio", CAP_SYS_RAWIO}, {"sys_chroot", CAP_SYS_CHROOT}, {"sys_ptrace", CAP_SYS_PTRACE},
    {"sys_pacct", CAP_SYS_PACCT}, {"sys_admin", CAP_SYS_ADMIN}, {"sys_boot", CAP_SYS_BOOT}, {"sys_nice", CAP_SYS_NICE},
    {"sys_resource", CAP_SYS_RESOURCE}, {"sys_time", CAP_SYS_TIME}, {"sys_tty_config", CAP_SYS_TTY_CONFIG}, {"mknod", CAP_MKNOD},
    {"lease", CAP_LEASE}, {"audit_write", CAP_AUDIT_WRITE}, {"audit_control", CAP_AUDIT_CONTROL}, {"setfcap", CAP_SETFCAP},
};

/* Why a request was refused, for the launcher's reply (requests are checked before any clone). */
static char refusal[1024];

static int refuse(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(refusal, sizeof refusal, fmt, ap);
  va_end(ap);
  return -1;
}

/* "-all" or "-all,+chown,+kill,..." into a bit set of kept capabilities. */
static int parse_caps(const char *spec, uint64_t *keep) {
  if (strncmp(spec, "-all", 4) != 0) return refuse("unsupported capability set: %s", spec);
  *keep = 0;
  const char *p = spec + 4;
  while (*p == ',') {
    p++;
    if (*p != '+') return refuse("unsupported capability set: %s", spec);
    p++;
    size_t n = strcspn(p, ",");
    int found = 0;
    for (size_t i = 0; i < sizeof CAPS / sizeof CAPS[0]; i++) {
      if (strlen(CAPS[i].name) == n && strncmp(CAPS[i].name, p, n) == 0) {
        *keep |= 1ULL << CAPS[i].cap;
        found = 1;
      }
    }
    if (!found) return refuse("unknown capability in: %s", spec);
    p += n;
  }
  if (*p != '\0') return refuse("unsupported capability set: %s", spec);
  return 0;
}

static int parse_id(const char *s, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0 || v > 0x7fffffff) return refuse("bad user or group id: %s", s);
  *out = (int)v;
  return 0;
}

/* How many values a container (bubblewrap) option takes; -1 for one this launcher does not know. */
static int container_option_values(const char *o) {
  static const char *const none[] = {"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--as-pid-1", "--die-with-parent", "--new-session", "--clearenv"};
  static const char *const one[] = {"--info-fd", "--block-fd", "--hostname", "--perms", "--dir", "--tmpfs", "--proc", "--dev", "--remount-ro", "--chdir"};
  static const char *const two[] = {"--symlink", "--bind", "--ro-bind", "--ro-bind-try", "--setenv"};
  for (size_t k = 0; k < sizeof none / sizeof none[0]; k++)
    if (strcmp(o, none[k]) == 0) return 0;
  for (size_t k = 0; k < sizeof one / sizeof one[0]; k++)
    if (strcmp(o, one[k]) == 0) return 1;
  for (size_t k = 0; k < sizeof two / sizeof two[0]; k++)
    if (strcmp(o, two[k]) == 0) return 2;
  return -1;
}

#define MAX_ENV 1024
#define MAX_GROUPS 256

/*
 * One container, worked out by the launcher before the clone: the child only
 * makes system calls from it (it shares the launcher's memory, see launch()).
 */
struct plan {
  char **ops; /* the container options, [0, nops) */
  int nops;
  int flags; /* clone flags */
  const char *hostname;
  int new_session;
  const char *chdir_to;
  char *env[MAX_ENV + 1];
  int nenv;
  /* Bind sources with their symlinks resolved (freed with the plan). */
  char *resolved[MAX_ARGS];
  int nresolved;
  int uid, gid;
  gid_t groups[MAX_GROUPS];
  int ngroups;
  int no_new_privs;
  uint64_t keep_caps;
  char **argv; /* NULL-terminated */
  char **cgroup_procs;
  int ncgroups;
  int out_fd, log_fd, err_fd_w, null_fd; /* the launcher's fds for stdout, stderr, failures, stdin */
};

/* Free what the plan allocated (the environment and the resolved bind sources). */
static void free_plan(struct plan *pl) {
  for (int k = 0; k < pl->nenv; k++) free(pl->env[k]);
  pl->nenv = 0;
  for (int k = 0; k < pl->nresolved; k++) free(pl->resolved[k]);
  pl->nresolved = 0;
}

/* Check a request's arguments (bubblewrap's, `--`, setpriv's, `--`, the workload) into a plan. */
static int make_plan(struct plan *pl, char **args, int nargs) {
  int i = 0;
  pl->flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
  pl->uid = -1;
  pl->gid = -1;
  /* Step over the container options by their arity, so an option's value is never taken for `--`. */
  while (i < nargs && strcmp(args[i], "--") != 0) {
    const char *o = args[i];
    int n = container_option_values(o);
    if (n < 0) return refuse("unsupported container option: %s", o);
    if (i + n >= nargs) return refuse("option %s needs %d value(s)", o, n);
    if (strcmp(o, "--unshare-net") == 0) pl->flags |= CLONE_NEWNET;
    else if (strcmp(o, "--new-session") == 0) pl->new_session = 1;
    else if (strcmp(o, "--hostname") == 0) pl->hostname = args[i + 1];
    else if (strcmp(o, "--chdir") == 0) pl->chdir_to = args[i + 1];
    else if (strcmp(o, "--setenv") == 0) {
      if (pl->nenv >= MAX_ENV) return refuse("too many environment variables");
      size_t len = strlen(args[i + 1]) + strlen(args[i + 2]) + 2;
      char *kv = malloc(len);
      if (kv == NULL) return refuse("out of memory");
      snprintf(kv, len, "%s=%s", args[i + 1], args[i + 2]);
      pl->env[pl->nenv++] = kv;
    } else if ((strcmp(o, "--bind") == 0 || strcmp(o, "--ro-bind") == 0 || strcmp(o, "--ro-bind-try") == 0)) {
      /*
       * A source may be a symlink (a genuine agent links a persistent volume into the sandbox
       * under posix isolation): resolved here, against the host's root, as bubblewrap does; in
       * the container it would be read against the new root. A source that is not there is
       * left for the child to report (or skip, for --ro-bind-try).
       */
      char *real = realpath(args[i + 1], NULL);
      if (real != NULL) {
        if (pl->nresolved >= MAX_ARGS) {
          free(real);
          return refuse("too many binds");
        }
        pl->resolved[pl->nresolved++] = real;
        args[i + 1] = real;
      }
    }
    i += 1 + n;
  }
  pl->ops = args;
  pl->nops = i;
  /* `--`, then setpriv's path (its work is done here) and its options. */
  if (i + 1 >= nargs) return refuse("no workload to run");
  int init_groups = 0;
  for (i += 2; i < nargs; i++) {
    const char *o = args[i];
    int has = i + 1 < nargs;
    if (strcmp(o, "--") == 0) {
      i++;
      break;
    } else if (strcmp(o, "--reuid") == 0 && has) {
      if (parse_id(args[++i], &pl->uid) != 0) return -1;
    } else if (strcmp(o, "--regid") == 0 && has) {
      if (parse_id(args[++i], &pl->gid) != 0) return -1;
    } else if (strcmp(o, "--init-groups") == 0) {
      init_groups = 1;
    } else if (strcmp(o, "--clear-groups") == 0) {
      init_groups = 0;
    } else if (strcmp(o, "--no-new-privs") == 0) {
      pl->no_new_privs = 1;
    } else if (strcmp(o, "--bounding-set") == 0 && has) {
      if (parse_caps(args[++i], &pl->keep_caps) != 0) return -1;
    } else if (strcmp(o, "--inh-caps") == 0 && has) {
      if (strcmp(args[++i], "-all") != 0) return refuse("unsupported --inh-caps: %s", args[i]);
    } else if (strcmp(o, "--pdeathsig") == 0 && has) {
      if (strcmp(args[++i], "SIGKILL") != 0) return refuse("unsupported --pdeathsig: %s", args[i]);
    } else {
      return refuse("unsupported privilege option: %s", o);
    }
  }
  if (i >= nargs) return refuse("no workload to run");
  if (pl->uid < 0 || pl->gid < 0) return refuse("no user to run as");
  pl->argv = &args[i];
  pl->ngroups = 0;
  if (init_groups) {
    struct passwd *pw = getpwuid((uid_t)pl->uid);
    if (pw == NULL) return refuse("no user with uid %d", pl->uid);
    pl->ngroups = MAX_GROUPS;
    if (getgrouplist(pw->pw_name, (gid_t)pl->gid, pl->groups, &pl->ngroups) < 0) return refuse("user %s has too many groups", pw->pw_name);
  }
  return 0;
}

/* execvp within the container: PATH from the container's environment. */
static void exec_workload(char **argv, char **envp) {
  const char *file = argv[0];
  if (strchr(file, '/') != NULL) {
    execve(file, argv, envp);
    die("cannot run %s: %s", file, strerror(errno));
  }
  const char *path = "/usr/local/bin:/usr/bin:/bin";
  for (char **e = envp; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  int saved = ENOENT;
  char full[4096];
  for (const char *p = path; *p;) {
    size_t n = strcspn(p, ":");
    if (n > 0 && n + strlen(file) + 2 < sizeof full) {
      memcpy(full, p, n);
      full[n] = '/';
      strcpy(full + n + 1, file);
      execve(full, argv, envp);
      if (errno != ENOENT && errno != ENOTDIR) saved = errno;
    }
    p += n;
    if (*p == ':') p++;
  }
  die("cannot run %s: %s", file, strerror(saved));
}

/*
 * The child: join the cgroups, build the root from the options, drop
 * privileges and exec the workload. It runs on its own stack in the
 * launcher's memory while the launcher waits (CLONE_VFORK), so it allocates
 * nothing: all it needs is in the plan. Never returns.
 */
static int container_main(void *arg) {
  struct plan *pl = arg;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  err_fd = pl->err_fd_w;
  if (dup2(pl->null_fd, 0) < 0 || dup2(pl->out_fd, 1) < 0 || dup2(pl->log_fd, 2) < 0) die_errno("cannot set up stdio", NULL);
  /* Into the cgroups before anything else, so all of the container's work is accounted there. */
  for (int k = 0; k < pl->ncgroups; k++) {
    int fd = open(pl->cgroup_procs[k], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) die("cannot move the container into its cgroup: %s: %s", pl->cgroup_procs[k], strerror(errno));
    close(fd);
  }

  if (mount("none", "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) die_errno("cannot make the mounts private", "/");
  /* A tmpfs base holding the new root and, after the first pivot, the host's root as /oldroot. */
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) die_errno("cannot mount the base tmpfs", "/tmp");
  if (chdir("/tmp") != 0) die_errno("cannot enter", "/tmp");
  if (mkdir("newroot", 0755) != 0 || mkdir("oldroot", 0755) != 0) die_errno("cannot create", "newroot");
  if (mount("tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) die_errno("cannot mount the root tmpfs", "newroot");
  if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") != 0) die_errno("cannot pivot to", "/tmp");
  if (chdir("/") != 0) die_errno("cannot enter", "/");

  char **args = pl->ops;
  mode_t perms = 0;
  int have_perms = 0;
  for (int i = 0; i < pl->nops; i++) {
    const char *o = args[i];
    if (strcmp(o, "--perms") == 0) {
      char *end;
      long m = strtol(args[++i], &end, 8);
      if (*end != '\0' || m < 0 || m > 07777) die("bad --perms: %s", args[i]);
      perms = (mode_t)m;
      have_perms = 1;
      continue;
    } else if (strcmp(o, "--dir") == 0) {
      char to[4096];
      mkdirs(in_new(args[++i], to, sizeof to), have_perms ? perms : 0755);
    } else if (strcmp(o, "--tmpfs") == 0) {
      mount_tmpfs(args[++i], have_perms ? perms : 0755);
    } else if (strcmp(o, "--symlink") == 0) {
      char to[4096];
      in_new(args[i + 2], to, sizeof to);
      parent_dirs(to);
      if (symlink(args[i + 1], to) != 0 && errno != EEXIST) die_errno("cannot create symlink", args[i + 2]);
      i += 2;
    } else if (strcmp(o, "--bind") == 0 || strcmp(o, "--ro-bind") == 0 || strcmp(o, "--ro-bind-try") == 0) {
      bind_path(args[i + 1], args[i + 2], o[2] == 'r', strcmp(o, "--ro-bind-try") == 0);
      i += 2;
    } else if (strcmp(o, "--proc") == 0) {
      mount_proc(args[++i]);
    } else if (strcmp(o, "--dev") == 0) {
      mount_dev(args[++i]);
    } else if (strcmp(o, "--remount-ro") == 0) {
      char to[4096];
      make_readonly(in_new(args[++i], to, sizeof to), 0);
    } else {
      /* Namespace and process options (done by clone() or below) and their values. */
      i += container_option_values(o);
    }
    have_perms = 0;
  }

  if (pl->flags & CLONE_NEWNET) loopback_up();
  if (pl->hostname != NULL && sethostname(pl->hostname, strlen(pl->hostname)) != 0) die_errno("cannot set the hostname", pl->hostname);

  /* Leave the host's root behind and enter the new one. */
  if (umount2("/oldroot", MNT_DETACH) != 0) die_errno("cannot detach", "the host root");
  if (chdir("/newroot") != 0) die_errno("cannot enter", "the new root");
  if (syscall(SYS_pivot_root, ".", ".") != 0) die_errno("cannot pivot to", "the new root");
  if (umount2(".", MNT_DETACH) != 0) die_errno("cannot detach", "the base");
  if (chdir(pl->chdir_to != NULL ? pl->chdir_to : "/") != 0) die_errno("cannot enter", pl->chdir_to);

  if (pl->new_session && setsid() < 0) die_errno("cannot start a session", NULL);

  /* Privileges: groups, then the capability bounding set (needs CAP_SETPCAP), then the user. */
  if (setgroups((size_t)pl->ngroups, pl->groups) != 0) die_errno("cannot set the groups", NULL);
  for (int cap = 0; cap <= 63; cap++) {
    if (pl->keep_caps & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      die_errno("cannot drop a capability", NULL);
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) die_errno("cannot clear ambient capabilities", NULL);
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) != 0) die_errno("cannot read capabilities", NULL);
  data[0].inheritable = 0;
  data[1].inheritable = 0;
  if (syscall(SYS_capset, &hdr, data) != 0) die_errno("cannot clear inheritable capabilities", NULL);
  if (setresgid((gid_t)pl->gid, (gid_t)pl->gid, (gid_t)pl->gid) != 0) die_errno("cannot set the group id", NULL);
  if (setresuid((uid_t)pl->uid, (uid_t)pl->uid, (uid_t)pl->uid) != 0) die_errno("cannot set the user id", NULL);
  if (pl->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die_errno("cannot set no-new-privs", NULL);
  /* A change of user clears the parent-death signal: set it again. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die_errno("cannot set the parent-death signal", NULL);
  exec_workload(pl->argv, pl->env);
  return 127;
}

/* ---------- the launcher side ---------- */

struct running {
  long id;
  pid_t pid;
  char *failure; /* why it could not start (NULL when it ran its exec) */
};

static struct running running[MAX_RUNNING];
static int nrunning = 0;

/* One event line to Locus; when Locus is gone, so is the launcher. */
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = write_message(STDOUT_FILENO, 1, fmt, ap);
  va_end(ap);
  if (r != 0) _exit(0);
}

static struct plan the_plan;
static char *child_stack;
#define CHILD_STACK (1 << 20)

static void launch(char **f, int nf) {
  /* f: "L" id stdout stderr uid gid ncg cg... args... ; f[nf] is NULL. */
  if (nf < 7) return;
  long id = strtol(f[1], NULL, 10);
  int uid = atoi(f[4]), gid = atoi(f[5]), ncg = atoi(f[6]);
  if (ncg < 0 || 7 + ncg > nf) {
    say("E %ld 127 - malformed launch request\n", id);
    return;
  }
  if (nrunning >= MAX_RUNNING) {
    say("E %ld 127 - too many containers in one launcher\n", id);
    return;
  }
  struct plan *pl = &the_plan;
  free_plan(pl);
  memset(pl, 0, sizeof *pl);
  if (make_plan(pl, &f[7 + ncg], nf - 7 - ncg) != 0) {
    free_plan(pl);
    say("E %ld 127 - %s\n", id, refusal);
    return;
  }
  pl->cgroup_procs = &f[7];
  pl->ncgroups = ncg;

  int out = open(f[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  int errf = out < 0 ? -1 : open(f[3], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (out < 0 || errf < 0) {
    say("E %ld 127 - cannot open the log files: %s\n", id, strerror(errno));
    if (out >= 0) close(out);
    return;
  }
  if (fchown(out, (uid_t)uid, (gid_t)gid) != 0 || fchown(errf, (uid_t)uid, (gid_t)gid) != 0) {
    /* Not fatal: the workload may still write its logs if the mode allows. */
  }
  int ep[2];
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0 || pipe2(ep, O_CLOEXEC) != 0) {
    say("E %ld 127 - cannot create a pipe: %s\n", id, strerror(errno));
    close(out), close(errf);
    if (devnull >= 0) close(devnull);
    return;
  }
  /* The child's fds: 0 /dev/null, 1 stdout, 2 stderr, and the failure pipe (closed by exec). */
  pl->null_fd = devnull;
  pl->out_fd = out;
  pl->log_fd = errf;
  pl->err_fd_w = ep[1];
  /*
   * CLONE_VM | CLONE_VFORK: the child runs in this process's memory until its exec, and this
   * process waits meanwhile. No page tables are copied, which on a small VM is most of a fork's
   * cost; the child reads the plan and writes nothing but its own stack.
   */
  pid_t pid = clone(container_main, child_stack + CHILD_STACK, pl->flags | CLONE_VM | CLONE_VFORK | SIGCHLD, pl);
  close(out);
  close(errf);
  close(devnull);
  close(ep[1]);
  free_plan(pl);
  if (pid < 0) {
    say("E %ld 127 - cannot create the namespaces: %s\n", id, strerror(errno));
    close(ep[0]);
    return;
  }
  /*
   * The clone returned, so the child has exec'd (the pipe closed on exec, empty) or died having
   * written why: read that now and close the pipe, so a running container holds no descriptor here.
   */
  char msg[1024];
  ssize_t n = read(ep[0], msg, sizeof msg - 1);
  close(ep[0]);
  running[nrunning].id = id;
  running[nrunning].pid = pid;
  running[nrunning].failure = NULL;
  if (n > 0) {
    msg[n] = '\0';
    running[nrunning].failure = strdup(msg);
  }
  nrunning++;
  say("S %ld %d\n", id, (int)pid);
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (int k = 0; k < nrunning; k++) {
      if (running[k].pid != pid) continue;
      const char *failure = running[k].failure != NULL ? running[k].failure : "-";
      if (WIFEXITED(status))
        say("E %ld %d - %s\n", running[k].id, WEXITSTATUS(status), failure);
      else
        say("E %ld - %d %s\n", running[k].id, WTERMSIG(status), failure);
      free(running[k].failure);
      running[k] = running[--nrunning];
      break;
    }
  }
}

static void kill_one(long id) {
  for (int k = 0; k < nrunning; k++)
    if (running[k].id == id) kill(running[k].pid, SIGKILL);
}

static void shutdown_all(void) {
  for (int k = 0; k < nrunning; k++) kill(running[k].pid, SIGKILL);
  _exit(0);
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return 1;

  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  char **fields = malloc(sizeof(char *) * (MAX_ARGS + 8));
  child_stack = malloc(CHILD_STACK);
  if (buf == NULL || fields == NULL || child_stack == NULL) return 1;

  struct pollfd pfd[2] = {{STDIN_FILENO, POLLIN, 0}, {sfd, POLLIN, 0}};
  for (;;) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      shutdown_all();
    }
    if (pfd[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
      }
      reap();
    }
    if (pfd[0].revents == 0) continue;
    if (cap - len < 4096) {
      cap *= 2;
      buf = realloc(buf, cap);
      if (buf == NULL) shutdown_all();
    }
    ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
    if (n == 0) shutdown_all();
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      shutdown_all();
    }
    len += (size_t)n;
    size_t off = 0;
    while (len - off >= 4) {
      uint32_t flen;
      memcpy(&flen, buf + off, 4);
      if (flen > (64u << 20)) shutdown_all();
      if (len - off - 4 < flen) {
        if (flen + 4 > cap) {
          cap = flen + 4 + 4096;
          buf = realloc(buf, cap);
          if (buf == NULL) shutdown_all();
        }
        break;
      }
      char *p = buf + off + 4, *end = p + flen;
      int nf = 0;
      while (p < end && nf < MAX_ARGS) {
        fields[nf++] = p;
        p += strnlen(p, (size_t)(end - p)) + 1;
      }
      fields[nf] = NULL;
      if (nf > 0 && end[-1] == '\0') {
        if (strcmp(fields[0], "L") == 0) launch(fields, nf);
        else if (strcmp(fields[0], "K") == 0 && nf >= 2) kill_one(strtol(fields[1], NULL, 10));
      }
      off += 4 + flen;
    }
    memmove(buf, buf + off, len - off);
    len -= off;
  }
}
