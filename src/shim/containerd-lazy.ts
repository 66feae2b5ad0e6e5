// containerd's API as the daemon's containers use it (image annotations, snapshot views), with the
// client (node:http2, the services' codecs) loaded at the first call: a daemon serving only
// pause and ordinary containers of pods never loads it (src/task/container-kind.ts).
import type { SnapshotApi } from '../rootfs/view.js';
import { lazyOnce } from '../sys/lazy.js';

const api = lazyOnce(() => Promise.all([import('./containerd-grpc.js'), import('./image-annotations.js'), import('./containerd-snapshots.js')]));

/** com.urunc.unikernel.* of a container's labels and image manifest, through containerd at `address`. */
export function lazyImageAnnotations(address: string): (namespace: string, id: string) => Promise<Record<string, string>> {
  let reader: ((namespace: string, id: string) => Promise<Record<string, string>>) | undefined;
  return async (namespace, id) => {
    if (!reader) {
      const [grpc, annotations] = await api();
      reader = annotations.imageAnnotationReader(grpc.containerdGrpc(address));
    }
    return reader(namespace, id);
  };
}

/** containerd's snapshot calls at `address`, the client loaded at the first. */
export function lazySnapshotApi(address: string): SnapshotApi {
  let real: Promise<SnapshotApi> | undefined;
  const get = (): Promise<SnapshotApi> => (real ??= api().then(([, , snapshots]) => snapshots.snapshotApiFor(address)));
  return {
    containerSnapshot: async (...a) => (await get()).containerSnapshot(...a),
    stat: async (...a) => (await get()).stat(...a),
    createLease: async (...a) => (await get()).createLease(...a),
    view: async (...a) => (await get()).view(...a),
    removeSnapshot: async (...a) => (await get()).removeSnapshot(...a),
    deleteLease: async (...a) => (await get()).deleteLease(...a),
  };
}
