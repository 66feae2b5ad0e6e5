// The containerd calls behind a snapshot view (src/rootfs/view.ts): Containers.Get for the
// container's snapshotter and key, Snapshots.Stat/View/Remove, Leases.Create/Delete, over the
// minimal gRPC client. The view is created under its lease with the `containerd-lease` header.
import { GetContainerRequest, GetContainerResponse } from '../gen/containerd/services/containers/containers.js';
import { CreateRequest, CreateResponse, DeleteRequest } from '../gen/containerd/services/leases/leases.js';
import { Kind, RemoveSnapshotRequest, StatSnapshotRequest, StatSnapshotResponse, ViewSnapshotRequest, ViewSnapshotResponse } from '../gen/containerd/services/snapshots/snapshots.js';
import { Empty } from '../gen/google/protobuf/empty.js';
import { Code, ShimError } from '../errors.js';
import type { SnapshotApi, SnapshotKind } from '../rootfs/view.js';
import { containerdGrpc, type ContainerdGrpc } from './containerd-grpc.js';

const SNAPSHOTS = '/containerd.services.snapshots.v1.Snapshots';
const LEASES = '/containerd.services.leases.v1.Leases';

const KINDS: Record<number, SnapshotKind> = { [Kind.VIEW]: 'view', [Kind.ACTIVE]: 'active', [Kind.COMMITTED]: 'committed' };

const ignoring = (code: number) => (err: unknown) => {
  if (!(err instanceof ShimError && err.code === code)) throw err;
};

export function snapshotApi(grpc: ContainerdGrpc): SnapshotApi {
  return {
    async containerSnapshot(ns, id) {
      const [r] = await grpc.call(ns, '/containerd.services.containers.v1.Containers/Get', { id }, GetContainerRequest, GetContainerResponse);
      if (!r?.container) throw new ShimError(Code.NotFound, `container ${id}`);
      return { snapshotter: r.container.snapshotter, key: r.container.snapshotKey };
    },
    async stat(ns, snapshotter, key) {
      const [r] = await grpc.call(ns, `${SNAPSHOTS}/Stat`, { snapshotter, key }, StatSnapshotRequest, StatSnapshotResponse);
      return { parent: r?.info?.parent ?? '', kind: KINDS[r?.info?.kind ?? 0] ?? 'unknown' };
    },
    async createLease(ns, id, labels) {
      await grpc.call(ns, `${LEASES}/Create`, { id, labels }, CreateRequest, CreateResponse).catch(ignoring(Code.AlreadyExists));
    },
    async view(ns, lease, snapshotter, key, parent) {
      const [r] = await grpc.call(ns, `${SNAPSHOTS}/View`, { snapshotter, key, parent, labels: {} }, ViewSnapshotRequest, ViewSnapshotResponse, { 'containerd-lease': lease });
      return r?.mounts ?? [];
    },
    async removeSnapshot(ns, snapshotter, key) {
      await grpc.call(ns, `${SNAPSHOTS}/Remove`, { snapshotter, key }, RemoveSnapshotRequest, Empty).catch(ignoring(Code.NotFound));
    },
    async deleteLease(ns, id) {
      await grpc.call(ns, `${LEASES}/Delete`, { id, sync: false }, DeleteRequest, Empty).catch(ignoring(Code.NotFound));
    },
  };
}

/** The SnapshotApi of a containerd address, on that address's shared client. */
export function snapshotApiFor(address: string): SnapshotApi {
  return snapshotApi(containerdGrpc(address));
}
