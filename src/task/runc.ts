// The runc CLI, driven the way containerd's runc shim drives it: argv arrays, a per-namespace
// --root, and a JSON --log file whose last error becomes the error message (stdout/stderr of
// `create`/`exec` belong to the container).
import fs from 'node:fs';
import path from 'node:path';
import { Code, ShimError } from '../errors.js';
import { run, spawnOwned } from '../sys/spawn.js';
import type { CheckpointOpts } from './types.js';

export interface RuncStdio {
  stdin: number | 'ignore';
  stdout: number | 'ignore';
  stderr: number | 'ignore';
}

/** What runc checkpoint and restore take: containerd.runc.v1.CheckpointOptions, as containerd's runc shim passes them. */
export type CriuOptions = Omit<CheckpointOpts, 'exit'>;

export class Runc {
  constructor(
    readonly root: string,
    readonly binary = process.env.URUNC_RUNC_BINARY || 'runc',
  ) {}

  /** Where runc keeps its state for one containerd state dir and namespace. */
  static rootFor(bundle: string, namespace: string): string {
    // bundle = <containerd state>/io.containerd.runtime.v2.task/<ns>/<id>
    const state = path.resolve(bundle, '..', '..', '..');
    return path.join(state, 'urunc', namespace);
  }

  private base(logFile: string): string[] {
    return ['--root', this.root, '--log', logFile, '--log-format', 'json'];
  }

  async create(id: string, bundle: string, o: { pidFile: string; consoleSocket?: string; stdio: RuncStdio }): Promise<number> {
    const log = path.join(bundle, 'runc-log.json');
    const args = [...this.base(log), 'create', '--bundle', bundle, '--pid-file', o.pidFile];
    if (o.consoleSocket) args.push('--console-socket', o.consoleSocket);
    args.push(id);
    await this.runWithStdio(args, o.stdio, log, `runc create ${id}`);
    return readPid(o.pidFile);
  }

  async exec(id: string, bundle: string, o: { processFile: string; pidFile: string; consoleSocket?: string; stdio: RuncStdio }): Promise<number> {
    const log = path.join(bundle, 'runc-log.json');
    const args = [...this.base(log), 'exec', '--process', o.processFile, '--detach', '--pid-file', o.pidFile];
    if (o.consoleSocket) args.push('--console-socket', o.consoleSocket);
    args.push(id);
    await this.runWithStdio(args, o.stdio, log, `runc exec ${id}`);
    return readPid(o.pidFile);
  }

  /** Dumps the container's processes with criu into o.imagePath; they keep running unless `exit`. */
  async checkpoint(id: string, bundle: string, o: CriuOptions & { exit: boolean }): Promise<void> {
    const args = ['checkpoint', ...criuArgs(o)];
    if (!o.exit) args.push('--leave-running');
    await this.simple(bundle, [...args, id]);
  }

  /**
   * Restores a container from criu images into a running, detached init (runc restore), with the
   * given stdio: runc hands it to criu in place of the pipes the dumped processes had.
   */
  async restore(id: string, bundle: string, o: CriuOptions & { pidFile: string; consoleSocket?: string; stdio: RuncStdio }): Promise<number> {
    const log = path.join(bundle, 'runc-log.json');
    const args = [...this.base(log), 'restore', ...criuArgs(o), '--detach', '--no-subreaper', '--bundle', bundle, '--pid-file', o.pidFile];
    if (o.consoleSocket) args.push('--console-socket', o.consoleSocket);
    args.push(id);
    await this.runWithStdio(args, o.stdio, log, `runc restore ${id}`);
    return readPid(o.pidFile);
  }

  async start(id: string, bundle: string): Promise<void> {
    await this.simple(bundle, ['start', id]);
  }

  async kill(id: string, bundle: string, signal: number, all: boolean): Promise<void> {
    await this.simple(bundle, ['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  async delete(id: string, bundle: string, force: boolean): Promise<void> {
    await this.simple(bundle, ['delete', ...(force ? ['--force'] : []), id]);
  }

  async pause(id: string, bundle: string): Promise<void> {
    await this.simple(bundle, ['pause', id]);
  }

  async resume(id: string, bundle: string): Promise<void> {
    await this.simple(bundle, ['resume', id]);
  }

  async update(id: string, bundle: string, resourcesJson: string): Promise<void> {
    await this.simple(bundle, ['update', '--resources', '-', id], resourcesJson);
  }

  async ps(id: string, bundle: string): Promise<number[]> {
    const out = await this.simple(bundle, ['ps', '--format', 'json', id]);
    const parsed: unknown = JSON.parse(out || '[]');
    if (!Array.isArray(parsed)) return [];
    return parsed.filter((p): p is number => typeof p === 'number');
  }

  /** One `runc events --stats` sample (libcontainer's types.Stats JSON). */
  async stats(id: string, bundle: string): Promise<unknown> {
    const out = await this.simple(bundle, ['events', '--stats', id]);
    const ev = JSON.parse(out) as { data?: unknown };
    return ev.data;
  }

  private async simple(bundle: string, args: string[], input?: string): Promise<string> {
    const log = path.join(bundle, 'runc-log.json');
    const res = await run(this.binary, [...this.base(log), ...args], { input, cwd: bundle });
    const output = res.stdout + (res.stderr ? `\n${res.stderr}` : '');
    if (res.code !== 0) throw runcError(`runc ${args[0]}`, output, log);
    return output.trim();
  }

  private runWithStdio(args: string[], stdio: RuncStdio, log: string, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawnOwned(this.binary, args, { stdio: [stdio.stdin, stdio.stdout, stdio.stderr] });
      child.once('error', reject);
      child.once('exit', (code) => {
        if (code === 0) resolve();
        else reject(runcError(what, '', log));
      });
    });
  }
}

function criuArgs(o: CriuOptions): string[] {
  const args = ['--image-path', o.imagePath, '--work-path', o.workPath];
  if (o.openTcp) args.push('--tcp-established');
  if (o.externalUnixSockets) args.push('--ext-unix-sk');
  if (o.terminal) args.push('--shell-job');
  if (o.fileLocks) args.push('--file-locks');
  for (const ns of o.emptyNamespaces ?? []) args.push('--empty-ns', ns);
  if (o.cgroupsMode) args.push('--manage-cgroups-mode', o.cgroupsMode);
  return args;
}

function readPid(file: string): number {
  const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) throw new ShimError(Code.Internal, `bad pid file ${file}`);
  return pid;
}

/** The last error runc logged, mapped to the code containerd expects (missing container = NotFound). */
function runcError(what: string, output: string, logFile: string): ShimError {
  let msg = output.trim();
  try {
    const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n').reverse();
    for (const line of lines) {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if (entry.level === 'error' && entry.msg) {
        msg = entry.msg;
        break;
      }
    }
  } catch {
    // no log: keep the captured output
  }
  const lower = msg.toLowerCase();
  const code = lower.includes('does not exist') || lower.includes('not found') ? Code.NotFound
    : lower.includes('not running') || lower.includes('process already finished') ? Code.NotFound
    : Code.Unknown;
  return new ShimError(code, `${what}: ${msg || 'failed'}`);
}
