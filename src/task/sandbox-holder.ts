// The process that holds a pod's namespaces when this shim is the pod's sandbox (containerd 2.x,
// `sandboxer = "shim"`, src/task/sandbox.ts): it lives in the pod's network namespace (CRI creates
// it and runs CNI before CreateSandbox, then passes netns_path) and in IPC and UTS namespaces of its
// own (and a PID namespace of its own for a pod that shares one), and does nothing, like the pause
// container but without a runc container. CRI derives every container's namespace paths from
// /proc/<pid>/ns/*, so the pid is handed out only once it is there. It outlives the daemon, as a
// pause container outlives its shim: `delete` stops it from the persisted pid and start time.
import fs from 'node:fs';
import path from 'node:path';
import { processStartTime } from '../rootfs/release.js';
import { run, spawnOwned } from '../sys/spawn.js';

export interface Holder {
  pid: number;
  /** /proc/<pid>/stat start time: a reused pid is never taken for the holder. */
  startTime: string;
}

export interface HolderOptions {
  /** The pod's network namespace (a bind-mount path); undefined: the host's (hostNetwork). */
  netnsPath?: string;
  /** New IPC / UTS / PID namespaces; false: the host's (hostIPC, hostNetwork, no shared PID namespace). */
  ipc: boolean;
  uts: boolean;
  /** A PID namespace of the pod's own (shareProcessNamespace): the holder is its pid 1. */
  pid: boolean;
  /** Set in the new UTS namespace. */
  hostname?: string;
  /** Namespaced sysctls (net.*, and IPC ones with a new IPC namespace), written inside the namespaces. */
  sysctls?: Record<string, string>;
}

export interface StartedHolder extends Holder {
  /** Resolves with the wait status when the holder exits (while this process is its parent). */
  exited: Promise<{ status: number; at: Date }>;
}

/** The sandbox's record in its bundle, read by `delete` (src/shim/delete.ts). */
export const SANDBOX_STATE = 'urunc-sandbox.json';

export interface SandboxState {
  id: string;
  namespace: string;
  netnsPath: string;
  holder: Holder | null;
  createdAt: string;
  exitStatus?: number;
  exitedAt?: string;
}

/** The holder recorded in a sandbox bundle, if any (for `delete`). */
export function readSandboxState(bundle: string): SandboxState | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(bundle, SANDBOX_STATE), 'utf8')) as SandboxState;
    if (typeof s !== 'object' || s === null || typeof s.id !== 'string') return undefined;
    const h = s.holder as Partial<Holder> | null;
    // Only a well-formed record names a process to stop (and killIfSame still checks its start time).
    if (h && !(Number.isInteger(h.pid) && (h.pid as number) > 1 && typeof h.startTime === 'string')) s.holder = null;
    return s;
  } catch {
    return undefined;
  }
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

/** RFC 1123 host name, as the kernel takes at most 64 bytes of. */
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
/** Sysctls that belong to a network or IPC namespace (what runc accepts for a container in its own ones). */
const NET_SYSCTL = /^net\.[a-z0-9_.\-/]+$/;
const IPC_SYSCTL = /^(kernel\.(shm[a-z_]+|msg[a-z_]+|sem|shm_rmid_forced)|fs\.mqueue\.[a-z_]+)$/;

/** /proc/sys path of a sysctl, sysctl(8)'s naming: dots separate levels, a slash stands for a dot inside one (eth0.100). */
function sysctlPath(key: string): string {
  const parts = [...key].map((c) => (c === '.' ? '/' : c === '/' ? '.' : c)).join('').split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`invalid sysctl name ${JSON.stringify(key)}`);
  return `/proc/sys/${parts.join('/')}`;
}

/** Checks what the holder will be asked to set before anything starts: a clear error, nothing changed. */
export function validateHolderOptions(o: HolderOptions): void {
  if (o.hostname !== undefined && o.hostname !== '') {
    if (!o.uts) throw new Error('a pod hostname needs its own UTS namespace (not with host networking)');
    if (o.hostname.length > 64 || !HOSTNAME.test(o.hostname)) throw new Error(`invalid pod hostname ${JSON.stringify(o.hostname)}`);
  }
  for (const [k, v] of Object.entries(o.sysctls ?? {})) {
    sysctlPath(k);
    const net = NET_SYSCTL.test(k);
    const ipc = IPC_SYSCTL.test(k);
    if (!net && !ipc) throw new Error(`sysctl ${k} is not namespaced: a pod cannot set it`);
    if (net && o.netnsPath === undefined) throw new Error(`sysctl ${k} would change the host's network namespace (host networking)`);
    if (ipc && !o.ipc) throw new Error(`sysctl ${k} would change the host's IPC namespace (host IPC)`);
    if (!/^[\x20-\x7e]{0,256}$/.test(v)) throw new Error(`sysctl ${k}: invalid value`);
  }
}

