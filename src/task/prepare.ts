// Prepare, the second of a unikernel's three steps (decide: src/task/container-kind.ts; launch at
// Start: src/task/launch.ts), loaded with the first unikernel container (src/sys/lazy.ts): given the
// container's unikernel keys, plans how the guest gets its files, sets up the resources the plan
// needs (the rootfs mount, a snapshot view of the image, copies of the boot artifacts, virtiofsd),
// persists plan and resources in the bundle, and has the launcher write the monitor bundle runc runs
// instead of the container's own. Nothing here depends on the moment of start.
//
// Resources are registered with the caller's undo list as soon as they exist, so a failure at any
// later step of Create rolls everything back; after Create, releaseUnikernel (Delete, Shutdown, the
// `delete` command) undoes them from the state file alone.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { Code, ShimError, failedPrecondition, invalidArgument, messageOf } from '../errors.js';
import { ARTIFACT_COPY_MAX, prepareLaunch, removeMonitorBundle, writeLaunchFiles, type LaunchPlan, type OciSpec } from '../monitors/launcher.js';
import { guestBlockOf, sharedFsOf } from '../monitors/guests/index.js';
import { configPathFor, loadRuntimeConfig, type RuntimeConfig } from '../monitors/runtime-config.js';
import { resolveUnikernelConfig, type UnikernelConfig } from '../monitors/unikernel-config.js';
import { virtiofsdAvailable, waitForVirtiofsd } from '../monitors/virtiofsd.js';
import { queueProxyEnv } from '../monitors/network.js';
import { blockRootfs, mountAll, readMountInfo, unmountAll, type BlockSource, type Mount } from '../rootfs/mounts.js';
import { chooseRootfs, needsHostRootfs, type Choice, type RootfsParams } from '../rootfs/planner.js';
import { processStartTime } from '../rootfs/release.js';
import { releaseUnikernel } from '../monitors/release.js';
import { resolveFileInRoot } from '../rootfs/resolve-in-root.js';
import { workDir } from '../rootfs/work-dir.js';
import { assertNoInternalAnnotations, persistParams, StateFile, writeAtomic } from '../rootfs/state.js';
import { createView, type SnapshotApi } from '../rootfs/view.js';
import { blockVolumes, copyVolumeFiles, guestVolumes, type BlockVolume } from '../rootfs/volumes.js';
import { umount } from '../sys/libc.js';
import { failpoint } from '../sys/failpoints.js';
import { MiB } from '../sys/read-capped.js';
import { bounded } from '../sys/off-loop.js';
import type { Runc } from './runc.js';
import { readSpecText } from './spec.js';
import { isQueueProxy, readOnly, readUruncJson, uruncJsonOf } from './image-files.js';
import type { SetupInput, SetupResult, UnikernelHost, UnikernelTask } from './setup-types.js';

const SNAPSHOT_VIEW_ANNOTATION = 'com.urunc.unikernel.snapshotView';

/** How the release reaches containerd at a recorded address: through the host's API, when it has one. */
export function snapshotsFor(host: UnikernelHost): (address: string) => SnapshotApi | undefined {
  return (address) => (address && host.containerd ? host.containerd.snapshots(address) : undefined);
}

/** Complete config from spec and image keys alone, or undefined (incomplete or not a unikernel). */
function configWithoutImageFiles(spec: Record<string, string>, image: Record<string, string>, uruncJson: Record<string, string>): UnikernelConfig | undefined {
  try {
    return resolveUnikernelConfig({ spec, image, uruncJson });
  } catch {
    return undefined;
  }
}

