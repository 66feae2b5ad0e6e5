/* The test pod's pause container: holds the pod's namespaces and waits; SIGTERM/SIGINT end it. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static void leave(int sig) {
  (void)sig;
  _exit(0);
}

int main(void) {
  signal(SIGTERM, leave);
  signal(SIGINT, leave);
  for (;;) pause();
}
