/*
 * locus-syncfs: flushes whole filesystems for the executor's group commit (src/executor/fs-flush.ts).
 *
 * Node has no syncfs(2). One syncfs makes every file and directory written on a filesystem
 * durable, so the commits of many attempts share one flush instead of each paying its own
 * fsyncs (each a thread-pool hand-off and a device cache flush).
 *
 * Requests on stdin, one per line; one reply per request on stdout, in order:
 *   W <id> <path>   watch: open the filesystem holding <path> (once per device). Writeback errors
 *                   are reported from this moment on, so a directory is watched before anything
 *                   that a later flush must cover is written into it.
 *   S <id> <path>   flush the filesystem holding <path>: syncfs on its watched descriptor.
 * Reply: "<id> 0", or "<id> <errno>" (ENOENT for a filesystem never watched); a watch's reply
 * that succeeded also names the filesystem: "<id> 0 <device number>", so that the executor
 * shares one flush among every directory of one filesystem. syncfs reports a
 * writeback error once per descriptor (Linux >= 5.8); after one, this helper refuses that
 * filesystem from then on (EIO), so no later flush can claim what the failed one did not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FS 64

static struct {
  dev_t dev;
  int fd;
  int failed;
} fss[MAX_FS];
static int nfs;

static int find(dev_t dev) {
  for (int i = 0; i < nfs; i++)
    if (fss[i].dev == dev) return i;
  return -1;
}

static int watch(const char *path, dev_t *dev) {
  struct stat st;
  if (stat(path, &st) != 0) return errno;
  *dev = st.st_dev;
  if (find(st.st_dev) >= 0) return 0;
  if (nfs >= MAX_FS) return EMFILE;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  fss[nfs].dev = st.st_dev;
  fss[nfs].fd = fd;
  fss[nfs].failed = 0;
  nfs++;
  return 0;
}

static int flush(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return errno;
  int i = find(st.st_dev);
  if (i < 0) return ENOENT;
  if (fss[i].failed) return EIO;
  if (syncfs(fss[i].fd) != 0) {
    fss[i].failed = 1;
    return errno;
  }
  return 0;
}

int main(void) {
  static char line[16384];
  while (fgets(line, sizeof line, stdin) != NULL) {
    size_t n = strlen(line);
    if (n == 0 || line[n - 1] != '\n') {
      /* A line longer than the buffer: no id to answer with; stop rather than misreply. */
      return 2;
    }
    line[n - 1] = '\0';
    char *id = line + 2;
    char *sp = strchr(id, ' ');
    if (n < 4 || line[1] != ' ' || sp == NULL) return 2;
    *sp = '\0';
    const char *path = sp + 1;
    dev_t dev = 0;
    int err = line[0] == 'W' ? watch(path, &dev) : line[0] == 'S' ? flush(path) : EINVAL;
    if (line[0] == 'W' && err == 0) printf("%s 0 %llu\n", id, (unsigned long long)dev);
    else printf("%s %d\n", id, err);
    fflush(stdout);
  }
  return 0;
}
