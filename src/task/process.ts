// One process of a task (the init or an exec) and its state machine:
//   created -> running <-> paused -> stopped -> (deleted: dropped by the service)
// Exits are recorded once; while Start is in flight they are held so that TaskStart /
// TaskExecStarted always precede TaskExit.
import { failedPrecondition } from '../errors.js';
import type { ProcessIO } from './stdio.js';
import type { ExitInfo, ProcessState, Status } from './types.js';

export class Proc {
  status: Status = 'created';
  pid = 0;
  exit: ExitInfo | undefined;
  io: ProcessIO | undefined;
  /** Set while Start runs; an exit seen meanwhile waits in heldExit. */
  starting = false;
  heldExit: { status: number; at: Date } | undefined;
  private readonly exited: Promise<ExitInfo>;
  private resolveExit!: (e: ExitInfo) => void;

  constructor(
    readonly containerId: string,
    readonly execId: string,
    readonly bundle: string,
    readonly stdio: { stdin: string; stdout: string; stderr: string; terminal: boolean },
    /** exec only: the OCI Process JSON. */
    readonly spec?: Uint8Array,
  ) {
    this.exited = new Promise((r) => (this.resolveExit = r));
  }

  get isInit(): boolean {
    return this.execId === '';
  }

  /** Running in the sense of "has a live pid": running or paused. */
  get alive(): boolean {
    return this.status === 'running' || this.status === 'paused' || this.status === 'pausing';
  }

  setExited(exitStatus: number, exitedAt: Date): ExitInfo {
    const info = { pid: this.pid, exitStatus, exitedAt };
    this.exit = info;
    this.status = 'stopped';
    this.resolveExit(info);
    return info;
  }

  wait(): Promise<ExitInfo> {
    return this.exited;
  }

  requireStatus(allowed: readonly Status[], action: string): void {
    if (!allowed.includes(this.status)) {
      throw failedPrecondition(`cannot ${action} ${this.label} in ${this.status} state`);
    }
  }

  get label(): string {
    return this.isInit ? `task ${this.containerId}` : `exec ${this.execId} of ${this.containerId}`;
  }

  state(): ProcessState {
    return {
      id: this.containerId,
      execId: this.execId,
      bundle: this.bundle,
      pid: this.pid,
      status: this.status,
      stdin: this.stdio.stdin,
      stdout: this.stdio.stdout,
      stderr: this.stdio.stderr,
      terminal: this.stdio.terminal,
      exitStatus: this.exit?.exitStatus ?? 0,
      exitedAt: this.exit?.exitedAt,
    };
  }
}
