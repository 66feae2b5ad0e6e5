// virtiofsd for a virtio-fs root: one daemon per container, started by the shim on the host with
// the configured binary and options (urunc's defaults: --cache always --sandbox none), sharing the
// container's rootfs on a socket in the monitor's scratch directory, where qemu connects to it.
import fs from 'node:fs';
import { messageOf } from '../errors.js';
import { spawnOwned } from '../sys/spawn.js';

export function virtiofsdArgv(binary: string, options: string, socket: string, sharedDir: string): string[] {
  return [binary, `--socket-path=${socket}`, '--shared-dir', sharedDir, ...options.split(/\s+/).filter(Boolean)];
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

/** Starts virtiofsd and waits for its socket; the pid is the caller's to record and kill. */
export async function startVirtiofsd(argv: string[], socket: string, timeoutMs = 10_000): Promise<number> {
  const [bin, ...args] = argv;
  const child = spawnOwned(bin as string, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(messageOf(err)));
    child.once('exit', (code, sig) => resolve(`exited with ${code ?? sig}`));
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (fs.existsSync(socket)) {
      child.stderr?.destroy();
      child.unref();
      return child.pid as number;
    }
    const early = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 20))]);
    if (early !== undefined || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`virtiofsd ${early ?? 'did not create its socket in time'}${stderr ? `: ${stderr.trim()}` : ''}`);
    }
  }
}