/** Which shared-filesystem roots guest, monitor and host allow (urunc's tryContainerSharedFS: virtio-fs with qemu or cloud-hypervisor and virtiofsd, 9p with qemu). */
function sharedFsSupport(uk: UnikernelConfig, rt: RuntimeConfig): { ninep: boolean; virtiofs: boolean } {
  const kinds = sharedFsOf(uk.unikernelType);
  return {
    ninep: kinds.includes('9pfs') && uk.hypervisor === 'qemu',
    virtiofs: kinds.includes('virtiofs') && (uk.hypervisor === 'qemu' || uk.hypervisor === 'cloud-hypervisor') && virtiofsdAvailable(rt.extra_binaries.virtiofsd.path),
  };
}

/**
 * Set-up of a container that has unikernel keys (`pre`: from the spec, the image, and urunc.json
 * when container-kind already mounted the rootfs to read it). Keys without a unikernelType still
 * make an ordinary container, as in urunc.
 */
export async function setupUnikernel(o: SetupInput, pre: { specKeys: Record<string, string>; imageKeys: Record<string, string>; mounted?: string; uruncJson?: Record<string, string> }): Promise<SetupResult> {
  const { specKeys, imageKeys } = pre;
  o.undo(() => removeMonitorBundle(o.bundle));

  // A block rootfs the guest boots from is never mounted on the host: decide that before mounting.
  const block = blockRootfs(o.mounts);
  const early = block ? configWithoutImageFiles(specKeys, imageKeys, pre.uruncJson ?? {}) : undefined;
  const keepOffHost = early !== undefined && block !== undefined && bootsFromContainerBlock(early, block);

  let mounted: string | undefined = pre.mounted;
  const mountRootfs = async (mounts: readonly Mount[]): Promise<void> => {
    o.undo(() => unmountAll(o.rootfs));
    await mountAll(mounts, o.rootfs);
    mounted = o.rootfs;
  };
  if (!mounted && !keepOffHost && o.mounts.length > 0) await mountRootfs(o.mounts);

  let config = resolveUnikernelConfig({ spec: specKeys, image: imageKeys, uruncJson: pre.uruncJson ?? await uruncJsonOf(o, mounted) });
  if (!config) {
    // knative's queue-proxy runs through runc beside a unikernel user-container: point it at the guest.
    if (isQueueProxy(o.spec)) rewriteQueueProxy(o.bundle, o.log);
    return { unikernel: undefined, mountedRootfs: mounted };
  }
  assertNoInternalAnnotations(o.spec.annotations);
  const runtime = loadRuntimeConfig(configPathFor(o.configPath), (msg) => o.log.warn(msg));

  const state = new StateFile(o.bundle, { namespace: o.namespace, id: o.id, address: o.host.containerd?.address ?? '' });
  o.undo(() => releaseUnikernel(o.bundle, snapshotsFor(o.host)));
  // The rootfs path is recorded whether or not it is mounted now (a transient mount may come); unmounting is idempotent.
  state.update((s) => (o.mounts.length > 0 ? s.mounts.push(o.rootfs) : undefined));

  // Boot artifacts come from a read-only view of the image when enabled (config, or the annotation).
  const viewAnnotation = o.spec.annotations?.[SNAPSHOT_VIEW_ANNOTATION];
  if (viewAnnotation !== undefined && !/^(true|false|1|0)$/i.test(viewAnnotation)) {
    throw invalidArgument(`${SNAPSHOT_VIEW_ANNOTATION}: must be true or false, got ${JSON.stringify(viewAnnotation)}`);
  }
  const wantView = viewAnnotation !== undefined ? /^(true|1)$/i.test(viewAnnotation) : runtime.rootfs_view.enabled;
  let artifactRoot: string | undefined;
  let artifacts: RootfsParams['artifacts'] = 'rootfs';
  if (wantView) {
    if (!o.host.containerd) o.log.warn('snapshot view unavailable (no containerd address); reading the boot artifacts from the rootfs');
    else {
      try {
        artifactRoot = await createView(o.host.containerd.snapshots(o.host.containerd.address), state, o.bundle);
        artifacts = 'view';
      } catch (err: unknown) {
        o.log.warn({ reason: messageOf(err) }, 'snapshot view unavailable; reading the boot artifacts from the rootfs');
      }
    }
  }

  // Without a host mount and without a view, the image's files are read from a transient read-only mount.
  const probe = !mounted && !artifactRoot && o.mounts.length > 0;
  if (probe) await mountRootfs(o.mounts.map(readOnly));
  const filesRoot = artifactRoot ?? mounted;
  if (keepOffHost && filesRoot) config = resolveUnikernelConfig({ spec: specKeys, image: imageKeys, uruncJson: await readUruncJson(filesRoot) }) ?? config;

  const choice: Choice = chooseRootfs({ keys: config, containerBlock: block, sharedFs: sharedFsSupport(config, runtime), guestBlock: guestBlockOf(config.unikernelType) });
  if (needsHostRootfs(choice) && (probe || !mounted) && o.mounts.length > 0) {
    // urunc.json changed the plan to one that needs the rootfs: mount it for real.
    await unmountAll(o.rootfs);
    await mountRootfs(o.mounts);
  }
  if (!artifactRoot) {
    if (needsHostRootfs(choice)) artifactRoot = mounted ?? o.rootfs;
    else {
      // The guest is about to own the block device: copy the artifacts out, then release the host mount.
      artifactRoot = await copyArtifacts(mounted ?? o.rootfs, path.join(workDir(o.bundle), 'urunc-artifacts'), config, state);
      artifacts = 'copy';
    }
  }
  // A root on the container's block device gets the volumes' files copied in at create time
  // (urunc's copyMountfiles), through a transient read-write mount released before the guest starts,
  // and the volumes that are whole block filesystems the guest mounts as disks (getBlockVolumes).
  const volumes = guestVolumes(o.spec.mounts);
  let disks: BlockVolume[] = [];
  if (choice.type === 'block' && choice.blockSource === 'container' && volumes.length > 0) {
    disks = await blockVolumes(volumes, await readMountInfo(), guestBlockOf(config.unikernelType).fs);
    if (o.mounts.length > 0) {
      if (mounted) await unmountAll(mounted);
      await mountRootfs(o.mounts);
      const copied = await copyVolumeFiles(o.rootfs, volumes.filter((v) => !disks.some((d) => d.id === `vol${v.index}`)));
      o.log.info({ files: copied }, 'volume files copied into the block root');
    }
    for (const d of disks) await lendVolume(d, state);
  }
  if (!needsHostRootfs(choice) && mounted) {
    await unmountAll(mounted);
    mounted = undefined;
  }

  const params: RootfsParams = {
    // A bundle without rootfs mounts (ctr run --rootfs, --config) has its files in place already.
    ...choice, mountedPath: mounted ?? (o.mounts.length === 0 ? o.rootfs : ''), artifacts, artifactRoot,
    ...(disks.length > 0 ? { blockVolumes: disks.map((d) => ({ id: d.id, device: d.device, mountPoint: d.mountPoint })) } : {}),
  };
  failpoint('rootfs.persist');
  state.update((s) => (s.params = params));
  persistParams(o.bundle, params);

  // The guest's network is read at Start, from the namespace as it is then (src/task/launch.ts).
  const plan = await prepareLaunch({ id: o.id, bundle: o.bundle, spec: o.spec, unikernel: config, config: runtime, kvmUsable: o.host.kvmUsable, incoming: o.restore });
  await writeLaunchFiles(plan);
  o.log.info({ hypervisor: config.hypervisor, type: config.unikernelType, rootfs: choice.type, artifacts, accel: plan.accel }, 'unikernel container');
  return { unikernel: { config, runtime, plan, params, state }, mountedRootfs: mounted };
}

