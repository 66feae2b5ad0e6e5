// The long-lived daemon of one shim group: subreaper, ttrpc server on the listener `start`
// handed over (fd 3), task service, event publisher. Exits after Shutdown once no task is left.
import fs from 'node:fs';
import { setChildSubreaper } from '../sys/libc.js';
import { Reaper } from '../task/reaper.js';
import { TaskService } from '../task/service.js';
import { socketPath } from './address.js';
import type { ShimFlags } from './flags.js';
import { createBundleLogger } from './logger.js';
import { Publisher } from './publisher.js';
import { taskHandlers } from './task-rpc.js';
import { TtrpcServer } from './ttrpc/server.js';
import { kvmUsable } from '../sys/libc.js';
import { containerdGrpc } from './containerd-grpc.js';
import { imageAnnotationReader } from './image-annotations.js';
import { snapshotApiFor } from './containerd-snapshots.js';

export async function runServe(f: ShimFlags): Promise<void> {
  const bundle = process.cwd();
  // Daemon-wide lines go to the bundle of the task that started the daemon; each task's own
  // lines go to its bundle's fifo, which containerd reads for that task (pods share a daemon).
  const { log } = createBundleLogger(bundle, { namespace: f.namespace, id: f.id }, f.debug);
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.on('SIGPIPE', () => undefined);
  setChildSubreaper();

  const reaper = new Reaper();
  reaper.install();
  const ttrpcAddress = process.env.TTRPC_ADDRESS || `${f.address}.ttrpc`;
  const publisher = new Publisher(ttrpcAddress, log);
  const service = new TaskService(log, reaper, publisher, undefined, (taskBundle, namespace, id) =>
    taskBundle === bundle ? { log: log.child({ task: id }), close: () => undefined } : createBundleLogger(taskBundle, { namespace, id }, f.debug),
  {
    imageAnnotations: f.address ? imageAnnotationReader(containerdGrpc(f.address)) : undefined,
    containerd: f.address ? { address: f.address, snapshots: snapshotApiFor } : undefined,
    kvmUsable: once(kvmUsable),
  });
  const server = new TtrpcServer(log);
  const address = process.env.URUNC_SHIM_ADDRESS ?? '';

  let exiting = false;
  const shutdown = (): void => {
    if (exiting) return;
    exiting = true;
    // Answer the Shutdown call first, then flush events and leave.
    setImmediate(async () => {
      await service.releaseAll().catch((err: unknown) => log.error({ err }, 'release at shutdown'));
      await publisher.drain(3000);
      publisher.close();
      server.close();
      if (address) fs.rmSync(socketPath(address), { force: true });
      log.info('shim exiting');
      process.exit(0);
    });
  };
  const handlers = taskHandlers(service, { defaultNamespace: f.namespace, onShutdown: shutdown });
  server.register('containerd.task.v2.Task', handlers);
  server.register('containerd.task.v3.Task', handlers);
  await server.listen({ fd: 3 });
  log.info({ address, ttrpcAddress }, 'shim serving');
  exitWhenIdle(() => service.size === 0 && server.connections === 0, shutdown);
}

/**
 * A daemon with no task and no client for a whole idle period can never be reached again
 * (containerd holds a connection per live task), e.g. when containerd died between `start` and
 * Create: it leaves instead of lingering.
 */
function exitWhenIdle(idle: () => boolean, leave: () => void): void {
  const limit = Number(process.env.URUNC_SHIM_IDLE_EXIT_MS ?? 60_000);
  if (!(limit > 0)) return;
  let since: number | undefined;
  const step = Math.min(limit, 5_000);
  setInterval(() => {
    if (!idle()) {
      since = undefined;
      return;
    }
    since ??= Date.now();
    if (Date.now() - since >= limit) leave();
  }, step).unref();
}

function once<T>(fn: () => T): () => T {
  let v: { value: T } | undefined;
  return () => (v ??= { value: fn() }).value;
}
