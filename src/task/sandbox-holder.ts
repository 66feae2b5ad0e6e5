// The process that holds a pod's namespaces when this shim is the pod's sandbox (containerd 2.x,
// `sandboxer = "shim"`, issue 15): it lives in the pod's network namespace (CRI creates it and runs
// CNI before CreateSandbox, then passes netns_path) and in IPC and UTS namespaces of its own, and does
// nothing, like the pause container but without a runc container. CRI derives every container's
// namespace paths from /proc/<pid>/ns/{net,ipc,uts}, so the pid is handed out only once it is there.
// It outlives the daemon, as a pause container outlives its shim: `delete` stops it from the
// persisted pid and start time. Not wired to a Sandbox service yet.
import fs from 'node:fs';
import { processStartTime } from '../rootfs/release.js';
import { spawnOwned } from '../sys/spawn.js';

export interface Holder {
  pid: number;
  /** /proc/<pid>/stat start time: a reused pid is never taken for the holder. */
  startTime: string;
}

const nsId = (p: string): string | undefined => {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
};

/** The namespace id (`net:[4026…]`) of a netns bind-mount path such as /var/run/netns/<name>. */
function netnsId(netnsPath: string): string {
  const st = fs.statSync(netnsPath);
  return `net:[${st.ino}]`;
}

/**
 * Starts the holder in `netnsPath` with fresh IPC and UTS namespaces; resolves once /proc/<pid>/ns
 * shows all three (at most `timeoutMs`), else kills it and rejects with what went wrong.
 */
export async function startHolder(netnsPath: string, timeoutMs = 5_000): Promise<Holder> {
  const want = netnsId(netnsPath);
  // nsenter and unshare exec in place (no --fork), so the pid spawned is the pid of `sleep`.
  const child = spawnOwned('nsenter', [`--net=${netnsPath}`, '--', 'unshare', '--ipc', '--uts', '--', 'sleep', 'infinity'], {
    stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? 9 : 0))));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const pid = child.pid;
  child.unref();
  const mine = { ipc: nsId('/proc/self/ns/ipc'), uts: nsId('/proc/self/ns/uts') };
  const deadline = Date.now() + timeoutMs;
  while (pid !== undefined && Date.now() < deadline) {
    const ready = nsId(`/proc/${pid}/ns/net`) === want && nsId(`/proc/${pid}/ns/ipc`) !== mine.ipc && nsId(`/proc/${pid}/ns/uts`) !== mine.uts;
    const startTime = ready ? processStartTime(pid) : undefined;
    if (startTime) {
      child.stderr?.destroy();
      return { pid, startTime };
    }
    const early = await Promise.race([exited, spawnError, new Promise<undefined>((r) => setTimeout(r, 10))]);
    if (early instanceof Error) throw new Error(`sandbox holder: ${early.message}`);
    if (typeof early === 'number') throw new Error(`sandbox holder in ${netnsPath} exited with status ${early}: ${stderr.trim()}`);
  }
  if (pid !== undefined) killIfSame({ pid, startTime: processStartTime(pid) ?? '' });
  throw new Error(`sandbox holder in ${netnsPath}: not in its namespaces after ${timeoutMs} ms`);
}

/** Whether the holder still runs (same pid, same start time). */
export function holderAlive(h: Holder): boolean {
  return processStartTime(h.pid) === h.startTime;
}

/** SIGKILLs the holder if it is still the same process; idempotent. */
export function killIfSame(h: Holder): void {
  if (!h.startTime || !holderAlive(h)) return;
  try {
    process.kill(h.pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}
