// A read-only snapshot view of a container's image, for its boot artifacts: find the container's
// snapshotter and key, walk the parents to the image's committed snapshot, take a lease owned by
// the container, create a View under that lease, and mount it read-only under the bundle. Nothing
// is copied, and the container's writable rootfs is never needed on the host. Every resource is
// recorded in the state file before it is acquired; releaseView undoes them in reverse, tolerating
// what is already gone, so it serves rollback, Delete and the crash path alike.
import fs from 'node:fs';
import path from 'node:path';
import { Code, ShimError, messageOf } from '../errors.js';
import { failpoint } from '../sys/failpoints.js';
import { mountAll, unmountLeftover, type Mount } from './mounts.js';
import type { StateFile, ViewRecord } from './state.js';

export type SnapshotKind = 'unknown' | 'view' | 'active' | 'committed';

/** The containerd calls a view needs (gRPC on containerd's socket; implemented in src/shim). */
export interface SnapshotApi {
  containerSnapshot(ns: string, id: string): Promise<{ snapshotter: string; key: string }>;
  stat(ns: string, snapshotter: string, key: string): Promise<{ parent: string; kind: SnapshotKind }>;
  /** AlreadyExists is success (the lease of an earlier, crashed attempt is adopted). */
  createLease(ns: string, id: string, labels: Record<string, string>): Promise<void>;
  /** Creates the view under the lease (containerd-lease header). */
  view(ns: string, lease: string, snapshotter: string, key: string, parent: string): Promise<Mount[]>;
  /** NotFound is success. */
  removeSnapshot(ns: string, snapshotter: string, key: string): Promise<void>;
  /** NotFound is success. */
  deleteLease(ns: string, id: string): Promise<void>;
}

export const viewKey = (id: string) => `urunc-rootfs-view-${id}`;
export const viewLease = (id: string) => `urunc-rootfs-view-lease-${id}`;
export const viewMountpoint = (bundle: string) => path.join(bundle, 'rootfs-view');

const isCode = (err: unknown, code: number) => err instanceof ShimError && err.code === code;

/** The image's top committed snapshot under a container's rootfs snapshot. */
async function committedBase(api: SnapshotApi, ns: string, snapshotter: string, key: string): Promise<string> {
  let name = key;
  for (let depth = 0; depth < 256; depth++) {
    const info = await api.stat(ns, snapshotter, name);
    if (info.kind === 'committed') return name;
    if (!info.parent) break;
    name = info.parent;
  }
  throw new Error(`snapshot ${key} has no committed parent`);
}

/** Creates, records and mounts the view; returns its mount point. On failure everything made is released. */
export async function createView(api: SnapshotApi, state: StateFile, bundle: string): Promise<string> {
  const { namespace: ns, id } = state.state;
  const { snapshotter, key } = await api.containerSnapshot(ns, id);
  if (!snapshotter || !key) throw new Error('the container record names no snapshot');
  const parent = await committedBase(api, ns, snapshotter, key);
  const rec: ViewRecord = { snapshotter, key: viewKey(id), lease: viewLease(id), parent, mountpoint: viewMountpoint(bundle) };
  state.update((s) => (s.view = rec));
  try {
    failpoint('rootfs.lease');
    await api.createLease(ns, rec.lease, { 'urunc.io/container': id, 'urunc.io/purpose': 'rootfs-view' });
    failpoint('rootfs.view');
    let mounts: Mount[];
    try {
      mounts = await api.view(ns, rec.lease, snapshotter, rec.key, parent);
    } catch (err: unknown) {
      if (!isCode(err, Code.AlreadyExists)) throw err;
      // Left by a crashed earlier attempt with this id: replace it (its parent may differ).
      await api.removeSnapshot(ns, snapshotter, rec.key);
      mounts = await api.view(ns, rec.lease, snapshotter, rec.key, parent);
    }
    failpoint('rootfs.mount');
    fs.mkdirSync(rec.mountpoint, { recursive: true });
    await mountAll(mounts.map((m) => ({ ...m, options: m.options.includes('ro') ? m.options : [...m.options.filter((o) => o !== 'rw'), 'ro'] })), rec.mountpoint);
    return rec.mountpoint;
  } catch (err: unknown) {
    await releaseView(api, ns, rec).catch(() => undefined);
    state.update((s) => delete s.view);
    throw err;
  }
}

/** Unmounts and removes the view, then its lease; idempotent. Throws (after trying every step) if any step failed. */
export async function releaseView(api: SnapshotApi | undefined, ns: string, v: ViewRecord): Promise<void> {
  const errors: string[] = [];
  const left = await unmountLeftover(v.mountpoint);
  if (left) errors.push(left);
  else fs.rmSync(v.mountpoint, { recursive: true, force: true });
  if (!api) errors.push('no containerd address to release the view and lease');
  else {
    await api.removeSnapshot(ns, v.snapshotter, v.key).catch((err: unknown) => errors.push(`remove view ${v.key}: ${messageOf(err)}`));
    await api.deleteLease(ns, v.lease).catch((err: unknown) => errors.push(`delete lease ${v.lease}: ${messageOf(err)}`));
  }
  if (errors.length > 0) throw new Error(errors.join('; '));
}
