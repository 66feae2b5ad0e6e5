// The long-lived daemon of one shim group: subreaper, ttrpc server on the listener `start`
// handed over (fd 3), task service, event publisher. Exits after Shutdown once no task is left.
import fs from 'node:fs';
import { dropFilePages, limitMallocArenas, mallocTrim, setChildSubreaper, setCloexec } from '../sys/libc.js';
import { Reaper } from '../task/reaper.js';
import { TaskService } from '../task/service.js';
import type { SandboxService } from '../task/sandbox.js';
import { canConnect, socketPath } from './address.js';
import type { ShimFlags } from './flags.js';
import { createBundleLogger } from './logger.js';
import { Publisher } from './publisher.js';
import { taskHandlers } from './task-rpc.js';
import { TtrpcServer, lazyHandlers } from './ttrpc/server.js';
import { kvmUsable } from '../sys/libc.js';
import { lazy, lazyOnce, pinChunks } from '../sys/lazy.js';
import { lazyImageAnnotations, lazySnapshotApi } from './containerd-lazy.js';
import { declineReply, routeAroundReply, runForwarded, serveFront } from './front.js';
import { poolMostlyStuck, stuckCalls } from '../sys/off-loop.js';
import { DEFAULT_LOOP_BLOCK_MS, logFifoOf, startLoopWatchdog } from './loop-watchdog.js';
import { runStart, type StartModules } from './start.js';
import { trimWhenSettled } from './trim.js';
import type { GrpcServer } from './grpc/server.js';

/**
 * What a forwarded `start` may need beyond the basics (the bootstrap codec, the runtime config
 * when a file is there, the gRPC bootstrap), loaded on first use from the daemon's own build.
 */
const startModules: StartModules = {
  bootstrap: lazyOnce(() => import('./bootstrap.js')),
  runtimeConfig: lazyOnce(() => import('../monitors/runtime-config.js')),
  grpcBootstrap: lazyOnce(() => import('./grpc-bootstrap.js')),
};
const deleteModule = lazyOnce(() => import('./delete.js'));

/** The Sandbox API's methods: served by src/shim/sandbox-rpc.ts, loaded with the first call (2.x `sandboxer = "shim"`). */
const SANDBOX_METHODS = ['CreateSandbox', 'StartSandbox', 'Platform', 'StopSandbox', 'WaitSandbox', 'SandboxStatus', 'PingSandbox', 'ShutdownSandbox', 'SandboxMetrics'];

function inodeOf(p: string): number | undefined {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined;
  }
}

