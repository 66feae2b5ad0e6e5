// Checkpoint and restore through containerd's Tasks API, for the tests and the bench: what the Go
// client does and ctr cannot (ctr sends no checkpoint options for non-runc runtimes, and its
// `containers restore --live` sends the output to its own stdio and exits).
import { containerdGrpc } from '../../src/shim/containerd-grpc.js';
import { MountsRequest, MountsResponse } from '../../src/gen/containerd/services/snapshots/snapshots.js';
import { CheckpointTaskRequest, CheckpointTaskResponse, CreateTaskRequest, CreateTaskResponse, StartRequest, StartResponse } from '../../src/gen/containerd/services/tasks/v1/tasks.js';
import { CheckpointOptions } from '../../src/gen/containerd/runc/options/checkpoint.js';
import type { Containerd } from './containerd.js';

/** Tasks.Checkpoint with runc's options (the Go client's type), e.g. exit; a descriptor the store has already is not an error. */
export async function checkpointTask(c: Containerd, id: string, o: { exit: boolean }): Promise<void> {
  const grpc = containerdGrpc(c.address);
  await grpc.call('default', '/containerd.services.tasks.v1.Tasks/Checkpoint', {
    containerId: id, parentCheckpoint: '', options: { typeUrl: 'containerd.runc.v1.CheckpointOptions', value: CheckpointOptions.encode({ exit: o.exit, imagePath: '', workPath: '' }).finish() },
  }, CheckpointTaskRequest, CheckpointTaskResponse).catch((err: unknown) => {
    // The same spec stored by an earlier checkpoint of the container; the Go client ignores this too.
    if (!/already exists/.test(String(err))) throw err;
  });
}

/** The checkpoint image's layer of runtime data (what the shim wrote into the checkpoint dir, as a tar). */
export async function checkpointLayer(c: Containerd, ref: string): Promise<{ mediaType: string; digest: string; size: number }> {
  const ls = await c.ctr(['images', 'ls']);
  const digest = new RegExp(`^${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+\\S+\\s+(sha256:[0-9a-f]{64})`, 'm').exec(ls.stdout)?.[1];
  if (!digest) throw new Error(`checkpoint ${ref} not in: ${ls.stdout}`);
  const index = JSON.parse((await c.ctr(['content', 'get', digest])).stdout) as { manifests: Array<{ mediaType: string; digest: string; size: number }> };
  const cp = index.manifests.find((m) => m.mediaType === 'application/vnd.containerd.container.criu.checkpoint.criu.tar');
  if (!cp) throw new Error(`no checkpoint layer in ${JSON.stringify(index)}`);
  return cp;
}

/**
 * Creates and starts container `id`'s task from checkpoint image `ref` through containerd's Tasks API
 * (what the Go client's WithTaskCheckpoint does), with the container's snapshot mounts and stdout
 * and stderr to `out` (a file:// URI).
 */
export async function restoreTask(c: Containerd, id: string, ref: string, out: string): Promise<void> {
  const cp = await checkpointLayer(c, ref);
  const grpc = containerdGrpc(c.address);
  const [m] = await grpc.call('default', '/containerd.services.snapshots.v1.Snapshots/Mounts', { snapshotter: 'overlayfs', key: id }, MountsRequest, MountsResponse);
  await grpc.call('default', '/containerd.services.tasks.v1.Tasks/Create', {
    containerId: id, rootfs: m?.mounts ?? [], stdin: '', stdout: out, stderr: out, terminal: false,
    checkpoint: { mediaType: cp.mediaType, digest: cp.digest, size: BigInt(cp.size), annotations: {} }, options: undefined, runtimePath: '',
  }, CreateTaskRequest, CreateTaskResponse);
  await grpc.call('default', '/containerd.services.tasks.v1.Tasks/Start', { containerId: id, execId: '' }, StartRequest, StartResponse);
}
