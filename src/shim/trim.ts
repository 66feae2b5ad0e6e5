// The shared daemon gives memory back once a burst of container work is over.
//
// Creating and removing containers allocates in the C heap too (libuv's thread pool, koffi, zlib,
// the TLS of the containerd client); glibc keeps what they free for later and the daemon's RSS
// creeps up with every burst (measured by the soak: about 3.5 MiB in thread arenas and 1 MiB in the
// main heap after 1000 containers). V8 gives back its pages only when its memory reducer happens to
// run (seen after 8 to 40 s, or not at all). Once a burst is over, the daemon runs a full collection
// and hands the C heap's free pages back, the way Go's runtime (forced GC, background scavenger)
// does for the runc shim.

/**
 * Calls `trim` once the lifecycle counter `events` (every task event the daemon publishes) has not
 * moved for `settleMs`, and again only after it moves. Polling calls (State, Stats) publish nothing,
 * so a node's kubelet does not keep the daemon from settling.
 */
export function trimWhenSettled(events: () => number, trim: () => void, settleMs = 10_000): NodeJS.Timeout {
  let seen = events();
  let trimmedAt = seen;
  let changedAt = Date.now();
  const timer = setInterval(() => {
    const n = events();
    if (n !== seen) {
      seen = n;
      changedAt = Date.now();
    } else if (n !== trimmedAt && Date.now() - changedAt >= settleMs) {
      trimmedAt = n;
      trim();
    }
  }, Math.max(100, Math.min(settleMs / 2, 2_000)));
  timer.unref();
  return timer;
}
