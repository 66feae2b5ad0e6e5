// `start`: short-lived. Decides the group, reuses a live group daemon or listens on the group
// socket itself and hands the listener (fd 3) to a detached daemon with no stdio, then prints
// the plain address (the one form containerd 1.6 through 2.3 all accept). Nothing on stderr on
// success: containerd reads stdout and stderr combined.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { canConnect, socketAddress, socketPath } from './address.js';
import type { StartInput } from './bootstrap.js';
import { toArgs, type ShimFlags } from './flags.js';

export const GROUP_ANNOTATIONS = ['io.containerd.urunc.v2.group', 'io.kubernetes.cri.sandbox-id'];

export function groupIdFor(bundle: string, id: string): string {
  let annotations: unknown;
  try {
    annotations = (JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { annotations?: unknown }).annotations;
  } catch {
    return id;
  }
  if (typeof annotations !== 'object' || annotations === null) return id;
  for (const key of GROUP_ANNOTATIONS) {
    const v = (annotations as Record<string, unknown>)[key];
    if (typeof v === 'string' && v !== '') return v;
  }
  return id;
}

export async function runStart(f: ShimFlags): Promise<void> {
  if (!f.id || !f.namespace) throw new Error('start: -id and -namespace are required');
  const bundle = process.cwd();
  let stdin: Buffer = Buffer.alloc(0);
  try {
    stdin = fs.readFileSync(0);
  } catch {
    // no stdin (closed): no options
  }
  // ctr and nerdctl send nothing: skip loading the protobuf runtime on that path.
  const input: StartInput = stdin.length > 0
    ? (await import('./bootstrap.js')).decodeStartInput(stdin, f.id, f.namespace)
    : { configPath: undefined, ttrpcAddress: undefined, grpcAddress: undefined, socketDir: undefined };
  const group = groupIdFor(bundle, f.id);
  const address = socketAddress(f.address, f.namespace, group, input.socketDir);
  const sockPath = socketPath(address);
  // sun_path holds 108 bytes; containerd's shim library refuses paths over 106.
  if (Buffer.byteLength(sockPath) > 106) throw new Error(`start: socket path ${sockPath} is longer than 106 bytes`);

  if (!(await canConnect(address))) {
    const daemonPid = await spawnDaemon(f, sockPath, group, input);
    if (daemonPid === undefined) {
      // Lost a race to another `start` of the same group; its daemon serves us.
      if (!(await canConnect(address))) throw new Error(`start: ${sockPath} is bound but not serving`);
    } else {
      fs.writeFileSync(path.join(bundle, 'shim.pid'), String(daemonPid));
    }
  }
  fs.writeFileSync(path.join(bundle, 'address'), address);
  fs.writeSync(1, address);
}

async function spawnDaemon(
  f: ShimFlags,
  sockPath: string,
  group: string,
  input: StartInput,
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
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const env: NodeJS.ProcessEnv = { ...process.env, URUNC_SHIM_ADDRESS: `unix://${sockPath}`, URUNC_SHIM_GROUP: group };
  if (input.ttrpcAddress) env.TTRPC_ADDRESS = input.ttrpcAddress.replace(/^unix:\/\//, '');
  if (input.configPath) env.URUNC_CONFIG_PATH = input.configPath;
  const script = process.argv[1] as string;
  const child = spawn(process.execPath, [...process.execArgv, script, ...toArgs(f, 'serve')], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', fd],
    env,
  });
  child.unref();
  // The listener stays open in the daemon; this process exits without closing it (closing a
  // bound unix socket in Node unlinks its path).
  return child.pid;
}
