// Checkpoint and restore through containerd's Tasks API, for the tests and the bench: what the Go
// client does and ctr cannot (ctr sends no checkpoint options for non-runc runtimes, and its
// `containers restore --live` sends the output to its own stdio and exits).
import { containerdGrpc } from '../../src/shim/containerd-grpc.js';
import { MountsRequest, MountsResponse } from '../../src/gen/containerd/services/snapshots/snapshots.js';
import { CheckpointTaskRequest, CheckpointTaskResponse, CreateTaskRequest, CreateTaskResponse, StartRequest, StartResponse } from '../../src/gen/containerd/services/tasks/v1/tasks.js';
import { CheckpointOptions } from '../../src/gen/containerd/runc/options/checkpoint.js';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, type Containerd } from './containerd.js';

/**
 * Whether criu (the project's, scripts/fetch-newer.sh) can dump a process on this machine: a real
 * dump of a throwaway `sleep`, bounded to 20 s. `criu check` is not enough: on some machines of this
 * kind (a 6.18 kernel) it says "Looks good" and every dump then hangs, runc's and containerd's stock
 * runc shim's alike. The reason is returned for the test's name; undefined means it works.
 */
export function criuCannotDump(): string | undefined {
  const criu = path.join(REPO, '.cache', 'criu', 'bin', 'criu');
  if (!fs.existsSync(criu)) return 'criu is not installed (scripts/setup.sh)';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'criu-probe-'));
  const sleeper = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  try {
    const r = spawnSync(criu, ['dump', '-t', String(sleeper.pid), '-D', dir, '--leave-running', '-o', 'dump.log'], { timeout: 20_000, stdio: 'ignore' });
    if (r.status === 0) return undefined;
    const log = fs.existsSync(path.join(dir, 'dump.log')) ? fs.readFileSync(path.join(dir, 'dump.log'), 'utf8').trim().split('\n').slice(-1)[0] : '';
    return r.error ? `criu dump of a sleep did not finish in 20 s on this machine (kernel ${os.release()})` : `criu dump of a sleep failed (${r.status}): ${log}`;
  } finally {
    sleeper.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Tasks.Checkpoint with runc's options (the Go client's type), e.g. exit; a descriptor the store has already is not an error. */
export async function checkpointTask(c: Containerd, id: string, o: { exit: boolean }): Promise<void> {
  const grpc = containerdGrpc(c.address);
  await grpc.call('default', '/containerd.services.tasks.v1.Tasks/Checkpoint', {
    containerId: id, parentCheckpoint: '', options: { typeUrl: 'containerd.runc.v1.CheckpointOptions', value: CheckpointOptions.encode(CheckpointOptions.fromPartial({ exit: o.exit })).finish() },
  }, CheckpointTaskRequest, CheckpointTaskResponse).catch((err: unknown) => {
    // The same spec stored by an earlier checkpoint of the container; the Go client ignores this too.
    if (!/already exists/.test(String(err))) throw err;
  });
}

/** A content blob of the store, as JSON (an index, manifest or config). */
async function contentJson(c: Containerd, digest: string, ns: string): Promise<Record<string, unknown>> {
  return JSON.parse((await c.ctr(['content', 'get', digest], { ns })).stdout) as Record<string, unknown>;
}

/** The digest an image name points at, from `ctr images ls`. */
async function imageTarget(c: Containerd, ref: string, ns: string): Promise<string> {
  const ls = await c.ctr(['images', 'ls'], { ns });
  const digest = new RegExp(`^${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+\\S+\\s+(sha256:[0-9a-f]{64})`, 'm').exec(ls.stdout)?.[1];
  if (!digest) throw new Error(`image ${ref} not in: ${ls.stdout}`);
  return digest;
}

/** The checkpoint image's layer of runtime data (what the shim wrote into the checkpoint dir, as a tar). */
export async function checkpointLayer(c: Containerd, ref: string, ns = 'default'): Promise<{ mediaType: string; digest: string; size: number }> {
  const index = await contentJson(c, await imageTarget(c, ref, ns), ns) as { manifests?: Array<{ mediaType: string; digest: string; size: number }> };
  const cp = index.manifests?.find((m) => m.mediaType === 'application/vnd.containerd.container.criu.checkpoint.criu.tar');
  if (!cp) throw new Error(`no checkpoint layer in ${JSON.stringify(index)}`);
  return cp;
}

/**
 * Creates and starts container `id`'s task from checkpoint image `from` (or a checkpoint directory, as
 * CRI's restore gives it) through containerd's Tasks API
 * (what the Go client's WithTaskCheckpoint does), with the container's snapshot mounts and stdout
 * and stderr to `out` (a file:// URI).
 */
export async function restoreTask(c: Containerd, id: string, from: string | { fromPath: string }, out: string, ns = 'default'): Promise<void> {
  // A checkpoint image, or a directory as CRI's restore passes it (RestoreFromPath).
  const cp = typeof from === 'string' ? await checkpointLayer(c, from) : { mediaType: '', digest: '', size: 0, annotations: { RestoreFromPath: from.fromPath } };
  const grpc = containerdGrpc(c.address);
  const [m] = await grpc.call(ns, '/containerd.services.snapshots.v1.Snapshots/Mounts', { snapshotter: 'overlayfs', key: id }, MountsRequest, MountsResponse);
  await grpc.call(ns, '/containerd.services.tasks.v1.Tasks/Create', {
    containerId: id, rootfs: m?.mounts ?? [], stdin: '', stdout: out, stderr: out, terminal: false,
    checkpoint: { mediaType: cp.mediaType, digest: cp.digest, size: BigInt(cp.size), annotations: 'annotations' in cp ? cp.annotations : {} }, options: undefined, runtimePath: '',
  }, CreateTaskRequest, CreateTaskResponse);
  // From a path (CRI's restore), containerd starts the task itself right after Create.
  if (typeof from === 'string') await grpc.call(ns, '/containerd.services.tasks.v1.Tasks/Start', { containerId: id, execId: '' }, StartRequest, StartResponse);
}

/** An image's manifest (the first of an index's). */
async function imageManifest(c: Containerd, ref: string, ns: string): Promise<Record<string, unknown>> {
  let m = await contentJson(c, await imageTarget(c, ref, ns), ns);
  while (Array.isArray(m.manifests)) m = await contentJson(c, (m.manifests as Array<{ digest: string }>)[0]?.digest as string, ns);
  return m;
}

/** An image's manifest annotations. */
export async function imageAnnotations(c: Containerd, ref: string, ns = 'default'): Promise<Record<string, string>> {
  return ((await imageManifest(c, ref, ns)).annotations ?? {}) as Record<string, string>;
}

/** The chain ID of an image's top layer (its committed snapshot's key), from its config's diff IDs. */
export async function imageChainId(c: Containerd, ref: string, ns = 'default'): Promise<string> {
  const manifest = await imageManifest(c, ref, ns);
  const config = await contentJson(c, (manifest.config as { digest: string }).digest, ns);
  const diffIds = (config.rootfs as { diff_ids: string[] }).diff_ids;
  return diffIds.reduce((chain, d) => (chain ? `sha256:${createHash('sha256').update(`${chain} ${d}`).digest('hex')}` : d), '');
}

/** The directories containerd extracted checkpoint images into for Create (ctrd-checkpoint*, in its temporary directory). */
export function extractedCheckpoints(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((f) => /^ctrd-checkpoint\d+$/.test(f));
}
