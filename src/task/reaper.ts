// Exit collection. The daemon is a child subreaper, so container inits and exec'd processes are
// re-parented to it; each is reaped with a targeted waitpid (never waitpid(-1), which would steal
// the statuses libuv waits for). A sweep also reaps zombies nobody watches yet and keeps their
// statuses: an exec'd process can exit before `runc exec` has told us its pid, and watch() must
// still get its real status.
import fs from 'node:fs';
import { reapPid, Errno, ECHILD } from '../sys/libc.js';
import { isOwnedChild } from '../sys/spawn.js';

export type ExitHandler = (status: number, exitedAt: Date) => void;

/** How many unclaimed exits are kept (oldest dropped first); pids do not recycle that fast. */
const UNCLAIMED_MAX = 1024;

export class Reaper {
  private readonly watched = new Map<number, ExitHandler>();
  /** Exits reaped by the sweep before anyone watched the pid, in reap order. */
  private readonly unclaimed = new Map<number, { status: number; at: Date }>();
  private installed = false;

  install(): void {
    if (this.installed) return;
    this.installed = true;
    process.on('SIGCHLD', () => this.poll());
  }

  /** Calls onExit once when pid exits. Checks that pid at once: the exit may already have happened. */
  watch(pid: number, onExit: ExitHandler): void {
    const early = this.unclaimed.get(pid);
    if (early) {
      this.unclaimed.delete(pid);
      onExit(early.status, early.at);
      return;
    }
    this.watched.set(pid, onExit);
    this.reap(pid, onExit);
  }

  unwatch(pid: number): void {
    this.watched.delete(pid);
  }

  /** On SIGCHLD: every watched pid, then stray zombies. */
  poll(): void {
    for (const [pid, onExit] of [...this.watched]) this.reap(pid, onExit);
    this.sweep();
  }

  private reap(pid: number, onExit: ExitHandler): void {
    let res;
    try {
      res = reapPid(pid);
    } catch (err: unknown) {
      // ECHILD: not our child (never re-parented, or reaped elsewhere). Report it as gone.
      if (err instanceof Errno && err.errno === ECHILD && !fs.existsSync(`/proc/${pid}`)) {
        this.watched.delete(pid);
        onExit(255, new Date());
      }
      return;
    }
    if (res) {
      this.watched.delete(pid);
      onExit(res.status, new Date());
    }
  }

  private remember(pid: number, status: number): void {
    this.unclaimed.delete(pid);
    this.unclaimed.set(pid, { status, at: new Date() });
    if (this.unclaimed.size > UNCLAIMED_MAX) {
      const oldest = this.unclaimed.keys().next().value;
      if (oldest !== undefined) this.unclaimed.delete(oldest);
    }
  }

  /** Reaps zombie children that are neither watched nor spawned through spawnOwned. */
  private sweep(): void {
    let children: number[] = [];
    try {
      for (const tid of fs.readdirSync('/proc/self/task')) {
        const list = fs.readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
        if (list) children = children.concat(list.split(/\s+/).map(Number));
      }
    } catch {
      return;
    }
    for (const pid of children) {
      if (this.watched.has(pid) || isOwnedChild(pid)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        if (state !== 'Z') continue;
        const res = reapPid(pid);
        if (res) this.remember(pid, res.status);
      } catch {
        // already gone
      }
    }
  }
}
