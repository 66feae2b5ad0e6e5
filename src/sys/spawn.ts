// Child processes the shim starts itself (runc, loggers, mount(8), ip/tc/iptables, virtiofsd). Their pids are recorded so the reaper's
// sweep of stray zombies never steals a status libuv is waiting for.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const owned = new Set<number>();

export function isOwnedChild(pid: number): boolean {
  return owned.has(pid);
}

export function spawnOwned(file: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(file, args, opts);
  const pid = child.pid;
  if (pid !== undefined) {
    owned.add(pid);
    child.once('exit', () => owned.delete(pid));
  }
  return child;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion; rejects on spawn failure. stdin, if given, is written then closed;
 * timeoutMs kills it (status 137). Always through spawnOwned: the reaper's sweep must not steal the exit.
 */
export function run(file: string, args: readonly string[], opts: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const { input, timeoutMs, ...rest } = opts;
    const child = spawnOwned(file, args, { stdio: [input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'], ...rest });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    const timer = timeoutMs ? setTimeout(() => child.kill('SIGKILL'), timeoutMs) : undefined;
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const rc = code ?? 128 + (signal ? 9 : 0);
      resolve({ code: rc, stdout, stderr });
    });
    if (input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input);
    }
  });
}

/** run(), but a non-zero status throws `<what>: <stderr, or the status>`; resolves to stdout. */
export async function runChecked(what: string, file: string, args: readonly string[], opts: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await run(file, args, opts);
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr.trim() || `exit status ${r.code}`}`);
  return r.stdout;
}
