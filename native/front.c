/*
 * containerd-shim-urunc-v2: the executable containerd runs. It carries no shim logic of its own.
 *
 * containerd execs the shim binary twice per container (`start`, then `delete`), and a Node
 * process costs about 100 ms before any of our code runs. So for those two actions this front
 * hands the whole invocation (argv, cwd, environment, stdin) to the warm shim daemon that serves
 * this containerd namespace, over the daemon's own socket, prints what the daemon answers and
 * exits with its code. The daemon runs the same TypeScript `start`/`delete` code a cold process
 * would (src/shim/front.ts). With no live daemon, or for any other action, or on any doubt, the
 * front execs node on the bundled shim (dist/containerd-shim-urunc-v2.mjs): the cold path, same behaviour, slower.
 *
 * Wire format (integers are u32 little-endian):
 *   request: "URF1" | u32 n | n x (u32 len | bytes)   fields: cwd, stdin, then "A<arg>"... "E<k=v>"...
 *   reply:   "URR1" | i32 code | u32 len | stdout | u32 len | stderr
 *   code -1 means "run the cold path" (nothing was done); -2 (to a start): "go to a daemon of the
 *   container's own group" (this one is recovering from a blocked event loop; nothing was done).
 *
 * The daemon's socket is the one `start` derives for the node group: /run/containerd/s/
 * sha256(join(address, namespace, NODE_GROUP)), exactly as src/shim/address.ts computes it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef NODE_BIN
#define NODE_BIN "node"
#endif
#define NODE_GROUP "urunc-node"
#define SOCKET_DIR "/run/containerd/s"
/* A daemon that does not answer in time is treated as absent. containerd gives `delete` 5 s in all,
 * so a hung daemon must leave the cold `delete` time to kill the task from the bundle. A forwarded
 * `start` is answered in about a millisecond: a daemon that has not answered one in START_TIMEOUT_MS
 * is stuck (stopped, or blocked in a kernel call), and the new container goes to a daemon of its own
 * group (its pod's, or its own: `grouping = "pod"`), so one hung daemon never stops a node. The
 * request carries its deadline (URUNC_FRONT_DEADLINE_MS, wall clock): a daemon that reaches it
 * later declines it without doing anything, and START_GRACE_MS lies between the two. */
#define START_TIMEOUT_MS 2000
#define START_GRACE_MS 500
#define DELETE_TIMEOUT_MS 3500

extern char **environ;

/* ---- SHA-256 (FIPS 180-4) ---- */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
  uint32_t w[64], a, b, c, d, e, f, g, hh;
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void sha256_hex(const char *msg, char out[65]) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  size_t len = strlen(msg), i = 0;
  unsigned char block[64];
  for (; i + 64 <= len; i += 64) sha256_block(h, (const unsigned char *)msg + i);
  size_t rest = len - i;
  memset(block, 0, sizeof block);
  memcpy(block, msg + i, rest);
  block[rest] = 0x80;
  if (rest >= 56) {
    sha256_block(h, block);
    memset(block, 0, sizeof block);
  }
  uint64_t bits = (uint64_t)len * 8;
  for (int k = 0; k < 8; k++) block[63 - k] = (unsigned char)(bits >> (8 * k));
  sha256_block(h, block);
  for (int k = 0; k < 8; k++) sprintf(out + 8 * k, "%08x", h[k]);
}

/* URUNC_FRONT_TRACE=<file>: one line per invocation, "forwarded <action>" or "cold <action>" (for tests). */
static void trace(const char *how, const char *action) {
  const char *file = getenv("URUNC_FRONT_TRACE");
  if (!file || !*file) return;
  FILE *f = fopen(file, "a");
  if (!f) return;
  fprintf(f, "%s %s\n", how, action ? action : "-");
  fclose(f);
}

static const char *traced_action;

/* A line in containerd's log: the bundle's `log` fifo (cwd), which containerd reads from before
 * `start`; never stdout or stderr, which containerd takes as the address. Non-blocking, best effort. */
static void containerd_log(const char *msg) {
  int fd = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  char line[512];
  int n = snprintf(line, sizeof line, "containerd-shim-urunc-v2: %s\n", msg);
  if (n > 0 && write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0) { /* dropped */ }
  close(fd);
}

/* ---- cold path ---- */
static void cold(int argc, char **argv);