/**
 * Starts the holder; resolves once /proc/<pid>/ns shows every namespace asked for and the hostname
 * and sysctls are set (at most `timeoutMs`), else kills it and rejects with what went wrong.
 */
export async function startHolder(o: HolderOptions, timeoutMs = 5_000): Promise<StartedHolder> {
  validateHolderOptions(o);
  const want = o.netnsPath !== undefined ? netnsId(o.netnsPath) : nsId('/proc/self/ns/net');
  // nsenter and unshare exec in place, so without a PID namespace the pid spawned is the pid of
  // `sleep`. A PID namespace applies to children only: unshare forks, and the holder is its child
  // (--kill-child: it does not outlive unshare, which exits with the child's status).
  const unshare = ['unshare', ...(o.ipc ? ['--ipc'] : []), ...(o.uts ? ['--uts'] : []), ...(o.pid ? ['--pid', '--fork', '--kill-child'] : []), '--', 'sleep', 'infinity'];
  const argv = o.netnsPath !== undefined ? [`--net=${o.netnsPath}`, '--', ...unshare] : unshare.slice(1);
  const child = spawnOwned(o.netnsPath !== undefined ? 'nsenter' : 'unshare', argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ status: number; at: Date }>((resolve) => child.once('exit', (code, signal) => resolve({
    status: code ?? 128 + (signal ? (({ SIGKILL: 9, SIGTERM: 15 }) as Record<string, number>)[signal] ?? 9 : 0), at: new Date(),
  })));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const spawned = child.pid;
  child.unref();
  const mine = { ipc: nsId('/proc/self/ns/ipc'), uts: nsId('/proc/self/ns/uts'), pid: nsId('/proc/self/ns/pid') };
  const differs = (pid: number, kind: 'ipc' | 'uts' | 'pid', fresh: boolean): boolean => {
    const id = nsId(`/proc/${pid}/ns/${kind}`);
    return id !== undefined && (id !== mine[kind]) === fresh;
  };
  const holderPid = (): number | undefined => {
    if (spawned === undefined || !o.pid) return spawned;
    try {
      const kids = fs.readFileSync(`/proc/${spawned}/task/${spawned}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      return kids.length === 1 ? Number(kids[0]) : undefined;
    } catch {
      return undefined;
    }
  };
  const deadline = Date.now() + timeoutMs;
  let failure: string | undefined;
  while (spawned !== undefined && Date.now() < deadline) {
    const pid = holderPid();
    const ready = pid !== undefined && nsId(`/proc/${pid}/ns/net`) === want && differs(pid, 'ipc', o.ipc) && differs(pid, 'uts', o.uts)
      && differs(pid, 'pid', o.pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\0');
    const startTime = ready ? processStartTime(pid) : undefined;
    if (pid !== undefined && startTime) {
      child.stderr?.destroy();
      const h = { pid, startTime };
      try {
        await configure(pid, o);
      } catch (err: unknown) {
        killIfSame(h);
        throw err;
      }
      return { ...h, exited };
    }
    const early = await Promise.race([exited, spawnError, new Promise<undefined>((r) => setTimeout(r, 5))]);
    if (early instanceof Error) throw new Error(`sandbox holder: ${early.message}`);
    if (early !== undefined) {
      // 'exit' can come before the last of stderr: wait (briefly) for the stream to close.
      await Promise.race([new Promise((r) => (child.stderr?.readableEnded ? r(undefined) : child.stderr?.once('close', r))), new Promise((r) => setTimeout(r, 500))]);
      failure = `exited with status ${early.status}: ${stderr.trim()}`;
      break;
    }
  }
  if (spawned !== undefined) {
    try {
      process.kill(spawned, 'SIGKILL');
    } catch {
      // gone
    }
  }
  throw new Error(`sandbox holder in ${o.netnsPath ?? 'the host network namespace'} ${failure ?? `not in its namespaces after ${timeoutMs} ms`}`);
}

/** Hostname and sysctls, set from inside the holder's namespaces (argv only, values validated above). */
async function configure(pid: number, o: HolderOptions): Promise<void> {
  if (o.hostname) {
    const r = await run('nsenter', [`--uts=/proc/${pid}/ns/uts`, '--', 'hostname', o.hostname], { timeoutMs: 5_000 });
    if (r.code !== 0) throw new Error(`setting the pod hostname: ${r.stderr.trim() || `status ${r.code}`}`);
  }
  for (const [k, v] of Object.entries(o.sysctls ?? {})) {
    const file = sysctlPath(k);
    const r = await run('nsenter', [`--net=/proc/${pid}/ns/net`, `--ipc=/proc/${pid}/ns/ipc`, '--', 'tee', file], { input: v, timeoutMs: 5_000 });
    if (r.code !== 0) throw new Error(`sysctl ${k}=${v}: ${r.stderr.trim() || `status ${r.code}`}`);
  }
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
