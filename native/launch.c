/*
 * urunc-launch: the first program of a unikernel's monitor container, bound into the monitor root.
 *
 * runc runs it at Start (runc's exec fifo holds it until then), inside the container's namespaces,
 * cgroup and root. The shim writes the hypervisor's command line into a file just before Start,
 * from the network namespace as it is then (Docker moves the container's interface in after
 * Create); this program reads that file and execs the hypervisor in its own place, so the task's
 * pid is the hypervisor's for its whole life and its exit status is the task's.
 *
 * Usage: urunc-launch FILE. FILE holds the arguments, each ending in a NUL byte; the first is the
 * hypervisor's absolute path. Exits 127 with a message on stderr when it cannot exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BYTES (1 << 20)
#define MAX_ARGS 4096

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: urunc-launch FILE\n");
    return 127;
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "urunc-launch: %s: %s\n", argv[1], strerror(errno));
    return 127;
  }
  static char buf[MAX_BYTES + 1];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, MAX_BYTES + 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fprintf(stderr, "urunc-launch: read %s: %s\n", argv[1], strerror(errno));
      return 127;
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len > MAX_BYTES) {
      fprintf(stderr, "urunc-launch: %s is larger than %d bytes\n", argv[1], MAX_BYTES);
      return 127;
    }
  }
  close(fd);
  if (len == 0 || buf[len - 1] != '\0') {
    fprintf(stderr, "urunc-launch: %s is empty or not NUL-terminated\n", argv[1]);
    return 127;
  }
  static char *args[MAX_ARGS + 1];
  size_t n = 0;
  for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
    if (n == MAX_ARGS) {
      fprintf(stderr, "urunc-launch: more than %d arguments\n", MAX_ARGS);
      return 127;
    }
    args[n++] = buf + i;
  }
  args[n] = NULL;
  if (args[0][0] != '/') {
    fprintf(stderr, "urunc-launch: %s is not an absolute path\n", args[0]);
    return 127;
  }
  execv(args[0], args);
  fprintf(stderr, "urunc-launch: exec %s: %s\n", args[0], strerror(errno));
  return 127;
}
