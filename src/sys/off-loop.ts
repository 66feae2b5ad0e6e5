// Kernel calls that can wait on the outside world run off the event loop, for a bounded time.
//
// One daemon serves every container of a namespace, so a call that never returns (mount or umount
// on a dead NFS server or a FUSE daemon that stopped answering, a path lookup inside an image on a
// lazy-pulling snapshotter, a /proc/<pid>/mountinfo read behind a stuck mount) must stall only the
// container whose operation made it. Such calls run on libuv's thread pool (fs.promises, koffi's
// asynchronous calls) and are awaited through `bounded`: past the bound the operation fails with a
// clear error while the thread stays blocked in the kernel until the filesystem answers. The
// daemon's pool is sized with room for a few such threads (POOL_THREADS, set when it is spawned),
// and `stuckCalls` counts them.
//
// What stays synchronous cannot wait on the outside world: the bundle and containerd's state dir
// (files containerd and this shim wrote, on the node's own disk or tmpfs), /proc/<pid>/stat and
// /proc/<pid>/ns/* (task fields, no filesystem or mm lock), cgroup files, and the host's own binaries.

/** How long a kernel call that can wait on a filesystem is awaited (URUNC_KERNEL_CALL_TIMEOUT_MS). */
export function kernelCallTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.URUNC_KERNEL_CALL_TIMEOUT_MS);
  return Number.isInteger(v) && v > 0 ? v : 10_000;
}

/** libuv's pool size for the daemon: its default 4, plus room for calls stuck past their bound. */
export const POOL_THREADS = 16;

/** This process's pool size (libuv reads UV_THREADPOOL_SIZE once, at the pool's first use; default 4). */
export function poolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** True when three quarters of the pool are held by calls given up on: new work should go elsewhere. */
export function poolMostlyStuck(): boolean {
  return stuck >= Math.max(1, Math.floor((poolSize() * 3) / 4));
}

let stuck = 0;
/** Calls given up on that have not returned yet (each holds one pool thread). */
export function stuckCalls(): number {
  return stuck;
}

export class KernelCallTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: the kernel call did not return in ${ms} ms (a filesystem that stopped answering?); this operation fails, the daemon and its other containers go on`);
    this.name = 'KernelCallTimeout';
  }
}

/** `work`'s result, or a KernelCallTimeout after `ms`; work that returns later is counted back. */
export function bounded<T>(what: string, work: Promise<T>, ms = kernelCallTimeoutMs()): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      stuck++;
      const back = (): void => { stuck--; };
      work.then(back, back);
      reject(new KernelCallTimeout(what, ms));
    }, ms);
    work.then(
      (v) => { if (!late) { clearTimeout(timer); resolve(v); } },
      (err: unknown) => { if (!late) { clearTimeout(timer); reject(err); } },
    );
  });
}