/* A start for a daemon of the container's own group, as `grouping = "pod"` would place it. */
static void route_around(int argc, char **argv) {
  trace("routed", traced_action);
  setenv("URUNC_SHIM_GROUPING", "pod", 1);
  cold(argc, argv);
}

static void cold(int argc, char **argv) {
  trace("cold", traced_action);
  char self[PATH_MAX], script[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    perror("containerd-shim-urunc-v2: readlink /proc/self/exe");
    exit(1);
  }
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash) *slash = 0; /* .../bin */
  snprintf(script, sizeof script, "%s/../dist/containerd-shim-urunc-v2.mjs", self);
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) exit(1);
  args[0] = "node";
  args[1] = script;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  if (access(NODE_BIN, X_OK) == 0) execv(NODE_BIN, args);
  execvp("node", args);
  fprintf(stderr, "containerd-shim-urunc-v2: exec node: %s\n", strerror(errno));
  exit(1);
}

/*
 * No daemon yet: many `start`s at once (a node booting its pods) must not all pay a cold node
 * start. The first takes a lock next to the socket and runs the cold `start` as its child, holding
 * the lock until that child has bound the socket and handed it to the new daemon; the others wait
 * on the lock, then find the socket and are forwarded like any warm start.
 */
static void cold_start_serialized(int argc, char **argv, struct sockaddr_un *sa, int fd) {
  char lock[sizeof sa->sun_path + 8];
  snprintf(lock, sizeof lock, "%s.lock", sa->sun_path);
  mkdir(SOCKET_DIR, 0711);
  int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0 || flock(lfd, LOCK_EX) < 0) cold(argc, argv);
  int again = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (again >= 0 && connect(again, (struct sockaddr *)sa, sizeof *sa) == 0 && dup3(again, fd, O_CLOEXEC) >= 0) {
    close(again);
    close(lfd); /* a daemon came up while we waited: forward to it */
    return;
  }
  pid_t child = fork();
  if (child < 0) cold(argc, argv);
  if (child == 0) cold(argc, argv);
  int status;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR) _exit(1);
  /* The socket is bound now (or the start failed): later fronts connect without the lock, and the
   * ones waiting on this file retry the connect once we exit. No lock file is left behind. */
  unlink(lock);
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* ---- flags: only what locating the daemon needs; anything unusual goes cold ---- */
struct flags {
  const char *address, *ns, *action;
};

/* One pass over argv the way Go's flag package reads it: -name value, -name=value, --name, bool
 * flags without a value; the first non-flag word (or the word after "--") is the action. */
static struct flags parse_flags(int argc, char **argv) {
  struct flags f = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) {
      f.action = a;
      break;
    }
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) f.action = argv[i + 1];
      break;
    }
    const char *body = a + (a[1] == '-' ? 2 : 1);
    const char *eq = strchr(body, '=');
    size_t nl = eq ? (size_t)(eq - body) : strlen(body);
    const char **slot = nl == 7 && strncmp(body, "address", 7) == 0 ? &f.address : nl == 9 && strncmp(body, "namespace", 9) == 0 ? &f.ns : NULL;
    int is_bool = strcmp(body, "debug") == 0 || strcmp(body, "v") == 0 || strcmp(body, "version") == 0 || strcmp(body, "info") == 0;
    if (eq) {
      if (slot) *slot = eq + 1;
    } else if (!is_bool && i + 1 < argc) {
      i++; /* the flag's value */
      if (slot) *slot = argv[i];
    }
  }
  return f;
}

/* ---- buffers ---- */
struct buf {
  char *p;
  size_t len, cap;
};

static int put(struct buf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

static int put_u32(struct buf *b, uint32_t v) {
  unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
  return put(b, le, 4);
}

static int put_field(struct buf *b, char tag, const char *data, size_t n) {
  if (put_u32(b, (uint32_t)(n + (tag ? 1 : 0))) < 0) return -1;
  if (tag && put(b, &tag, 1) < 0) return -1;
  return put(b, data, n);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w, n -= (size_t)w;
  }
  return 0;
}

