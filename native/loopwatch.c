/*
 * urunc-loopwatch: the shim daemon's event-loop watchdog, measured from outside the loop.
 *
 * One daemon serves every container of a containerd namespace, so a blocked event loop (a kernel
 * call that never returns, a runaway computation) stalls them all, and a timer on that loop cannot
 * see it happen. The daemon starts this small process with a pipe on its stdin and writes to it from
 * its loop: a byte every 100 ms, "D<what>\n" when it starts a task call, "L<path>\n" for where its
 * log goes (a live task's bundle `log` fifo, which containerd copies into its own log). When nothing
 * arrives for BLOCKED_MS, this writes a JSON line there saying how long and what the loop last
 * started, and another when the loop runs again. It changes nothing else: the daemon, running
 * again, sees the gap itself and turns new containers away for a while (the front gives them a
 * daemon of their own); running guests are never touched. It exits with the daemon (EOF, or
 * PR_SET_PDEATHSIG).
 *
 * Usage: urunc-loopwatch BLOCKED_MS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static char log_path[4096];
static char doing[512];

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static long wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* JSON string body: quotes, backslashes and control characters escaped. */
static void json_escape(const char *in, char *out, size_t cap) {
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < cap; p++) {
    if (*p == '"' || *p == '\\') { out[o++] = '\\'; out[o++] = (char)*p; }
    else if (*p < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
    else out[o++] = (char)*p;
  }
  out[o] = 0;
}

static void log_line(int level, const char *msg, long blocked_ms) {
  if (!log_path[0]) return;
  int fd = open(log_path, O_WRONLY | O_NONBLOCK | O_APPEND | O_CLOEXEC);
  if (fd < 0) return;
  char what[1100], line[1600];
  json_escape(doing, what, sizeof what);
  int n = snprintf(line, sizeof line, "{\"level\":%d,\"time\":%ld,\"pid\":%d,\"msg\":\"%s\",\"blockedMs\":%ld,\"doing\":\"%s\"}\n",
                   level, wall_ms(), (int)getppid(), msg, blocked_ms, what);
  if (n > 0 && write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0) { /* no reader: dropped */ }
  close(fd);
}

int main(int argc, char **argv) {
  if (argc != 2 || atol(argv[1]) <= 0) {
    fprintf(stderr, "usage: urunc-loopwatch BLOCKED_MS\n");
    return 2;
  }
  long blocked_ms = atol(argv[1]);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 0;
  signal(SIGPIPE, SIG_IGN);
  char line[4200];
  size_t len = 0;
  long last = now_ms(), blocked_since = 0;
  for (;;) {
    long wait = blocked_since ? -1 : blocked_ms - (now_ms() - last);
    if (wait < 0 && !blocked_since) wait = 0;
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    int r = poll(&pfd, 1, blocked_since ? -1 : (int)wait);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return 1;
    if (r == 0) {
      blocked_since = last;
      log_line(50, "event loop blocked: new containers go to daemons of their own until it runs again", now_ms() - last);
      continue;
    }
    char buf[4096];
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0) return 0; /* the daemon is gone */
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return 1;
    }
    long t = now_ms();
    if (blocked_since) {
      log_line(40, "event loop running again", t - blocked_since);
      blocked_since = 0;
    }
    last = t;
    for (ssize_t i = 0; i < n; i++) {
      char c = buf[i];
      if (c == 'B' && len == 0) continue; /* a heartbeat */
      if (c == '\n') {
        line[len] = 0;
        char *dst = line[0] == 'D' ? doing : line[0] == 'L' ? log_path : NULL;
        size_t cap = line[0] == 'D' ? sizeof doing : sizeof log_path;
        if (dst) {
          size_t m = strnlen(line + 1, cap - 1);
          memcpy(dst, line + 1, m);
          dst[m] = 0;
        }
        len = 0;
      } else if (len + 1 < sizeof line) {
        line[len++] = c;
      }
    }
  }
}
