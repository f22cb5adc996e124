/*
 * locus-syncfs: flushes whole filesystems for the executor's group commit (src/executor/fs-flush.ts).
 *
 * Node has no syncfs(2). One syncfs makes every file and directory written on a filesystem
 * durable, so the commits of many attempts share one flush instead of each paying its own
 * fsyncs (each a thread-pool hand-off and a device cache flush).
 *
 * Requests on stdin, one per line; one reply per request on stdout, in order:
 *   W <id> <path>     watch: open the filesystem holding <path> (once per device) and name it.
 *                     Reply "<id> 0 <device>". Writeback errors reach syncfs from the first watch
 *                     of a device on, so a directory is watched before anything a later flush
 *                     must cover is written into it.
 *   S <id> <device>   flush that filesystem: syncfs on the descriptor its watch opened.
 * Any other reply is "<id> <errno>": ENOENT for a device never watched, EOPNOTSUPP for a kernel
 * before 5.8 (its syncfs reports no writeback error at all) or a filesystem other than ext4, xfs,
 * btrfs and tmpfs (overlayfs records errors on its upper filesystem, ZFS waits for a whole
 * transaction group), EIO for a device whose flush failed once: the executor then flushes its
 * commits file by file there, which still reports each file's own error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MAX_FS 64

static struct {
  dev_t dev;
  int fd;
  int failed;
} fss[MAX_FS];
static int nfs;
static int kernel_too_old;

static int find(dev_t dev) {
  for (int i = 0; i < nfs; i++)
    if (fss[i].dev == dev) return i;
  return -1;
}

static int supported_fs(long type) {
  switch ((unsigned long)type) {
    case 0xEF53UL:      /* ext2/3/4 */
    case 0x58465342UL:  /* xfs */
    case 0x9123683EUL:  /* btrfs */
    case 0x01021994UL:  /* tmpfs */
      return 1;
    default:
      return 0;
  }
}

static int watch(const char *path, dev_t *dev) {
  if (kernel_too_old) return EOPNOTSUPP;
  /* Opened first, then asked about: the descriptor's own filesystem, whatever the path is later. */
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  struct statfs sfs;
  if (fstat(fd, &st) != 0 || fstatfs(fd, &sfs) != 0) {
    int err = errno;
    close(fd);
    return err;
  }
  if (!supported_fs(sfs.f_type)) {
    close(fd);
    return EOPNOTSUPP;
  }
  *dev = st.st_dev;
  int i = find(st.st_dev);
  if (i >= 0) {
    close(fd);
    return fss[i].failed ? EIO : 0;
  }
  if (nfs >= MAX_FS) {
    close(fd);
    return EMFILE;
  }
  fss[nfs].dev = st.st_dev;
  fss[nfs].fd = fd;
  fss[nfs].failed = 0;
  nfs++;
  return 0;
}

static int flush(const char *device) {
  char *end;
  errno = 0;
  unsigned long long d = strtoull(device, &end, 10);
  if (errno != 0 || *end != '\0') return EINVAL;
  int i = find((dev_t)d);
  if (i < 0) return ENOENT;
  if (fss[i].failed) return EIO;
  if (syncfs(fss[i].fd) != 0) {
    fss[i].failed = 1;
    return errno;
  }
  return 0;
}

int main(void) {
  struct utsname u;
  int major = 0, minor = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2 || major < 5 || (major == 5 && minor < 8)) kernel_too_old = 1;
  static char line[16384];
  while (fgets(line, sizeof line, stdin) != NULL) {
    size_t n = strlen(line);
    /* A line longer than the buffer has no id to answer with: stop rather than misreply. */
    if (n < 5 || line[n - 1] != '\n' || line[1] != ' ') return 2;
    line[n - 1] = '\0';
    char *id = line + 2;
    char *sp = strchr(id, ' ');
    if (sp == NULL) return 2;
    *sp = '\0';
    const char *arg = sp + 1;
    dev_t dev = 0;
    int err = line[0] == 'W' ? watch(arg, &dev) : line[0] == 'S' ? flush(arg) : EINVAL;
    if (line[0] == 'W' && err == 0) printf("%s 0 %llu\n", id, (unsigned long long)dev);
    else printf("%s %d\n", id, err);
    fflush(stdout);
  }
  return 0;
}
