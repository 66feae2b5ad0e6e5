// `start`: short-lived. Decides the group, reuses a live group daemon or listens on the group
// socket itself and hands the listener (fd 3) to a detached daemon with no stdio, then prints
// the plain address (the one form containerd 1.6 through 2.3 all accept). Nothing on stderr on
// success: containerd reads stdout and stderr combined.
//
// Grouping (`[shim] grouping` in the runtime config, or URUNC_SHIM_GROUPING): "node" (default) puts
// every container of one containerd namespace in one warm daemon, which the native front reaches
// without starting node at all; "pod" gives each pod (sandbox-id) or lone container its own
// daemon, as the runc shim does. An explicit io.containerd.urunc.v2.group annotation always wins.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { canConnect, NODE_GROUP, socketAddress, socketPath } from './address.js';
import type { StartInput } from './bootstrap.js';
import { toArgs, type ShimFlags } from './flags.js';
import { ColdPathNeeded, type ActionIo } from './io.js';
import { readSpecText } from '../task/spec.js';
import { POOL_THREADS } from '../sys/off-loop.js';
import { SHIM_DEFAULTS, configPathFor } from '../monitors/runtime-config-path.js';

export const GROUP_ANNOTATION = 'io.containerd.urunc.v2.group';
export const POD_ANNOTATION = 'io.kubernetes.cri.sandbox-id';
export type Grouping = 'node' | 'pod';

export interface ShimSettings {
  grouping: Grouping;
  /** How long a daemon with no task stays up for the next container (ms); 0: it leaves at the last Shutdown. */
  lingerMs: number;
  /** What containerd is told to speak to the daemon (which serves both). */
  protocol: 'ttrpc' | 'grpc';
  /** The event-loop watchdog's setting (ms; 0: none). */
  loopBlockMs: number;
}

/**
 * V8 sizing for the long-lived daemon: a 1 MiB young generation and a 256 MiB old-space limit (V8's
 * memory-constrained heap growth). Measured over 1000 containers 20 at a time (containerd 2.x): RSS
 * 67 MiB after 100 and 73 MiB after 1000, against 81 and 108 MiB with node's defaults, which kept
 * growing until about 400 containers; the JS heap itself stays near 10 MiB. Every full collection
 * compacts (the heap is small, so it costs milliseconds), and `gc` is exposed for the one the daemon
 * runs once a burst of container work is over (src/shim/trim.ts): without both, the pages of a
 * fragmented heap stayed mapped until V8's memory reducer happened to run, and RSS at rest read
 * anywhere from 58 to 74 MiB after the same 1000 containers. No JIT (`--jitless`): once the
 * daemon's idle pages are dropped at rest, compiled code was what grew (soak, 1.6: anonymous memory
 * at rest 17.1 MiB after 100 containers and 21.4 after 1000, RSS +21.6 %; --jitless: 12.7 and 13.0,
 * RSS -2.4 %; --no-opt, which keeps the baseline compiler: 15.0 and 14.7, but the 1000 containers
 * took 106-110 s against 91 s jitless and 80-82 s with node's defaults). Busybox echo and hello
 * medians stayed within the bench's spread. WebAssembly goes with the JIT; `--no-expose-wasm` keeps
 * node from warning about it on stderr (Long.js in grpc-js falls back to plain JS without it).
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=256', '--expose-gc', '--compact-on-every-full-gc', '--jitless', '--no-expose-wasm'];

export function groupIdFor(bundle: string, id: string, grouping: Grouping): string {
  let annotations: unknown;
  try {
    annotations = (JSON.parse(readSpecText(bundle)) as { annotations?: unknown }).annotations;
  } catch {
    annotations = undefined;
  }
  const keys = grouping === 'pod' ? [GROUP_ANNOTATION, POD_ANNOTATION] : [GROUP_ANNOTATION];
  if (typeof annotations === 'object' && annotations !== null) {
    for (const key of keys) {
      const v = (annotations as Record<string, unknown>)[key];
      if (typeof v === 'string' && v !== '') return v;
    }
  }
  return grouping === 'node' ? NODE_GROUP : id;
}

/**
 * The modules `start` needs beyond the basics. A cold process loads them lazily (ctr sends no
 * options, so the protobuf runtime is skipped); the daemon hands over the ones it loaded at start-up,
 * because a long-lived daemon must not import from dist/ after an upgrade replaced it.
 */
export interface StartModules {
  bootstrap(): Promise<typeof import('./bootstrap.js')>;
  runtimeConfig(): Promise<typeof import('../monitors/runtime-config.js')>;
  grpcBootstrap(): Promise<typeof import('./grpc-bootstrap.js')>;
}

export const lazyStartModules: StartModules = {
  bootstrap: () => import('./bootstrap.js'),
  runtimeConfig: () => import('../monitors/runtime-config.js'),
  grpcBootstrap: () => import('./grpc-bootstrap.js'),
};

