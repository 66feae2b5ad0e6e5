// Create's first question for every container: is it a unikernel? Asked from the spec's
// `com.urunc.unikernel.*` annotations, the image's (manifest annotations and container labels,
// through containerd: ctr, nerdctl and docker have no other way to pass them, urunc #12), and
// /urunc.json in the image. An ordinary container (a pause container, any other image) gets its
// rootfs mounted and goes to runc; only a container with unikernel keys loads the unikernel set-up
// (src/task/unikernel.ts: monitors, rootfs planner, network, runtime config), on first use.
//
// Under CRI the image is asked too, as urunc v0.8.0's shim asks it for every container
// (InjectUruncAnnotations): CRI copies the image config's labels into the container's labels, which is
// where images described by labels (bunny) carry their keys. Only a pod's sandbox (pause) container,
// which CRI makes from the node's sandbox image, is decided without containerd's API (and without
// loading its client).
import type { Logger } from 'pino';
import path from 'node:path';
import { Code, ShimError, messageOf } from '../errors.js';
import { decodeUruncJson, pickUnikernelKeys } from '../monitors/unikernel-keys.js';
import type { OciSpec } from '../monitors/launcher.js';
import { blockRootfs, mountAll, unmountAll, type Mount } from '../rootfs/mounts.js';
import { resolveInRoot } from '../rootfs/resolve-in-root.js';
import type { SnapshotApi } from '../rootfs/view.js';
import { lazyOnce } from '../sys/lazy.js';
import { MiB, readCapped } from '../sys/read-capped.js';
import type { UnikernelTask } from './unikernel.js';

const REQUIRED = ['unikernelType', 'hypervisor', 'binary'];

export interface UnikernelHost {
  /** com.urunc.unikernel.* from the container's labels and image manifest (containerd API). */
  imageAnnotations?: (namespace: string, id: string) => Promise<Record<string, string>>;
  /** containerd's gRPC socket (persisted so the crash path can release views) and its snapshot calls. */
  containerd?: { address: string; snapshots: (address: string) => SnapshotApi };
  kvmUsable: () => boolean;
  /**
   * For a container of a pod whose sandbox this daemon owns (src/task/sandbox.ts): adds the pod's
   * hostname, hosts and resolv.conf mounts to its config.json; returns how many it added.
   */
  podFiles?: (namespace: string, sandboxId: string, bundle: string) => number;
}

export interface SetupInput {
  host: UnikernelHost;
  log: Logger;
  namespace: string;
  id: string;
  bundle: string;
  /** The spec's root path, where the rootfs is mounted when the plan needs it on the host. */
  rootfs: string;
  mounts: readonly Mount[];
  spec: OciSpec;
  configPath: string | undefined;
  /** Registers an undo step, run in reverse order if a later step of Create fails. */
  undo: (step: () => Promise<void> | void) => void;
  /** Restoring a checkpoint: the monitor waits for the saved VM state instead of booting. */
  restore?: boolean;
}

export interface SetupResult {
  unikernel: UnikernelTask | undefined;
  /** Where the rootfs is mounted for the task's life (undefined when it is not). */
  mountedRootfs: string | undefined;
}

/** urunc.json is small (urunc caps each value at 4096 bytes); anything bigger is refused unread. */
const URUNC_JSON_MAX = MiB;

/** The image's /urunc.json (resolved inside the root), or {} when it has none; read capped, off the event loop. */
export async function readUruncJson(root: string): Promise<Record<string, string>> {
  let p: string;
  try {
    p = resolveInRoot(root, '/urunc.json', 'urunc.json');
  } catch (err: unknown) {
    if (err instanceof ShimError && err.code === Code.NotFound) return {};
    throw err;
  }
  return decodeUruncJson(await readCapped(p, URUNC_JSON_MAX, "the image's urunc.json"));
}

