// Create's first question for every container: is it a unikernel? Asked from the spec's
// `com.urunc.unikernel.*` annotations, the image's (manifest annotations and container labels,
// through containerd: ctr, nerdctl and docker have no other way to pass them, urunc #12), and
// /urunc.json in the image. An ordinary container (a pause container, any other image) gets its
// rootfs mounted and goes to runc; only a container with unikernel keys loads the unikernel set-up
// (src/task/prepare.ts: monitors, rootfs planner, runtime config), on first use. This is the first
// of a unikernel's three steps: decide here, prepare (Create), launch (Start, src/task/launch.ts).
//
// Under CRI the image is asked too, as urunc v0.8.0's shim asks it for every container
// (InjectUruncAnnotations): CRI copies the image config's labels into the container's labels, which is
// where images described by labels (bunny) carry their keys. Only a pod's sandbox (pause) container,
// which CRI makes from the node's sandbox image, is decided without containerd's API (and without
// loading its client).
import { messageOf } from '../errors.js';
import { pickUnikernelKeys } from '../monitors/unikernel-keys.js';
import { blockRootfs, mountAll, unmountAll } from '../rootfs/mounts.js';
import { lazyOnce } from '../sys/lazy.js';
import { isQueueProxy, readOnly, readUruncJson, uruncJsonOf } from './image-files.js';
import type { SetupInput, SetupResult } from './setup-types.js';

const REQUIRED = ['unikernelType', 'hypervisor', 'binary'];

const prepareModule = lazyOnce(() => import('./prepare.js'));
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
  if (hasKeys(specKeys) || hasKeys(imageKeys)) return (await prepareModule()).setupUnikernel(o, { specKeys, imageKeys });

  // A block device's urunc.json is read through a transient read-only mount: if the guest is to boot
  // from the device, the host must never have had it mounted read-write.
  if (o.mounts.length > 0 && blockRootfs(o.mounts)) {
    o.undo(() => unmountAll(o.rootfs));
    await mountAll(o.mounts.map(readOnly), o.rootfs);
    let uruncJson: Record<string, string>;
    try {
      uruncJson = await readUruncJson(o.rootfs);
    } finally {
      await unmountAll(o.rootfs);
    }
    if (hasKeys(uruncJson)) return (await prepareModule()).setupUnikernel(o, { specKeys, imageKeys, uruncJson });
  }
  let mounted: string | undefined;
  if (o.mounts.length > 0) {
    o.undo(() => unmountAll(o.rootfs));
    await mountAll(o.mounts, o.rootfs);
    mounted = o.rootfs;
  }
  const uruncJson = await uruncJsonOf(o, mounted);
  if (hasKeys(uruncJson)) return (await prepareModule()).setupUnikernel(o, { specKeys, imageKeys, mounted, uruncJson });
  if (isQueueProxy(o.spec)) (await prepareModule()).rewriteQueueProxy(o.bundle, o.log);
  return { unikernel: undefined, mountedRootfs: mounted };
}