static uint32_t get_u32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Reads fd to EOF into b; with timeout_ms >= 0, within that time. -1 on error, -2 on timeout. */
static int read_all(int fd, struct buf *b, long timeout_ms) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char tmp[65536];
  for (;;) {
    if (timeout_ms >= 0) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      long left = timeout_ms - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
      if (left <= 0) return -2;
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      int r = poll(&pfd, 1, (int)left);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return -2;
      if (r < 0) return -1;
    }
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (put(b, tmp, (size_t)n) < 0) return -1;
  }
}

int main(int argc, char **argv) {
  struct flags fl = parse_flags(argc, argv);
  const char *action = fl.action, *address = fl.address, *ns = fl.ns;
  traced_action = action;
  if (!action || (strcmp(action, "start") != 0 && strcmp(action, "delete") != 0) || !address || !ns || address[0] != '/' ||
      strstr(address, "/./") || strstr(address, "/../") || strchr(ns, '/') || !ns[0] || ns[0] == '.' || getenv("URUNC_SHIM_COLD"))
    cold(argc, argv);

  /* path.join(address, ns, NODE_GROUP) for a clean absolute address: single slashes, no trailing one. */
  struct buf key = {0};
  for (const char *p = address; *p; p++)
    if (!(*p == '/' && (p[1] == '/' || p[1] == 0) && p != address)) put(&key, p, 1);
  put(&key, "/", 1);
  put(&key, ns, strlen(ns));
  put(&key, "/" NODE_GROUP, strlen("/" NODE_GROUP) + 1);
  char digest[65];
  sha256_hex(key.p, digest);

  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", SOCKET_DIR, digest);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) cold(argc, argv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    if (strcmp(action, "start") != 0) cold(argc, argv);
    cold_start_serialized(argc, argv, &sa, fd);
  }

  struct buf in = {0};
  if (strcmp(action, "start") == 0 && read_all(0, &in, -1) < 0) cold(argc, argv);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) cold(argc, argv);

  int is_start = strcmp(action, "start") == 0;
  if (is_start) {
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    char deadline[64];
    snprintf(deadline, sizeof deadline, "%lld", (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 + START_TIMEOUT_MS);
    setenv("URUNC_FRONT_DEADLINE_MS", deadline, 1);
  }
  uint32_t nfields = 2 + (uint32_t)(argc - 1);
  for (char **e = environ; *e; e++) nfields++;
  struct buf req = {0};
  int bad = put(&req, "URF1", 4) | put_u32(&req, nfields) | put_field(&req, 0, cwd, strlen(cwd)) | put_field(&req, 0, in.p ? in.p : "", in.len);
  for (int i = 1; i < argc; i++) bad |= put_field(&req, 'A', argv[i], strlen(argv[i]));
  for (char **e = environ; *e; e++) bad |= put_field(&req, 'E', *e, strlen(*e));
  if (bad || write_all(fd, req.p, req.len) < 0) cold(argc, argv);
  shutdown(fd, SHUT_WR);

  struct buf rep = {0};
  int got = read_all(fd, &rep, is_start ? START_TIMEOUT_MS + START_GRACE_MS : DELETE_TIMEOUT_MS);
  unsetenv("URUNC_FRONT_DEADLINE_MS");
  if (got == -2 && is_start) {
    /* The node daemon is stuck: route around it, as `grouping = "pod"` would place this container. */
    containerd_log("the namespace's shim daemon did not answer a start in 2.5 s (stopped or blocked): this container gets a daemon of its own group");
    route_around(argc, argv);
  }
  if (got < 0 || rep.len < 16 || memcmp(rep.p, "URR1", 4) != 0) cold(argc, argv);
  const unsigned char *p = (const unsigned char *)rep.p;
  int32_t code = (int32_t)get_u32(p + 4);
  uint32_t olen = get_u32(p + 8);
  if ((size_t)olen + 16 > rep.len) cold(argc, argv);
  uint32_t elen = get_u32(p + 12 + olen);
  if ((size_t)olen + elen + 16 != rep.len) cold(argc, argv);
  if (code == -1) cold(argc, argv); /* the daemon declined: nothing was done */
  if (code == -2 && is_start) { /* the daemon's event loop was blocked lately: it sends new containers elsewhere */
    containerd_log("the namespace's shim daemon is recovering from a blocked event loop: this container gets a daemon of its own group");
    route_around(argc, argv);
  }
  trace("forwarded", action);
  if (write_all(1, rep.p + 12, olen) < 0 || write_all(2, rep.p + 16 + olen, elen) < 0) return 1;
  return code;
}
