// The task service: registry of containers, each an init process plus execs, driven through runc.
// Owns every container's runc state, rootfs mount and IO from Create until Delete.
// Invariants: TaskCreate -> TaskStart -> TaskExit -> TaskDelete per init; ExecAdded -> ExecStarted
// -> TaskExit per exec; an init's TaskExit is published only after all its execs have exited.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { alreadyExists, failedPrecondition, invalidArgument, messageOf, notFound, unimplemented } from '../errors.js';
import { unmountAll } from '../rootfs/mounts.js';
import { armed, blockLoopIfArmed, failpoint } from '../sys/failpoints.js';
import { Proc } from './process.js';
import type { Reaper } from './reaper.js';
import { Runc } from './runc.js';
import { ProcessIO } from './stdio.js';
import type { CheckpointOpts, CreateRequest, EventSink, ExecRequest, ExitInfo, ProcessState } from './types.js';
import { readSpec } from './spec.js';
import { oomKills } from './oom.js';
import { validateId } from './identifiers.js';
import { setupContainer } from './container-kind.js';
import { specRootfs } from './image-files.js';
import type { UnikernelHost, UnikernelTask } from './setup-types.js';
import type { OciSpec } from '../monitors/launcher.js';
import type { Watchdog } from '../monitors/watchdog.js';
import { withVmmOverhead, type MemoryResources } from '../monitors/vmm-overhead.js';
import { hooksOf, runHooks, type OciState } from './hooks.js';
import { lazyOnce } from '../sys/lazy.js';
import { bounded } from '../sys/off-loop.js';

/** Unikernel-only code (src/task/vm.ts), loaded with the first unikernel or checkpoint. */
type VmModule = typeof import('./vm.js');
/** Checkpoint and restore of ordinary containers, loaded with the first checkpoint. */
const criuModule = lazyOnce(() => import('./criu.js'));
const vmModule = lazyOnce(() => import('./vm.js'));

/** The runc operations the service uses; the real CLI wrapper or a recording fake in unit tests. */
export type RuncLike = Pick<Runc, 'create' | 'start' | 'exec' | 'kill' | 'delete' | 'pause' | 'resume' | 'update' | 'ps' | 'stats' | 'checkpoint' | 'restore'>;
export type ReaperLike = Pick<Reaper, 'watch' | 'unwatch'>;

/** Where one task's log lines go (its bundle's log fifo in the daemon); released at Delete. */
export interface TaskLog {
  log: Logger;
  close(): void;
}
export type TaskLogFactory = (bundle: string, namespace: string, id: string) => TaskLog;

interface Container {
  id: string;
  tlog: TaskLog;
  namespace: string;
  bundle: string;
  unikernel: UnikernelTask | undefined;
  watchdog: Watchdog | undefined;
  /** runc is run from the container's own bundle (its log and cwd) after Create, also for a unikernel, whose monitor bundle may be released first. */
  runc: RuncLike;
  init: Proc;
  execs: Map<string, Proc>;
  /** Where Create mounted the rootfs (owned by the task, unmounted at Delete); undefined when containerd gave no mounts. */
  mountedRootfs: string | undefined;
  /** The init's exit, held until the last exec has exited. */
  initExitHeld: boolean;
  cgroupsPath: string | undefined;
  /** Delete of the init is in flight: the task counts as gone for a second Delete. */
  deleting: boolean;
  /** A unikernel's OCI hooks and the fields of its state (runc runs an ordinary container's hooks itself). */
  hooks: { spec: OciSpec } | undefined;
  /** A unikernel's resources, released as soon as its hypervisor exited (off Delete's critical path). */
  released?: Promise<void>;
  /** Paused through QMP (`stop`), so resumed with `cont`; else through runc's freezer. */
  pausedVm?: boolean;
  /** Restoring: the saved VM state (a copy in the bundle) that Start streams into the waiting qemu. */
  restoreFile?: string;
  /** Restoring an ordinary container: the criu images `runc restore` takes at Start (the init has no pid until then). */
  criuImages?: string;
}

/** How many times Delete tries to release a unikernel's rootfs resources before it reports them left behind. */
const RELEASE_ATTEMPTS = 3;

/** How long Delete waits for output still held open by the container's orphans. */
const IO_DRAIN_MS = 2000;