/** The runtime config's [shim] table, overridden by URUNC_SHIM_GROUPING / URUNC_SHIM_LINGER_MS / URUNC_SHIM_PROTOCOL. */
export async function shimSettings(env: NodeJS.ProcessEnv, configPath: string | undefined, modules: StartModules = lazyStartModules): Promise<ShimSettings> {
  // No file, the defaults: the TOML parser and schema load only for a file that is there.
  const file = configPathFor(configPath, env);
  const cfg: { grouping: 'node' | 'pod'; linger_ms: number; protocol: 'ttrpc' | 'grpc'; loop_block_ms: number } = fs.existsSync(file) ? (await modules.runtimeConfig()).loadRuntimeConfig(file).shim : SHIM_DEFAULTS;
  const grouping = env.URUNC_SHIM_GROUPING === 'pod' || env.URUNC_SHIM_GROUPING === 'node' ? env.URUNC_SHIM_GROUPING : cfg.grouping;
  const fromEnv = Number(env.URUNC_SHIM_LINGER_MS);
  const lingerMs = env.URUNC_SHIM_LINGER_MS !== undefined && Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv
    : grouping === 'node' ? cfg.linger_ms : 0;
  const protocol = env.URUNC_SHIM_PROTOCOL === 'grpc' || env.URUNC_SHIM_PROTOCOL === 'ttrpc' ? env.URUNC_SHIM_PROTOCOL : cfg.protocol;
  const blockFromEnv = Number(env.URUNC_SHIM_LOOP_BLOCK_MS);
  const loopBlockMs = env.URUNC_SHIM_LOOP_BLOCK_MS !== undefined && Number.isInteger(blockFromEnv) && blockFromEnv >= 0 ? blockFromEnv : cfg.loop_block_ms;
  return { grouping, lingerMs, protocol, loopBlockMs };
}

export async function runStart(f: ShimFlags, io: ActionIo, modules: StartModules = lazyStartModules): Promise<void> {
  if (!f.id || !f.namespace) throw new Error('start: -id and -namespace are required');
  const bundle = io.cwd;
  const stdin = io.stdin();
  // ctr and nerdctl send nothing: skip loading the protobuf runtime on that path.
  const input: StartInput = stdin.length > 0
    ? (await modules.bootstrap()).decodeStartInput(stdin, f.id, f.namespace)
    : { configPath: undefined, ttrpcAddress: undefined, grpcAddress: undefined, socketDir: undefined, containerdVersion: undefined };
  const settings = await shimSettings(io.env, input.configPath, modules);
  const group = groupIdFor(bundle, f.id, settings.grouping);
  const address = socketAddress(f.address, f.namespace, group, input.socketDir);
  const sockPath = socketPath(address);
  // sun_path holds 108 bytes; containerd's shim library refuses paths over 106.
  if (Buffer.byteLength(sockPath) > 106) throw new Error(`start: socket path ${sockPath} is longer than 106 bytes`);
  // The answer containerd reads: the plain address (ttrpc), or for gRPC the JSON form its version
  // takes (refused, before anything is spawned, on a containerd without gRPC shims).
  let answer = address;
  if (settings.protocol === 'grpc') {
    const gb = await modules.grpcBootstrap();
    answer = JSON.stringify(gb.grpcBootstrapFor(input.containerdVersion ?? await gb.askContainerdVersion(f.address, f.namespace), sockPath));
  }

  if (!(await canConnect(address))) {
    // A daemon running this for the front does not spawn daemons: the front's cold path does.
    if (io.forwarded) throw new ColdPathNeeded();
    const daemonPid = await spawnDaemon(f, io, sockPath, group, input, settings);
    if (daemonPid === undefined) {
      // Lost a race to another `start` of the same group; its daemon serves us.
      if (!(await canConnect(address))) throw new Error(`start: ${sockPath} is bound but not serving`);
    } else {
      fs.writeFileSync(path.join(bundle, 'shim.pid'), String(daemonPid));
    }
  }
  // containerd 1.6 and 1.7 read this file back after a restart (1.7 parses the JSON form too).
  fs.writeFileSync(path.join(bundle, 'address'), answer);
  io.stdout(answer);
}

async function spawnDaemon(
  f: ShimFlags,
  io: ActionIo,
  sockPath: string,
  group: string,
  input: StartInput,
  settings: ShimSettings,
): Promise<number | undefined> {
  fs.mkdirSync(path.dirname(sockPath), { recursive: true, mode: 0o711 });
  fs.rmSync(sockPath, { force: true });
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: sockPath, backlog: 256 }, resolve);
    });
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return undefined;
    throw err;
  }
  fs.chmodSync(sockPath, 0o600);
  const handle = (server as unknown as { _handle: { fd: number } })._handle;
  const env: NodeJS.ProcessEnv = {
    ...io.env, URUNC_SHIM_ADDRESS: `unix://${sockPath}`, URUNC_SHIM_GROUP: group, URUNC_SHIM_LINGER_MS: String(settings.lingerMs),
    URUNC_SHIM_LOOP_BLOCK_MS: String(settings.loopBlockMs),
    // Room in libuv's pool for kernel calls stuck past their bound (src/sys/off-loop.ts).
    UV_THREADPOOL_SIZE: io.env.UV_THREADPOOL_SIZE ?? String(POOL_THREADS),
  };
  // A daemon started to answer gRPC loads its gRPC server at once (src/shim/serve.ts).
  if (settings.protocol === 'grpc') env.URUNC_SHIM_PROTOCOL = 'grpc';
  if (input.ttrpcAddress) env.TTRPC_ADDRESS = input.ttrpcAddress.replace(/^unix:\/\//, '');
  if (input.configPath) env.URUNC_CONFIG_PATH = input.configPath;
  const script = process.argv[1] as string;
  // The flags given to node (by the front or an operator) win over the daemon's own.
  const flags = DAEMON_NODE_FLAGS.filter((d) => !process.execArgv.some((x) => x.startsWith(d.split('=')[0] as string)));
  const child = spawn(process.execPath, [...flags, ...process.execArgv, script, ...toArgs(f, 'serve')], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', handle.fd],
    env,
  });
  child.unref();
  // The listener stays open in the daemon; this process exits without closing it (closing a
  // bound unix socket in Node unlinks its path).
  return child.pid;
}