/**
 * Whether the plan, known before anything is mounted, boots the guest from the container's block
 * device (which the host then never mounts). A plan that finds no root without a shared filesystem
 * is not one: the full plan, with the shared filesystems, decides and reports later.
 */
function bootsFromContainerBlock(keys: UnikernelConfig, block: BlockSource): boolean {
  try {
    return !needsHostRootfs(chooseRootfs({ keys, containerBlock: block, sharedFs: { ninep: false, virtiofs: false }, guestBlock: guestBlockOf(keys.unikernelType) }));
  } catch {
    return false;
  }
}

/**
 * Takes a volume's host mount away for the VM (urunc unmounts it too), recorded first so that
 * release mounts it back; a mount still in use on the host fails Create with a clear error.
 */
async function lendVolume(d: BlockVolume, state: StateFile): Promise<void> {
  state.update((s) => (s.lentVolumes = [...(s.lentVolumes ?? []), { device: d.device, fstype: d.fstype, hostPath: d.hostPath, hostOptions: d.hostOptions }]));
  const e = await umount(d.hostPath);
  if (e !== 0) throw failedPrecondition(`volume ${d.mountPoint}: cannot take ${d.device} from ${d.hostPath} for the VM (errno ${e}): it is in use on the host`);
}

/** urunc's handleQueueProxy: the queue-proxy's env in config.json, rewritten atomically (mode kept). */
export function rewriteQueueProxy(bundle: string, log: Logger): void {
  const file = path.join(bundle, 'config.json');
  const spec = JSON.parse(readSpecText(bundle)) as { process?: { env?: string[] } };
  if (!spec.process) return;
  spec.process.env = queueProxyEnv(spec.process.env ?? []);
  writeAtomic(file, JSON.stringify(spec), fs.statSync(file).mode & 0o777);
  log.info('knative queue-proxy pointed at the unikernel guest');
}