export class TaskService {
  private readonly containers = new Map<string, Container>();
  /** Ids whose Create is in flight: a concurrent Create of the same id is AlreadyExists. */
  private readonly creating = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly reaper: ReaperLike,
    private readonly events: EventSink,
    private readonly runcFor: (bundle: string, namespace: string) => RuncLike = (bundle, ns) => new Runc(Runc.rootFor(bundle, ns)),
    private readonly logFor: TaskLogFactory = (_b, namespace, id) => ({ log: log.child({ namespace, id }), close: () => undefined }),
    private readonly unikernels: UnikernelHost = { kvmUsable: () => false },
  ) {}

  /** Unikernel-only code, set once the first unikernel (or checkpoint) loaded it; every unikernel container implies it. */
  private vm: VmModule | undefined;

  private async vmModule(): Promise<VmModule> {
    this.vm ??= await vmModule();
    return this.vm;
  }

  get size(): number {
    return this.containers.size;
  }

  /** The bundles of the tasks held now. */
  bundles(): string[] {
    return [...this.containers.values()].map((c) => c.bundle);
  }

  async create(namespace: string, req: CreateRequest): Promise<number> {
    validateId('task', req.id);
    if (this.containers.has(req.id) || this.creating.has(req.id)) throw alreadyExists(`task ${req.id}`);
    this.creating.add(req.id);
    try {
      return await this.createTask(namespace, req);
    } finally {
      this.creating.delete(req.id);
    }
  }

  private async createTask(namespace: string, req: CreateRequest): Promise<number> {
    blockLoopIfArmed(6_000);
    if (req.checkpoint && !path.isAbsolute(req.checkpoint)) throw invalidArgument(`checkpoint ${req.checkpoint} is not absolute`);
    // A VM's checkpoint (urunc-checkpoint.json) or an ordinary container's (criu images).
    const criu = req.checkpoint ? await criuModule() : undefined;
    const criuImages = req.checkpoint && criu?.isCriuCheckpoint(req.checkpoint) ? req.checkpoint : undefined;
    const manifest = req.checkpoint && !criuImages ? (await this.vmModule()).readManifest(req.checkpoint) : undefined;
    if (!path.isAbsolute(req.bundle)) throw invalidArgument(`bundle ${req.bundle} is not absolute`);
    let spec = readSpec(req.bundle);
    const sandboxId = spec.annotations?.['io.kubernetes.cri.sandbox-id'];
    if (sandboxId && spec.annotations?.['io.kubernetes.cri.container-type'] === 'container' && this.unikernels.podFiles?.(namespace, sandboxId, req.bundle)) {
      spec = readSpec(req.bundle);
    }
    const runc = this.runcFor(req.bundle, namespace);
    const rootfs = specRootfs(req.bundle, spec as OciSpec);
    const init = new Proc(req.id, '', req.bundle, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal });
    const tlog = this.logFor(req.bundle, namespace, req.id);
    const undo: Array<() => Promise<void> | void> = [() => tlog.close()];
    let unikernel: UnikernelTask | undefined;
    let mountedRootfs: string | undefined;
    let runcBundle = req.bundle;
    let restoreFile: string | undefined;
    try {
      ({ unikernel, mountedRootfs } = await setupContainer({
        host: this.unikernels, log: tlog.log, namespace, id: req.id, bundle: req.bundle, rootfs, mounts: req.rootfs,
        spec: spec as OciSpec, configPath: req.configPath, undo: (step) => undo.push(step), restore: manifest !== undefined,
      }));
      if (manifest && !unikernel) throw invalidArgument('restoring a checkpoint: it holds a unikernel VM, and this container is not a unikernel');
      if (criuImages && unikernel) throw invalidArgument('restoring a checkpoint: it holds an ordinary container (criu images), and this container is a unikernel');
      if (unikernel) runcBundle = unikernel.plan.runcBundle;
      const vm = unikernel ? await this.vmModule() : undefined;
      if (manifest && unikernel && req.checkpoint) restoreFile = await (vm as VmModule).stageRestore(req.checkpoint, manifest, unikernel, req.bundle);
      const io = await ProcessIO.open(init.stdio, { containerId: req.id, namespace });
      init.io = io;
      undo.push(() => io.destroy());
      failpoint('task.runc-create');
      // A restore runs at Start, as containerd's runc shim does it: runc has no created state for one.
      if (!criuImages) {
        const pidCreate = runc.create(req.id, runcBundle, {
          pidFile: path.join(req.bundle, 'init.pid'),
          consoleSocket: io.consoleSocket,
          stdio: io.stdio,
        });
        undo.push(() => runc.delete(req.id, runcBundle, true).catch(() => undefined));
        init.pid = await pidCreate;
        await io.receiveConsole();
        io.releaseChildFds();
      }
      if (unikernel) {
        await (vm as VmModule).startVirtiofsd(req.id, unikernel, runc);
        const st = ociState(req.id, req.bundle, spec as OciSpec, init.pid, 'creating');
        // prestart (deprecated, still Docker 26's network hook) runs where runc runs it: with createRuntime.
        await runHooks(hooksOf(spec, 'prestart'), 'prestart', st);
        await runHooks(hooksOf(spec, 'createRuntime'), 'createRuntime', st);
        await runHooks(hooksOf(spec, 'createContainer'), 'createContainer', st);
      }
    } catch (err: unknown) {
      for (const u of undo.reverse()) {
        try {
          await u();
        } catch (e: unknown) {
          this.log.warn({ err: e, id: req.id }, 'create rollback step failed');
        }
      }
      await criu?.removeExtractedCheckpoint(req.checkpoint);
      throw err;
    }
    // A VM's state is staged in the bundle by now; criu's images are read by runc restore at Start.
    if (!criuImages) await criu?.removeExtractedCheckpoint(req.checkpoint);
    tlog.log.info({ pid: init.pid }, 'task created');
    const c: Container = {
      id: req.id, tlog, namespace, bundle: req.bundle, unikernel, watchdog: undefined, runc, init, execs: new Map(),
      mountedRootfs, initExitHeld: false, cgroupsPath: spec.linux?.cgroupsPath, deleting: false, restoreFile, criuImages,
      hooks: unikernel ? { spec: spec as OciSpec } : undefined,
    };
    this.containers.set(req.id, c);
    this.events.publish(namespace, {
      topic: '/tasks/create', containerId: req.id, bundle: req.bundle, rootfs: req.rootfs,
      io: { ...init.stdio }, checkpoint: req.checkpoint, pid: init.pid,
    });
    if (!criuImages) this.reaper.watch(init.pid, (status, at) => this.exited(c, init, status, at));
    return init.pid;
  }

  async start(id: string, execId: string): Promise<number> {
    const c = this.get(id);
    const p = this.proc(c, execId);
    p.requireStatus(['created'], 'start');
    if (p.starting) throw failedPrecondition(`${p.label} is already starting`);
    p.starting = true;
    try {
      if (p.isInit) {
        if (c.unikernel && c.hooks) {
          await (await this.vmModule()).launchAtStart(c.unikernel, { namespace: c.namespace, id, bundle: c.bundle, spec: c.hooks.spec, pid: p.pid, log: c.tlog.log });
        }
        if (c.hooks) await runHooks(hooksOf(c.hooks.spec, 'startContainer'), 'startContainer', ociState(id, c.bundle, c.hooks.spec, p.pid, 'created'));
        if (c.criuImages) await this.restoreContainer(c);
        else await c.runc.start(id, c.bundle);
        p.status = 'running';
        this.armWatchdog(c);
        if (c.restoreFile) await this.loadRestored(c);
        if (c.hooks) {
          await runHooks(hooksOf(c.hooks.spec, 'poststart'), 'poststart', ociState(id, c.bundle, c.hooks.spec, p.pid, 'running'))
            .catch((err: unknown) => c.tlog.log.warn({ err: messageOf(err) }, 'poststart hook'));
        }
        this.events.publish(c.namespace, { topic: '/tasks/start', containerId: id, pid: p.pid });
        if (armed('task.uncaught')) {
          // A bug in this container's asynchronous handling: an exception nobody catches and a rejected promise nobody awaits.
          setImmediate(() => {
            throw new Error(`failpoint task.uncaught (${id})`);
          });
          void Promise.reject(new Error(`failpoint task.uncaught (${id}): rejection`));
        }
      } else {
        if (!c.init.alive) throw failedPrecondition(`cannot start exec ${execId}: task ${id} is ${c.init.status}`);
        await this.startExec(c, p);
        this.events.publish(c.namespace, { topic: '/tasks/exec-started', containerId: id, execId, pid: p.pid });
      }
    } finally {
      p.starting = false;
    }
    const held = p.heldExit;
    if (held) {
      p.heldExit = undefined;
      this.onExit(c, p, held.status, held.at);
    }
    return p.pid;
  }

  /** Start of an ordinary container created from a checkpoint: runc restore, then the restored init is watched. */
  private async restoreContainer(c: Container): Promise<void> {
    const io = c.init.io as ProcessIO;
    const t0 = Date.now();
    const images = c.criuImages as string;
    const criu = await criuModule();
    const pid = await criu.criuRestore(c.runc, c.id, c.bundle, images, io).finally(() => criu.removeExtractedCheckpoint(images));
    c.criuImages = undefined;
    c.init.pid = pid;
    this.reaper.watch(pid, (status, at) => this.exited(c, c.init, status, at));
    await io.receiveConsole();
    io.releaseChildFds();
    c.tlog.log.info({ pid, ms: Date.now() - t0 }, 'container restored (criu)');
  }

  private async startExec(c: Container, p: Proc): Promise<void> {
    const dir = path.join(c.bundle, 'execs');
    fs.mkdirSync(dir, { recursive: true });
    const processFile = path.join(dir, `${p.execId}.json`);
    fs.writeFileSync(processFile, p.spec ?? new Uint8Array());
    const io = await ProcessIO.open(p.stdio, { containerId: c.id, namespace: c.namespace });
    p.io = io;
    try {
      p.pid = await c.runc.exec(c.id, c.bundle, {
        processFile,
        pidFile: path.join(dir, `${p.execId}.pid`),
        consoleSocket: io.consoleSocket,
        stdio: io.stdio,
      });
      await io.receiveConsole();
      io.releaseChildFds();
    } catch (err: unknown) {
      io.destroy();
      p.io = undefined;
      throw err;
    }
    p.status = 'running';
    this.reaper.watch(p.pid, (status, at) => this.exited(c, p, status, at));
  }

  /**
   * A process is gone: its exit is reported once its output has reached the client (the copies end
   * when the client has read the last byte, or after IO_DRAIN_MS), never before: a containerd client
   * closes its fifo readers as soon as it learns of the exit (see copy in stdio.ts).
   */
  private exited(c: Container, p: Proc, status: number, at: Date): void {
    if (!p.io) return this.onExit(c, p, status, at);
    void p.io.drain(IO_DRAIN_MS).then(() => this.onExit(c, p, status, at));
  }

  private onExit(c: Container, p: Proc, status: number, at: Date): void {
    if (p.exit) return;
    if (p.starting) {
      p.heldExit = { status, at };
      return;
    }
    if (p.isInit && c.unikernel && status === c.unikernel.plan.haltStatus) {
      c.tlog.log.info({ monitorStatus: status }, 'the guest halted normally through its exit device');
      status = 0;
    }
    c.tlog.log.info({ execId: p.execId || undefined, pid: p.pid, status }, 'process exited');
    p.setExited(status, at);
    if (p.isInit) {
      c.watchdog?.stop();
      if (oomKills(c.cgroupsPath) > 0) this.events.publish(c.namespace, { topic: '/tasks/oom', containerId: c.id });
      const running = [...c.execs.values()].filter((e) => e.alive);
      if (running.length > 0) {
        c.initExitHeld = true;
        for (const e of running) killQuietly(e.pid, 9);
        return;
      }
      this.publishExit(c, p);
      // Nothing of a unikernel's resources (monitor root, network, view, mounts) is needed once its
      // hypervisor is gone: release them now, while the exit travels to the client, not in Delete.
      if (c.unikernel) c.released = new Promise((r) => setImmediate(r)).then(() => this.releaseResources(c));
      return;
    }
    this.publishExit(c, p);
    if (c.initExitHeld && ![...c.execs.values()].some((e) => e.alive)) {
      c.initExitHeld = false;
      this.publishExit(c, c.init);
    }
  }

  private publishExit(c: Container, p: Proc): void {
    const e = p.exit as ExitInfo;
    this.events.publish(c.namespace, {
      topic: '/tasks/exit', containerId: c.id, id: p.isInit ? c.id : p.execId,
      pid: e.pid, exitStatus: e.exitStatus, exitedAt: e.exitedAt,
    });
  }

  async delete(id: string, execId: string): Promise<ExitInfo> {
    const c = this.get(id);
    const p = this.proc(c, execId);
    if (!p.isInit) {
      if (p.alive || p.starting) throw failedPrecondition(`cannot delete running ${p.label}`);
      c.execs.delete(execId);
      await p.io?.drain(IO_DRAIN_MS);
      p.io?.destroy();
      return p.exit ?? { pid: p.pid, exitStatus: 0, exitedAt: new Date() };
    }
    if (c.deleting) throw notFound(`task ${id}`);
    if (p.alive || p.starting) throw failedPrecondition(`cannot delete running ${p.label}`);
    if ([...c.execs.values()].some((e) => e.alive)) throw failedPrecondition(`task ${id} still has running execs`);
    c.deleting = true;
    if (c.criuImages) {
      // Created from a checkpoint and never restored: there is no process and no runc container.
      if (!p.exit) p.setExited(137, new Date());
      await (await criuModule()).removeExtractedCheckpoint(c.criuImages);
    } else if (p.status === 'created') {
      // Never started: runc delete --force kills the waiting init; its exit arrives through the reaper.
      await c.runc.delete(id, c.bundle, true).catch((err: unknown) => this.log.warn({ err, id }, 'runc delete --force'));
      await Promise.race([p.wait(), sleep(2000)]);
      if (!p.exit) p.setExited(137, new Date());
    } else {
      await c.runc.delete(id, c.bundle, false).catch(async (err: unknown) => {
        this.log.warn({ err, id }, 'runc delete; retrying with --force');
        await c.runc.delete(id, c.bundle, true).catch(() => undefined);
      });
    }
    this.reaper.unwatch(p.pid);
    const drained = await p.io?.drain(IO_DRAIN_MS);
    const output = p.io && { ...p.io.outputStats(), drained };
    p.io?.destroy();
    for (const e of c.execs.values()) e.io?.destroy();
    c.watchdog?.stop();
    if (c.hooks) {
      await runHooks(hooksOf(c.hooks.spec, 'poststop'), 'poststop', ociState(id, c.bundle, c.hooks.spec, p.pid, 'stopped'))
        .catch((err: unknown) => c.tlog.log.warn({ err: messageOf(err) }, 'poststop hook'));
    }
    // After an early release this finds nothing left (every step is idempotent) unless that one failed.
    await c.released;
    await this.releaseResources(c);
    this.containers.delete(id);
    c.tlog.log.info({ exitStatus: p.exit?.exitStatus, output }, 'task deleted');
    c.tlog.close();
    const exit = p.exit as ExitInfo;
    this.events.publish(c.namespace, {
      topic: '/tasks/delete', containerId: id, id, pid: exit.pid, exitStatus: exit.exitStatus, exitedAt: exit.exitedAt,
    });
    return exit;
  }

  exec(req: ExecRequest): void {
    const c = this.get(req.id);
    if (c.unikernel) throw unimplemented(`exec in unikernel container ${req.id}: the application runs inside a VM`);
    validateId('exec', req.execId);
    if (c.execs.has(req.execId)) throw alreadyExists(`exec ${req.execId}`);
    if (!c.init.alive && c.init.status !== 'created') throw failedPrecondition(`cannot exec in ${c.init.status} task ${req.id}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(req.spec).toString('utf8'));
    } catch {
      throw invalidArgument(`exec ${req.execId}: spec is not valid JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { args?: unknown }).args)) {
      throw invalidArgument(`exec ${req.execId}: spec has no args`);
    }
    const p = new Proc(req.id, req.execId, c.bundle, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal }, req.spec);
    c.execs.set(req.execId, p);
    this.events.publish(c.namespace, { topic: '/tasks/exec-added', containerId: req.id, execId: req.execId });
  }

  state(id: string, execId: string): ProcessState {
    return this.proc(this.get(id), execId).state();
  }

  async wait(id: string, execId: string): Promise<ExitInfo> {
    return this.proc(this.get(id), execId).wait();
  }

  async kill(id: string, execId: string, signal: number, all: boolean): Promise<void> {
    const c = this.get(id);
    const p = this.proc(c, execId);
    if (p.status === 'stopped') throw notFound(`${p.label}: process already finished`);
    if (p.isInit) {
      if (c.criuImages) {
        // Created from a checkpoint and not restored yet: no process to signal; a signal that would end one ends the task.
        if (signal !== 0) this.onExit(c, p, 128 + signal, new Date());
        return;
      }
      if (c.unikernel && TERMINATING_SIGNALS.has(signal)) await this.stopVm(c, signal);
      else await c.runc.kill(id, c.bundle, signal, all);
      return;
    }
    if (p.status === 'created') throw notFound(`${p.label}: process not started`);
    try {
      process.kill(p.pid, signal);
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw notFound(`${p.label}: process already finished`);
      throw err;
    }
  }

  async pids(id: string): Promise<Array<{ pid: number; execId: string }>> {
    const c = this.get(id);
    if (!c.init.alive) return [];
    const pids = await c.runc.ps(id, c.bundle);
    const byPid = new Map([...c.execs.values()].map((e) => [e.pid, e.execId]));
    return pids.map((pid) => ({ pid, execId: byPid.get(pid) ?? '' }));
  }

  /**
   * Pause. A unikernel whose monitor has QMP (qemu) has its VM stopped by qemu itself (`stop`): the
   * vCPUs stop between instructions, the guest's clocks (kvmclock, PIT) stop with them, and `cont`
   * goes on where it was, with no time jump and nothing of the console lost. Other monitors and
   * ordinary containers are frozen through runc (the cgroup freezer).
   */
  async pause(id: string): Promise<void> {
    const c = this.get(id);
    c.init.requireStatus(['running'], 'pause');
    const wd = c.unikernel?.plan.qmpInMonitor ? c.watchdog : undefined;
    if (wd && (await wd.whenConnected(3_000))) {
      await wd.command('stop');
      const st = (await wd.command('query-status')) as { status?: string } | undefined;
      if (st?.status !== 'paused') throw failedPrecondition(`pause: the VM is ${st?.status ?? 'in an unknown state'}, not paused`);
      wd.suspend();
      c.pausedVm = true;
      c.tlog.log.info('VM stopped through QMP');
    } else {
      await c.runc.pause(id, c.bundle);
    }
    c.init.status = 'paused';
    this.events.publish(c.namespace, { topic: '/tasks/paused', containerId: id });
  }

  async resume(id: string): Promise<void> {
    const c = this.get(id);
    c.init.requireStatus(['paused'], 'resume');
    if (c.pausedVm) {
      const wd = c.watchdog;
      if (!wd?.connected) throw failedPrecondition('resume: the VM\'s QMP connection is gone');
      await wd.command('cont');
      c.pausedVm = false;
      wd.unsuspend();
      c.tlog.log.info('VM continued through QMP');
    } else {
      await c.runc.resume(id, c.bundle);
    }
    if (c.init.status === 'paused') c.init.status = 'running';
    this.events.publish(c.namespace, { topic: '/tasks/resumed', containerId: id });
  }

  async update(id: string, resources: Uint8Array): Promise<void> {
    const c = this.get(id);
    if (!c.init.alive) throw failedPrecondition(`cannot update ${c.init.label} in ${c.init.status} state`);
    const json = Buffer.from(resources).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      throw invalidArgument('update: resources are not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidArgument('update: resources must be a JSON object');
    // A VM's guest keeps the memory it booted with; its cgroup keeps the monitor's share above a new
    // limit. Anything else goes to runc as sent (a re-encoding would round numbers above 2^53).
    await c.runc.update(id, c.bundle, c.unikernel ? JSON.stringify(withVmmOverhead(parsed as { memory?: MemoryResources }, c.unikernel.plan.memory)) : json);
  }

  resizePty(id: string, execId: string, width: number, height: number): void {
    const p = this.proc(this.get(id), execId);
    if (!p.io) throw failedPrecondition(`${p.label} has no io`);
    p.io.resize(width, height);
  }

  closeIO(id: string, execId: string, stdin: boolean): void {
    const p = this.proc(this.get(id), execId);
    if (stdin) p.io?.closeStdin();
  }

  async stats(id: string): Promise<unknown> {
    const c = this.get(id);
    if (!c.init.alive) throw notFound(`task ${id}: not running`);
    return c.runc.stats(id, c.bundle);
  }

  /** Removes what Create set up for the container besides runc's state: monitor bundle, rootfs view, mounts. */
  private async releaseResources(c: Container): Promise<void> {
    if (c.unikernel) {
      const vm = this.vm as VmModule;
      try {
        await vm.removeMonitorBundle(c.bundle);
      } catch (err: unknown) {
        c.tlog.log.warn({ err: messageOf(err) }, 'remove monitor bundle');
      }
      // Every step is idempotent, so a transient failure (containerd busy, a mount still busy) is retried.
      for (let attempt = 1; ; attempt++) {
        try {
          await vm.releaseUnikernel(c.bundle, vm.snapshotsFor(this.unikernels));
          break;
        } catch (err: unknown) {
          if (attempt === RELEASE_ATTEMPTS) {
            c.tlog.log.error({ err: messageOf(err) }, 'rootfs cleanup failed; these resources are left behind');
            break;
          }
          await sleep(500 * attempt);
        }
      }
    }
    if (c.mountedRootfs) await unmountAll(c.mountedRootfs).catch((err: unknown) => c.tlog.log.error({ err: messageOf(err) }, 'rootfs unmount failed'));
  }

  /**
   * Shutdown with containers still present (Shutdown now=true): their hypervisors and processes are
   * killed and every resource released, so nothing outlives the daemon.
   */
  async releaseAll(): Promise<void> {
    for (const c of [...this.containers.values()]) await this.discard(c, 'shutdown');
  }

  /**
   * containerd runs `delete` for a task whose connection it lost while this daemon still holds it
   * (a shared daemon outlives one task's connection): the task is killed and released here, and
   * containerd publishes the exit itself. False when this daemon does not hold the task.
   */
  async forget(id: string): Promise<boolean> {
    const c = this.containers.get(id);
    if (!c || c.deleting) return false;
    c.deleting = true;
    await this.discard(c, 'delete after disconnect');
    return true;
  }

  private async discard(c: Container, why: string): Promise<void> {
    c.watchdog?.stop();
    await c.runc.delete(c.id, c.bundle, true).catch(() => undefined);
    this.reaper.unwatch(c.init.pid);
    await c.released;
    for (const p of [c.init, ...c.execs.values()]) p.io?.destroy();
    await this.releaseResources(c);
    this.containers.delete(c.id);
    c.tlog.log.warn(`${why}: container killed and its resources released`);
    c.tlog.close();
  }

  /** The task pid containerd shows (Connect.task_pid): the init's pid, 0 when unknown. */
  taskPid(id: string): number {
    return this.containers.get(id)?.init.pid ?? 0;
  }

  /**
   * Checkpoint into `dir` (containerd's checkpoint directory, or the caller's image_path). An
   * ordinary container is dumped by criu through runc (src/task/criu.ts). A unikernel's VM (qemu)
   * has its state saved through QMP, with urunc-checkpoint.json, what a restore checks. containerd's client pauses the task first and resumes it after; a VM found running is
   * stopped for the save and continued after it. With the `exit` option the VM is killed once saved.
   */
  async checkpoint(id: string, dir: string, opts: CheckpointOpts): Promise<void> {
    const c = this.get(id);
    const uk = c.unikernel;
    if (uk && (uk.config.hypervisor !== 'qemu' || !uk.plan.qmpInMonitor)) throw unimplemented(`checkpoint of a ${uk.config.hypervisor} unikernel: only qemu VMs can be saved`);
    if (!c.init.alive || c.init.pid <= 0) throw failedPrecondition(`cannot checkpoint ${c.init.label} in ${c.init.status} state`);
    const target = opts.imagePath || dir;
    // The user's path, possibly on a network filesystem: looked at off the loop, bounded.
    const isDir = path.isAbsolute(target) && (await bounded(`stat ${target}`, fs.promises.stat(target).then((st) => st.isDirectory(), () => false)));
    if (!isDir) throw invalidArgument(`checkpoint directory ${target} does not exist`);
    if (!uk) {
      // An ordinary container: criu through runc. A paused (frozen) one stays paused; with exit, criu ends it once dumped.
      const t0 = Date.now();
      await (await criuModule()).criuCheckpoint(c.runc, c.id, c.bundle, target, opts);
      c.tlog.log.info({ ms: Date.now() - t0, exit: opts.exit }, 'container checkpointed (criu)');
      return;
    }
    const running = c.init.status === 'running';
    await (await this.vmModule()).saveVm(c.watchdog, c.init.pid, uk, target, running, c.tlog.log);
    if (opts.exit) await c.runc.kill(c.id, c.bundle, 9, false);
    else if (running) await c.watchdog?.command('cont');
  }

  /** Streams the staged state into the qemu that Start just ran (waiting on -incoming), then runs the VM. */
  private async loadRestored(c: Container): Promise<void> {
    const file = c.restoreFile as string;
    try {
      await (await this.vmModule()).loadVm(c.watchdog, c.init.pid, c.unikernel as UnikernelTask, file, c.tlog.log);
    } catch (err: unknown) {
      killQuietly(c.init.pid, 9);
      throw new Error(`restoring the VM: ${messageOf(err)}`, { cause: err });
    } finally {
      c.restoreFile = undefined;
      fs.rmSync(file, { force: true });
    }
  }

  /**
   * A terminating signal to a unikernel's hypervisor. A monitor need not handle it (solo5-spt as pid
   * 1 of its pid namespace has no handler, so the kernel drops it), so, as urunc's kill, it ends the
   * monitor with SIGKILL (status 137). A guest that can shut down cleanly (plan.powerdownMs > 0: a
   * Linux guest under qemu) first gets an ACPI power-down through QMP and SIGKILL only if it is still
   * running after that many ms; a guest that powers off makes qemu exit 0.
   */
  private async stopVm(c: Container, signal: number): Promise<void> {
    const ms = c.unikernel?.plan.powerdownMs ?? 0;
    if (c.init.status === 'running' && ms > 0 && c.watchdog?.powerdown()) {
      c.tlog.log.info({ signal, timeoutMs: ms }, 'ACPI power-down sent to the guest');
      const pid = c.init.pid;
      setTimeout(() => {
        if (!c.init.alive || c.init.pid !== pid) return;
        c.tlog.log.warn({ timeoutMs: ms }, 'guest still running after the power-down: killing the hypervisor');
        killQuietly(pid, 9);
      }, ms).unref();
      return;
    }
    await c.runc.kill(c.id, c.bundle, 9, false);
  }

  /** After Start of a unikernel: the watchdog kills a VM that hangs at boot or that qemu paused. */
  private armWatchdog(c: Container): void {
    const uk = c.unikernel;
    if (!uk) return;
    const pid = c.init.pid;
    const wd = new (this.vm as VmModule).Watchdog((reason) => {
      c.tlog.log.error({ pid, reason }, 'watchdog: killing the hypervisor');
      killQuietly(pid, 9);
    }, (msg) => c.tlog.log.warn(msg));
    c.watchdog = wd;
    if (c.init.io?.onFirstOutput(() => wd.output())) wd.armBootTimeout(uk.runtime.watchdog.boot_timeout_ms);
    if (uk.plan.qmpInMonitor) wd.watchQmp(`/proc/${pid}/root${uk.plan.qmpInMonitor}`);
  }

  private get(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw notFound(`task ${id}`);
    return c;
  }

  private proc(c: Container, execId: string): Proc {
    if (!execId) return c.init;
    const p = c.execs.get(execId);
    if (!p) throw notFound(`exec ${execId} of task ${c.id}`);
    return p;
  }
}

function ociState(id: string, bundle: string, spec: OciSpec, pid: number, status: OciState['status']): OciState {
  return { ociVersion: spec.ociVersion, id, status, pid, bundle, annotations: spec.annotations ?? {} };
}

/** SIGHUP, SIGINT, SIGQUIT, SIGTERM: the signals that ask a container to end. */
const TERMINATING_SIGNALS: ReadonlySet<number> = new Set([1, 2, 3, 15]);

function killQuietly(pid: number, signal: number): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