/** A rootfs mount made read-only for a look at the image's files. */
export function readOnly(m: Mount): Mount {
  const opts = m.options.filter((x) => x !== 'rw');
  // ext4 would replay its journal even on a read-only mount; noload keeps the device untouched.
  if (m.type === 'ext4' || m.type === 'ext3') opts.push('noload');
  return { ...m, options: [...opts, 'ro'] };
}

/** knative's queue-proxy runs through runc beside a unikernel user-container: it is pointed at the guest. */
export function isQueueProxy(spec: OciSpec): boolean {
  return spec.annotations?.['io.kubernetes.cri.container-name'] === 'queue-proxy';
}

/** The container's root as the spec names it (relative paths are relative to the bundle). */
export function specRootfs(bundle: string, spec: OciSpec): string {
  const root = (spec.root as { path?: string } | undefined)?.path ?? 'rootfs';
  return path.resolve(bundle, root);
}

/**
 * The image's urunc.json from the root the container runs on: the one this shim mounted, or, when
 * Create brought no rootfs mounts (Docker mounts the root itself; `ctr run --rootfs`), the spec's
 * root path as it is (urunc's GetUnikernelConfig reads spec.Root.Path).
 */
export async function uruncJsonOf(o: Pick<SetupInput, 'mounts' | 'rootfs'>, mounted: string | undefined): Promise<Record<string, string>> {
  if (mounted) return blockRootfs(o.mounts) ? {} : readUruncJson(mounted);
  return o.mounts.length === 0 ? readUruncJson(o.rootfs) : {};
}

const unikernelModule = lazyOnce(() => import('./unikernel.js'));
const hasKeys = (m: Record<string, string>): boolean => Object.keys(m).length > 0;

export async function setupContainer(o: SetupInput): Promise<SetupResult> {
  const specKeys = pickUnikernelKeys(o.spec.annotations);
  let imageKeys: Record<string, string> = {};
  const podSandbox = o.spec.annotations?.['io.kubernetes.cri.container-type'] === 'sandbox';
  if (o.host.imageAnnotations && !podSandbox && REQUIRED.some((k) => specKeys[k] === undefined)) {
    try {
      imageKeys = pickUnikernelKeys(await o.host.imageAnnotations(o.namespace, o.id));
    } catch (err: unknown) {
      // A container without an image record (or an unreachable containerd) is judged on the rest.
      o.log.debug({ err: messageOf(err) }, 'image annotations unavailable');
    }
  }
  // Keys before any mount: a block rootfs the guest boots from is never mounted on the host.
  if (hasKeys(specKeys) || hasKeys(imageKeys)) return (await unikernelModule()).setupUnikernel(o, { specKeys, imageKeys });

  // A block device's urunc.json is read through a transient read-only mount: if the guest is to boot
  // from the device, the host must never have had it mounted read-write.
  if (o.mounts.length > 0 && blockRootfs(o.mounts)) {
    o.undo(() => unmountAll(o.rootfs));
    await mountAll(o.mounts.map(readOnly), o.rootfs);
    let uruncJson: Record<string, string>;
    try {
      uruncJson = await readUruncJson(o.rootfs);
    } finally {
      unmountAll(o.rootfs);
    }
    if (hasKeys(uruncJson)) return (await unikernelModule()).setupUnikernel(o, { specKeys, imageKeys, uruncJson });
  }
  let mounted: string | undefined;
  if (o.mounts.length > 0) {
    o.undo(() => unmountAll(o.rootfs));
    await mountAll(o.mounts, o.rootfs);
    mounted = o.rootfs;
  }
  const uruncJson = await uruncJsonOf(o, mounted);
  if (hasKeys(uruncJson)) return (await unikernelModule()).setupUnikernel(o, { specKeys, imageKeys, mounted, uruncJson });
  if (isQueueProxy(o.spec)) (await unikernelModule()).rewriteQueueProxy(o.bundle, o.log);
  return { unikernel: undefined, mountedRootfs: mounted };
}