/**
 * Copies kernel and initrd (same paths) from the image root into `dest` (on disk, in containerd's work dir), each at
 * most ARTIFACT_COPY_MAX bytes, in the thread pool: their sizes are the image's; returns dest.
 */
async function copyArtifacts(root: string, dest: string, uk: UnikernelConfig, state: StateFile): Promise<string> {
  state.update((s) => s.dirs.push(dest));
  for (const [p, what] of [[uk.binary, 'binary'], [uk.initrd, 'initrd']] as const) {
    if (!p) continue;
    const src = await resolveFileInRoot(root, p, `com.urunc.unikernel.${what}`);
    const { size } = await bounded(`stat ${src}`, fs.promises.stat(src));
    if (size > ARTIFACT_COPY_MAX) {
      throw invalidArgument(`com.urunc.unikernel.${what} ${JSON.stringify(p)} is ${size} bytes, more than the ${ARTIFACT_COPY_MAX / MiB} MiB that may be copied out of a block rootfs`);
    }
    // Kept at the path the image names, where the launcher looks it up.
    const to = path.join(dest, path.posix.normalize(`/${p}`));
    await fs.promises.mkdir(path.dirname(to), { recursive: true });
    await fs.promises.copyFile(src, to);
  }
  return dest;
}

/**
 * Starts virtiofsd, when the plan has one, inside the monitor's container (created, its hypervisor
 * still waiting for Start) and waits for its socket. Its pid is recorded for release; runc's delete
 * of the monitor's container takes it down with the rest.
 */
export async function startVirtiofsd(id: string, u: UnikernelTask, runc: Pick<Runc, 'exec'>): Promise<void> {
  const vf = u.plan.virtiofsd;
  if (!vf) return;
  const log = fs.openSync(vf.log, 'a', 0o600);
  try {
    const pid = await runc.exec(id, u.plan.runcBundle, {
      processFile: vf.processFile, pidFile: path.join(u.plan.runcBundle, 'virtiofsd.pid'), stdio: { stdin: 'ignore', stdout: log, stderr: log },
    });
    u.state.update((s) => (s.virtiofsd = { pid, startTime: processStartTime(pid) ?? '' }));
    await waitForVirtiofsd(pid, vf.socket, vf.log);
  } finally {
    fs.closeSync(log);
  }
}
