// virtiofsd for a virtio-fs root, confined like the monitor it serves: one per container, run by
// `runc exec` inside the monitor's container (its namespaces, cgroup, monitor root, user and
// capabilities, no_new_privs), sharing /cntrRootfs of the monitor root on a socket in the scratch
// dir, where qemu connects. urunc starts it from its own process inside the container with the
// configured options (default --cache always --sandbox none); here the sandbox is always ours:
// `chroot` into the shared dir when the container runs as root and may chroot (CAP_SYS_CHROOT, in
// containerd's default set; virtiofsd allows chroot to root only), else none: an unprivileged
// virtiofsd with no capabilities, under its own seccomp filter, in the monitor's confinement.
// (virtiofsd's `namespace` sandbox needs CAP_SYS_ADMIN, or a fresh user namespace that may mount
// a /proc, which the container's masked /proc forbids: measured.) The seed mode adds --readonly.
import fs from 'node:fs';

export type VirtiofsdSandbox = 'chroot' | 'none';

/** The argv: urunc's socket and shared-dir arguments, the configured options, then our sandbox (and --readonly). */
export function virtiofsdArgv(binary: string, options: string, socket: string, sharedDir: string, o: { sandbox: VirtiofsdSandbox; readonly: boolean }): string[] {
  const words = options.split(/\s+/).filter(Boolean);
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (w === '--sandbox') i++;
    else if (!w.startsWith('--sandbox=') && w !== '--readonly') kept.push(w);
  }
  return [binary, `--socket-path=${socket}`, '--shared-dir', sharedDir, ...kept, '--sandbox', o.sandbox, ...(o.readonly ? ['--readonly'] : [])];
}

export interface Capabilities {
  bounding?: string[];
  effective?: string[];
  permitted?: string[];
}

/** chroot when the container's process is root holding CAP_SYS_CHROOT (effective, permitted and bounding), else none. */
export function virtiofsdSandbox(uid: number, caps: Capabilities | undefined): VirtiofsdSandbox {
  const has = (set: string[] | undefined) => (set ?? []).includes('CAP_SYS_CHROOT');
  return uid === 0 && has(caps?.effective) && has(caps?.permitted) && has(caps?.bounding) ? 'chroot' : 'none';
}

/** Whether the configured virtiofsd can run at all (a virtio-fs plan needs it before Create commits to one). */
export function virtiofsdAvailable(binary: string): boolean {
  try {
    fs.accessSync(binary, fs.constants.X_OK);
    return fs.statSync(binary).isFile();
  } catch {
    return false;
  }
}

/** Whether a pid is a live (not zombie) process. */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** The last bytes of virtiofsd's log, for an error message. */
function logTail(logFile: string): string {
  try {
    const fd = fs.openSync(logFile, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 2000);
      const b = Buffer.alloc(len);
      fs.readSync(fd, b, 0, len, size - len);
      return b.toString('utf8').trim();
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Waits until virtiofsd (already started) listens on its socket; fails with its own words if it dies first. */
export async function waitForVirtiofsd(pid: number, socket: string, logFile: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (fs.existsSync(socket)) return;
    const alive = running(pid);
    if (!alive || Date.now() > deadline) {
      const tail = logTail(logFile);
      throw new Error(`virtiofsd ${alive ? 'did not create its socket in time' : 'exited'}${tail ? `: ${tail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