export async function runServe(f: ShimFlags): Promise<void> {
  const bundle = process.cwd();
  // Daemon-wide lines go to the bundle of the task that started the daemon; each task's own
  // lines go to its bundle's fifo, which containerd reads for that task (pods share a daemon).
  // The shared daemon outlives the bundle it started in: its own lines then go to a live task's log.
  let liveBundles: () => string[] = () => [];
  const logBundle = (): string | undefined => {
    const live = liveBundles();
    return (live.length === 0 ? fs.existsSync(bundle) : live.includes(bundle)) ? bundle : live[0];
  };
  const { log } = createBundleLogger(logBundle, { namespace: f.namespace, id: f.id }, f.debug);
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.on('SIGPIPE', () => undefined);
  setChildSubreaper();
  // One malloc arena: the daemon's work is on its main thread, and the arenas of its pool and V8
  // threads kept 3-5 MiB of partly used pages after 1000 containers (soak, 2.x: +10.6 % RSS at rest
  // with them, +3.5 % without; src/shim/trim.ts gives the free ones back).
  limitMallocArenas(1);
  // The listener `start` handed over as fd 3 must not leak into what the daemon spawns directly and
  // may outlive it (virtiofsd, a hook that daemonizes): a leaked copy keeps the socket accepting after
  // this daemon dies, and every later `start`/`delete` would wait on it instead of finding no daemon.
  // (runc closes it for containers and hypervisors itself.)
  setCloexec(3);
  // The daemon outlives the bundle it started in; nothing it spawns may inherit a deleted cwd.
  process.chdir('/');
  // The chunks of this build, held open so that modules loaded on first use still come from it after an upgrade.
  pinChunks(import.meta.url);

  const reaper = new Reaper();
  reaper.install();
  const ttrpcAddress = process.env.TTRPC_ADDRESS || `${f.address}.ttrpc`;
  const publisher = new Publisher(ttrpcAddress, log);
  // Pods whose sandbox this shim owns (2.x `sandboxer = "shim"`): set up by the first Sandbox call.
  let sandboxes: { service: SandboxService; addPodFiles: typeof import('../task/sandbox.js').addPodFiles } | undefined;
  const sandboxCount = (): number => sandboxes?.service.size ?? 0;
  const service = new TaskService(log, reaper, publisher, undefined, (taskBundle, namespace, id) =>
    taskBundle === bundle ? { log: log.child({ task: id }), close: () => undefined } : createBundleLogger(taskBundle, { namespace, id }, f.debug),
  {
    imageAnnotations: f.address ? lazyImageAnnotations(f.address) : undefined,
    containerd: f.address ? { address: f.address, snapshots: lazySnapshotApi } : undefined,
    kvmUsable: once(kvmUsable),
    podFiles: (namespace, sandboxId, taskBundle) => {
      const files = sandboxes?.service.podFiles(namespace, sandboxId);
      return files && sandboxes ? sandboxes.addPodFiles(taskBundle, files) : 0;
    },
  });
  liveBundles = () => service.bundles();
  const server = new TtrpcServer(log);
  // The event-loop watchdog (src/shim/loop-watchdog.ts): told what each call starts; after a block,
  // new containers are turned away (the front gives them a daemon of their own) until it has recovered.
  const loopBlockMs = Number(process.env.URUNC_SHIM_LOOP_BLOCK_MS ?? DEFAULT_LOOP_BLOCK_MS);
  const watchdog = startLoopWatchdog(Number.isInteger(loopBlockMs) && loopBlockMs >= 0 ? loopBlockMs : DEFAULT_LOOP_BLOCK_MS, () => logFifoOf(logBundle()),
    (ms) => log.warn({ blockedMs: ms }, 'the event loop was blocked: new containers go to daemons of their own for a while'));
  server.onCall = (ctx) => watchdog.doing(`${ctx.service}/${ctx.method} (namespace ${ctx.namespace ?? '-'})`);
  const address = process.env.URUNC_SHIM_ADDRESS ?? '';
  const sockPath = address ? socketPath(address) : '';
  const sockIno = sockPath ? inodeOf(sockPath) : undefined;
  const lingerMs = Number(process.env.URUNC_SHIM_LINGER_MS ?? 0) || 0;
  let lastFront = 0;

  let exiting = false;
  const shutdown = (): void => {
    if (exiting) return;
    exiting = true;
    // Unlink the socket first (only if it is still ours: a new daemon may own the path by now), so
    // no new `start` finds this daemon; answer the Shutdown call, then flush events and leave.
    // (The front removes its own cold-start lock file once the socket is bound.)
    if (sockPath && sockIno !== undefined && inodeOf(sockPath) === sockIno) fs.rmSync(sockPath, { force: true });
    setImmediate(async () => {
      await service.releaseAll().catch((err: unknown) => log.error({ err }, 'release at shutdown'));
      await publisher.drain(3000);
      publisher.close();
      server.close();
      void grpcServer?.then((g) => g.close(), () => undefined);
      log.info('shim exiting');
      process.exit(0);
    });
  };
  const handlers = taskHandlers(service, {
    defaultNamespace: f.namespace,
    // A lingering daemon stays for the next container; Shutdown with now=true still ends it.
    onShutdown: (now) => {
      if (now || (lingerMs === 0 && sandboxCount() === 0)) shutdown();
    },
  });
  server.register('containerd.task.v2.Task', handlers);
  server.register('containerd.task.v3.Task', handlers);
  // Pods whose sandbox this shim owns (2.x `sandboxer = "shim"`): same connection, no pause container.
  server.register('containerd.runtime.sandbox.v1.Sandbox', lazyHandlers(SANDBOX_METHODS, async () => {
    const [sb, rpc] = await lazy(() => Promise.all([import('../task/sandbox.js'), import('./sandbox-rpc.js')]));
    sandboxes ??= {
      service: new sb.SandboxService(log, () => {
        if (service.size === 0 && lingerMs === 0) shutdown();
      }),
      addPodFiles: sb.addPodFiles,
    };
    return rpc.sandboxHandlers(sandboxes.service, f.namespace);
  }));
  // containerd told "protocol":"grpc" at `start` dials the same socket with HTTP/2 and calls task v3.
  // grpc-js is loaded for that only, up front by a daemon started to answer gRPC (a daemon must not
  // import from dist/ later, after an upgrade may have replaced it).
  let grpcServer: Promise<GrpcServer> | undefined;
  let grpcLoaded: GrpcServer | undefined;
  const grpcCalls = (): number => grpcLoaded?.activeCalls ?? 0;
  const loadGrpc = (): Promise<GrpcServer> => (grpcServer ??= import('./grpc/server.js').then((m) => {
    const g = new m.GrpcServer(log);
    g.onCall = server.onCall;
    g.register('containerd.task.v3.Task', handlers);
    grpcLoaded = g;
    return g;
  }));
  if (process.env.URUNC_SHIM_PROTOCOL === 'grpc') void loadGrpc().catch((err: unknown) => log.error({ err }, 'loading the gRPC server'));
  server.onHttp2((sock, first) => {
    loadGrpc().then((g) => g.inject(sock, first), (err: unknown) => {
      log.error({ err }, 'gRPC connection dropped: the gRPC server could not be loaded');
      sock.destroy();
    });
  });
  // The native front's forwarded `start`/`delete` (src/shim/front.ts), on the same socket.
  server.onForeign((sock, first) => serveFront(sock, first, async (req) => {
    lastFront = Date.now();
    if (exiting) return declineReply();
    watchdog.doing(`forwarded ${req.args.filter((a) => !a.startsWith('/')).join(' ')}`);
    // Not on its feet after a block: a new container goes to a daemon of its own (native/front.c).
    if (watchdog.unhealthy() && req.args.at(-1) === 'start') return routeAroundReply();
    // Most of the thread pool held by kernel calls that never returned (a filesystem that stopped
    // answering): new containers go elsewhere while this daemon keeps serving the ones it holds.
    if (poolMostlyStuck() && req.args.at(-1) === 'start') {
      log.warn({ stuck: stuckCalls() }, 'kernel calls stuck in the thread pool: a new container is sent to a daemon of its own');
      return routeAroundReply();
    }
    const reply = await runForwarded(req, {
      start: (sf, io) => runStart(sf, io, startModules),
      delete: async (df, io) => {
        // containerd lost this task's connection while the task is still here: kill and release it first.
        if (df.id && (await service.forget(df.id))) log.warn({ id: df.id }, 'delete: task was still held by this daemon');
        await (await deleteModule()).runDelete(df, io);
      },
    });
    lastFront = Date.now();
    return reply;
  }));
  await server.listen({ fd: 3 });
  log.info({ address, ttrpcAddress, lingerMs }, 'shim serving');
  trimWhenSettled(() => publisher.published, () => {
    const before = process.memoryUsage.rss();
    // A full, compacting collection first (DAEMON_NODE_FLAGS; V8's own memory reducer may run much
    // later, or not at all), so what it frees in the C heap (buffers, koffi and zlib state) is free
    // before the trim.
    (globalThis as { gc?: () => void }).gc?.();
    const released = mallocTrim();
    // What the burst and start-up touched of node's code stays in the page cache, not in the daemon.
    const fileBytes = process.env.URUNC_KEEP_FILE_PAGES === '1' ? 0 : dropFilePages();
    const m = process.memoryUsage();
    log.debug({ released, fileBytes, rssBefore: before, rssAfter: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }, 'memory given back after a burst of container work');
  });
  // Idle: no task, no client, no front request. A lingering daemon waits lingerMs for the next
  // container; any daemon leaves at once when its containerd is gone (nothing can reach it then).
  const limit = lingerMs > 0 ? lingerMs : Number(process.env.URUNC_SHIM_IDLE_EXIT_MS ?? 60_000);
  exitWhenIdle(
    () => service.size === 0 && sandboxCount() === 0 && server.connections === 0 && server.activeCalls === 0 && grpcCalls() === 0,
    () => lastFront,
    limit,
    () => canConnect(`unix://${ttrpcAddress}`, 1000),
    shutdown,
  );
}

/**
 * Leaves after `limit` ms with no task, no client and no front request, or as soon as the daemon is
 * idle and containerd's ttrpc socket no longer answers. Also covers a daemon that never received a
 * task (containerd died between `start` and Create).
 */
function exitWhenIdle(idle: () => boolean, lastActivity: () => number, limit: number, containerdUp: () => Promise<boolean>, leave: () => void): void {
  if (!(limit > 0)) return;
  let since: number | undefined;
  const step = Math.min(limit, 2_000);
  setInterval(() => {
    if (!idle()) {
      since = undefined;
      return;
    }
    const now = Date.now();
    since = Math.max(since ?? now, lastActivity());
    if (now - since >= limit) {
      leave();
      return;
    }
    void containerdUp().then((up) => {
      if (!up && idle() && Date.now() - lastActivity() > step) leave();
    });
  }, step).unref();
}

function once<T>(fn: () => T): () => T {
  let v: { value: T } | undefined;
  return () => (v ??= { value: fn() }).value;
}
