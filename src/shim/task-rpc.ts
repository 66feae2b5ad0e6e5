// containerd.task.v2.Task (and the wire-identical v3) on ttrpc: decodes requests into plain
// objects, calls the task service, encodes responses. The only place task RPCs meet protobuf.
import * as pb from '../gen/containerd/task/v2/shim.js';
import { Empty } from '../gen/google/protobuf/empty.js';
import { Status as PbStatus } from '../gen/containerd/types/task/task.js';
import { invalidArgument, messageOf } from '../errors.js';
import { CheckpointOptions } from '../gen/containerd/runc/options/checkpoint.js';
import type { TaskService } from '../task/service.js';
import type { CheckpointOpts, Status } from '../task/types.js';
import { method, type CallContext, type Handler } from './ttrpc/server.js';
import { lazyOnce } from '../sys/lazy.js';
import { toTimestamp } from './timestamp.js';
import { configPathOf } from './bootstrap.js';

const STATUS: Record<Status, PbStatus> = {
  unknown: PbStatus.UNKNOWN,
  created: PbStatus.CREATED,
  running: PbStatus.RUNNING,
  stopped: PbStatus.STOPPED,
  paused: PbStatus.PAUSED,
  pausing: PbStatus.PAUSING,
};

const ts = (d: Date | undefined) => (d ? toTimestamp(d) : undefined);

export interface TaskRpcHooks {
  defaultNamespace: string;
  /** Shutdown with no tasks left (now=false), or with now=true: the daemon decides whether to leave. */
  onShutdown(now: boolean): void;
}

export function taskHandlers(svc: TaskService, hooks: TaskRpcHooks): Record<string, Handler> {
  const ns = (ctx: CallContext) => ctx.namespace ?? hooks.defaultNamespace;
  const empty = {};
  return {
    Create: method(pb.CreateTaskRequest, pb.CreateTaskResponse, async (ctx, r) => ({
      pid: await svc.create(ns(ctx), {
        id: r.id, bundle: r.bundle, rootfs: r.rootfs, terminal: r.terminal, stdin: r.stdin, stdout: r.stdout,
        stderr: r.stderr, checkpoint: r.checkpoint, options: r.options, configPath: configPathOf(r.options),
      }),
    })),
    Start: method(pb.StartRequest, pb.StartResponse, async (_ctx, r) => ({ pid: await svc.start(r.id, r.execId) })),
    Delete: method(pb.DeleteRequest, pb.DeleteResponse, async (_ctx, r) => {
      const e = await svc.delete(r.id, r.execId);
      return { pid: e.pid, exitStatus: e.exitStatus, exitedAt: ts(e.exitedAt) };
    }),
    State: method(pb.StateRequest, pb.StateResponse, async (_ctx, r) => {
      const s = svc.state(r.id, r.execId);
      return { ...s, status: STATUS[s.status], exitedAt: ts(s.exitedAt) };
    }),
    Pids: method(pb.PidsRequest, pb.PidsResponse, async (_ctx, r) => ({
      processes: (await svc.pids(r.id)).map((p) => ({ pid: p.pid, info: undefined })),
    })),
    Pause: method(pb.PauseRequest, Empty, async (_ctx, r) => (await svc.pause(r.id), empty)),
    Resume: method(pb.ResumeRequest, Empty, async (_ctx, r) => (await svc.resume(r.id), empty)),
    Checkpoint: method(pb.CheckpointTaskRequest, Empty, async (_ctx, r) => (await svc.checkpoint(r.id, r.path, checkpointOptions(r.options)), empty)),
    Kill: method(pb.KillRequest, Empty, async (_ctx, r) => (await svc.kill(r.id, r.execId, r.signal, r.all), empty)),
    Exec: method(pb.ExecProcessRequest, Empty, async (_ctx, r) => {
      svc.exec({ id: r.id, execId: r.execId, terminal: r.terminal, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, spec: r.spec?.value ?? new Uint8Array() });
      return empty;
    }),
    ResizePty: method(pb.ResizePtyRequest, Empty, async (_ctx, r) => (svc.resizePty(r.id, r.execId, r.width, r.height), empty)),
    CloseIO: method(pb.CloseIORequest, Empty, async (_ctx, r) => (svc.closeIO(r.id, r.execId, r.stdin), empty)),
    Update: method(pb.UpdateTaskRequest, Empty, async (_ctx, r) => (await svc.update(r.id, r.resources?.value ?? new Uint8Array()), empty)),
    Wait: method(pb.WaitRequest, pb.WaitResponse, async (_ctx, r) => {
      const e = await svc.wait(r.id, r.execId);
      return { exitStatus: e.exitStatus, exitedAt: ts(e.exitedAt) };
    }),
    // The cgroup metrics codec loads with the first Stats call (kubelet polls it; ctr rarely asks).
    Stats: method(pb.StatsRequest, pb.StatsResponse, async (_ctx, r) => ({ stats: (await statsModule()).encodeStats(await svc.stats(r.id)) })),
    Connect: method(pb.ConnectRequest, pb.ConnectResponse, async (_ctx, r) => ({
      shimPid: process.pid, taskPid: svc.taskPid(r.id), version: '',
    })),
    Shutdown: method(pb.ShutdownRequest, Empty, async (_ctx, r) => {
      if (svc.size === 0 || r.now) hooks.onShutdown(r.now);
      return empty;
    }),
  };
}

/** The cgroup metrics codec, loaded with the first Stats call. */
const statsModule = lazyOnce(() => import('./stats.js'));

/** containerd.runc.v1.CheckpointOptions, the type containerd's Go client sends (ctr: for runc runtime names only). */
function checkpointOptions(any: { typeUrl: string; value: Uint8Array } | undefined): CheckpointOpts {
  if (!any || any.value.length === 0 || !any.typeUrl.endsWith('containerd.runc.v1.CheckpointOptions')) return { exit: false, imagePath: '', workPath: '' };
  try {
    const o = CheckpointOptions.decode(any.value);
    return {
      exit: o.exit, imagePath: o.imagePath, workPath: o.workPath, openTcp: o.openTcp, externalUnixSockets: o.externalUnixSockets,
      terminal: o.terminal, fileLocks: o.fileLocks, emptyNamespaces: o.emptyNamespaces, cgroupsMode: o.cgroupsMode,
    };
  } catch (err: unknown) {
    throw invalidArgument(`checkpoint options: ${messageOf(err)}`);
  }
}
