// The launcher: turns a unikernel container into a jailed hypervisor. It resolves the boot
// artifacts inside the image root, sizes the VM, asks the hypervisor plug-in for argv, and writes
// a derived OCI bundle (<bundle>/monitor) whose root is the minimal monitor root (<bundle>/monroot):
// the monitor binary, its libraries and data files, /dev with only the nodes it needs, the bound
// kernel/initrd, and a scratch dir. runc then does the privileged part in one place, as a jailer
// does: new mount namespace, the spec's other namespaces joined or created, the spec's cgroup,
// the spec's uid/gid, pivot into the monitor root, and exec of bin/urunc-launch (native/launch.c),
// held by runc's exec fifo until Start. What depends on the moment of start (the guest's network:
// Docker moves the container's interface into its namespace after Create) goes into the hypervisor's
// command line at Start (writeLaunchCommand), as urunc's reexec process builds it; urunc-launch then
// execs the hypervisor in its own place. So the pid runc reports at Create is a process in the
// container's namespaces, it is the hypervisor's for its whole life, and the hypervisor's exit
// status is the task's.
// Owned by the task: <bundle>/monitor, <bundle>/monroot and <work>/urunc-monitor are removed by removeMonitorBundle.
import fs from 'node:fs';
import path from 'node:path';
import { installedBinary } from '../sys/bin-path.js';
import { invalidArgument, messageOf } from '../errors.js';
import { resolveFileInRoot } from '../rootfs/resolve-in-root.js';
import { buildGuest, type GuestInput, type GuestNet, type GuestRootfs } from './guests/index.js';
import { URUNIT_DISK } from './guests/types.js';
import { HYPERVISOR_PLUGINS } from './hypervisors/index.js';
import type { VmSpec } from './hypervisors/types.js';
import type { RuntimeConfig } from './runtime-config.js';
import type { UnikernelConfig } from './unikernel-config.js';
import type { RootfsParams } from '../rootfs/planner.js';
import { readParams } from '../rootfs/state.js';
import { workDir } from '../rootfs/work-dir.js';
import { hasMountsUnder } from '../rootfs/mounts.js';
import { cpioArchive, parentDirs, type CpioEntry } from '../rootfs/cpio.js';
import { guestVolumes, initrdVolumeFiles, type GuestVolume, type SpecMount } from '../rootfs/volumes.js';
import { loaderDirs } from './elf.js';
import { MiB } from '../sys/read-capped.js';
import { rdevNumbers } from '../sys/dev.js';
import { bounded } from '../sys/off-loop.js';
import { virtiofsdArgv, virtiofsdSandbox, type Capabilities } from './virtiofsd.js';
import { INCOMING_SOCKET } from './vm-state.js';
import { gracefulShutdownMs } from './graceful-shutdown.js';
import { withVmmOverhead, type VmMemory } from './vmm-overhead.js';
import { VACCEL_DIR, checkAgentSocket, resolveVAccel, vsockDevices, withVAccelEnv, type VAccel } from './vaccel.js';

/** Inside the monitor root. */
const GUEST_DIR = '/guest';
const SHARED_ROOT = '/cntrRootfs';
const SCRATCH = '/run/urunc';
/** The container's block device, as a node in the monitor's /dev. */
const BLOCK_DEVICE = '/dev/urunc-rootfs';
const VIRTIOFS_SOCKET = 'virtiofs.sock';
/** The host's library directories, bound into every monitor root (merged-/usr symlinks recreated instead). */
const LIBRARY_DIRS = ['/lib', '/lib64', '/usr/lib', '/usr/lib64'];
/** urunit's config file in the scratch dir, when it is an initrd or a disk of its own. */
const URUNIT_CONF = 'urunit.conf';
/** The launch program in the monitor root, and the file in the scratch dir it reads the command line from. */
const LAUNCH_IN_ROOT = '/urunc-launch';
const ARGV_FILE = 'argv';

/** bin/urunc-launch of this installation. */
function launchBinary(): string {
  const p = installedBinary('urunc-launch');
  if (!p) throw new Error('bin/urunc-launch is missing from this installation (npm run build compiles it)');
  return p;
}

/** The guest's network as found at Start: a tap in the container's network namespace. */
export type LaunchNet = { tap: string; mtu: number; guest: GuestNet };

export interface LaunchInput {
  id: string;
  /** The bundle; the rootfs plan is read from its config.json (com.urunc.internal.rootfs.params). */
  bundle: string;
  /** config.json as parsed JSON. */
  spec: OciSpec;
  unikernel: UnikernelConfig;
  config: RuntimeConfig;
  kvmUsable: () => boolean;
  /** Restoring a checkpoint: qemu waits for the saved state on <scratch>/incoming.sock (src/monitors/vm-state.ts). */
  incoming?: boolean;
}

export interface LaunchPlan {
  /** The bundle to give runc. */
  runcBundle: string;
  /** The hypervisor's command line: without a network at Create, as launched once Start wrote it. */
  argv: string[];
  /** The command line and the hypervisor's config files for a network (or none), built from what Create planned. */
  command: (net: LaunchNet | undefined) => { argv: string[]; files: Record<string, string> };
  /** The scratch dir on the host, and the user the hypervisor runs as (who must read what is written there). */
  scratch: string;
  user: { uid: number; gid: number };
  /** Host path of the QMP socket's directory, when the monitor has one. */
  qmpInMonitor: string | undefined;
  /** The scratch dir as the monitor sees it (reached from the host as /proc/<pid>/root<dir>). */
  scratchInMonitor: string;
  rootfsType: GuestRootfs;
  accel: VmSpec['accel'];
  /** How long a graceful stop (ACPI power-down, opt-in) may take before the hypervisor is killed; 0: killed at once. */
  powerdownMs: number;
  /** The guest's RAM and the monitor's own share, which a memory limit of the container must cover. */
  memory: VmMemory;
  /** The monitor's exit status meaning the guest halted normally (reported as 0), when its guest type has one. */
  haltStatus: number | undefined;
  /**
   * The root initrd the guest boots when something is added to it (urunit's /urunit.conf, the
   * volumes' files): a copy, never the image's own file, written by writeLaunchFiles (off the event
   * loop) before the monitor starts.
   */
  initrdCopy: { from: string; to: string; urunitConfig: string | undefined; volumes: GuestVolume[] } | undefined;
  /**
   * virtiofsd for a virtio-fs root: the OCI process file for `runc exec` into the monitor's
   * container (created, not yet started), the socket to wait for and its log, all host paths.
   */
  virtiofsd: { processFile: string; socket: string; log: string } | undefined;
}

export type OciSpec = Record<string, unknown> & {
  ociVersion: string;
  process?: Record<string, unknown> & { args?: string[]; env?: string[]; terminal?: boolean; user?: { uid: number; gid: number }; capabilities?: Capabilities };
  linux?: Record<string, unknown> & {
    namespaces?: Array<{ type: string; path?: string }>;
    resources?: Record<string, unknown> & { memory?: { limit?: number }; devices?: unknown[] };
    devices?: unknown[];
    seccomp?: unknown;
  };
  annotations?: Record<string, string>;
  mounts?: SpecMount[];
  hooks?: unknown;
  hostname?: string;
};

/** The most of an image's kernel or initrd the shim copies into a bundle (often on tmpfs), each. */
export const ARTIFACT_COPY_MAX = 1024 * MiB;

export const monitorDir = (bundle: string) => path.join(bundle, 'monitor');
/** The monitor's image-sized files (the initrd copy, a VM state to restore), on disk: src/rootfs/work-dir.ts. */
export const monitorFilesDir = (bundle: string) => path.join(workDir(bundle), 'urunc-monitor');
export const monitorRoot = (bundle: string) => path.join(bundle, 'monroot');

export async function prepareLaunch(inp: LaunchInput): Promise<LaunchPlan> {
  // The plan Create persisted, read back from disk (never from a copy held in memory).
  const params = readParams(inp.bundle);
  const a = await resolveArtifacts(inp, params);
  const v = planVm(inp, params, a);
  await checkAgentSocket(v.vaccel);
  const { dir, root, scratch, user } = await makeMonitorBundleDirs(inp);
  // The hypervisor's own config files and urunit's config file hold the network: written at Start
  // with the command line (writeLaunchCommand); built here too, so what cannot be written fails now.
  const m = await monitorMounts(inp, params, a, v, { dir, root, scratch, user });
  const derived = derivedSpec(inp, v, m.binds, monitorDevices(inp, a, v), root);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(derived));
  const powerdownMs = gracefulShutdownMs(inp.spec.annotations, v.mcfg, v.guest.acpiPowerdown && v.cmd.qmp !== undefined);
  return {
    runcBundle: dir, argv: v.cmd.argv, command: v.commandFor, scratch, user, qmpInMonitor: v.cmd.qmp, scratchInMonitor: SCRATCH,
    rootfsType: params.type, accel: v.accel, powerdownMs, memory: v.memory, initrdCopy: m.initrdCopy, virtiofsd: m.virtiofsd,
    haltStatus: v.guest.haltStatus,
  };
}

type Artifacts = Awaited<ReturnType<typeof resolveArtifacts>>;
type VmPlan = ReturnType<typeof planVm>;
type MonitorDirs = { dir: string; root: string; scratch: string; user: { uid: number; gid: number } };

/** The boot artifacts and disks, resolved inside their root (a view, the rootfs, or copies): a hostile path is an error, never followed out. */
async function resolveArtifacts(inp: LaunchInput, params: RootfsParams) {
  const uk = inp.unikernel;
  const rootfsType = params.type;
  const kernel = await resolveFileInRoot(params.artifactRoot, uk.binary, 'com.urunc.unikernel.binary');
  const initrd = uk.initrd ? await resolveFileInRoot(params.artifactRoot, uk.initrd, 'com.urunc.unikernel.initrd') : undefined;
  const block = rootfsType === 'block' ? await blockDisk(params, uk) : undefined;
  // The image's data disk (block with a blkMntPoint other than /), attached as urunc's annot_vol.
  const dataDisk = uk.block && (uk.blkMntPoint ?? '/') !== '/' && !(block && params.blockSource === 'image')
    ? await dataDiskPath(params, uk.block) : undefined;
  const disks: GuestInput['disks'] = [];
  if (block) disks.push({ id: 'rootfs', mountPoint: params.blockSource === 'image' ? '/' : '/data' });
  if (dataDisk) disks.push({ id: 'annot_vol', mountPoint: uk.blkMntPoint as string });
  // Volumes lent as disks: device nodes in the monitor's /dev (never mounted there).
  const volumeDisks = (params.blockVolumes ?? []).map((v) => ({ ...v, node: `/dev/urunc-${v.id}`, dev: deviceNumbers(v.device) }));
  for (const v of volumeDisks) disks.push({ id: v.id, mountPoint: v.mountPoint });
  return { kernel, initrd, block, dataDisk, volumeDisks, disks };
}

/**
 * The guest's command line, the VM and the monitor's command for a network or none: built here
 * without one, so that whatever the image or the config gets wrong fails at Create, and again at
 * Start (writeLaunchCommand) with the network found then.
 */
function planVm(inp: LaunchInput, params: RootfsParams, a: Artifacts) {
  const uk = inp.unikernel;
  const hv = HYPERVISOR_PLUGINS[uk.hypervisor];
  const mcfg = inp.config.monitor(uk.hypervisor);
  const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
  const rootfsType = params.type;
  const { initrd, block, dataDisk, volumeDisks, disks } = a;
  // vAccel (spec annotations, gated by [runtime] vAccel): a vsock device and the guest's VACCEL_RPC_ADDRESS.
  const vaccel = resolveVAccel(inp.spec.annotations, uk.hypervisor, inp.id, inp.config.runtime.vAccel);
  const guestFor = (net: LaunchNet | undefined) => buildGuest(uk.unikernelType, guestInput(inp, uk, rootfsType, arch, disks, net, vaccel));
  const guest = guestFor(undefined);

  // urunit reads its config from the start of the only initrd (/sys/firmware/initrd): an image initrd
  // beside another root (rootfsType, ours) leaves no place for it, and a silent drop would run the
  // application without its env, user and working directory.
  if (guest.urunit?.placement === 'extra' && initrd) {
    throw invalidArgument(`urunit's config cannot reach a guest that boots the image's initrd with a ${rootfsType} root (com.urunc.unikernel.rootfsType): drop one of them`);
  }
  const binary = findBinary(mcfg.path || hv.defaultBinary(arch));
  const accel = hv.accel(mcfg, inp.kvmUsable());
  const memoryMb = guestMemory(inp.spec.linux?.resources?.memory?.limit, mcfg.default_memory_mb, hv.memoryUnit);
  const memory: VmMemory = { guestBytes: memoryMb * MiB, overheadBytes: mcfg.vmm_overhead_mb * MiB };
  const vmFor = (net: LaunchNet | undefined, g = guestFor(net)): VmSpec => ({
    id: inp.id, arch,
    kernel: `${GUEST_DIR}/kernel`,
    initrd: initrd ? `${GUEST_DIR}/initrd` : undefined,
    guest: g, memoryMb, vcpus: mcfg.default_vcpus,
    blocks: [
      ...(block ? [{ id: 'rootfs', path: block.device ? BLOCK_DEVICE : `${GUEST_DIR}/block` }] : []),
      ...(dataDisk ? [{ id: 'annot_vol', path: `${GUEST_DIR}/annot_vol` }] : []),
      ...volumeDisks.map((v) => ({ id: v.id, path: v.node })),
      ...(guest.urunit?.placement === 'disk' ? [{ id: URUNIT_DISK, path: `${SCRATCH}/${URUNIT_CONF}` }] : []),
    ],
    // Read-write as urunc (writes land in the container's snapshot), or read-only by configuration.
    sharedFs: rootfsType === '9pfs' ? { kind: '9p', path: SHARED_ROOT, readonly: inp.config.shared_fs.readonly }
      : rootfsType === 'virtiofs' ? { kind: 'virtiofs', socket: `${SCRATCH}/${VIRTIOFS_SOCKET}` } : undefined,
    net: net ? { tap: net.tap, mac: net.guest.mac, mtu: net.mtu } : undefined,
    vsock: vaccel && { cid: vaccel.cid, udsPath: `${VACCEL_DIR}/vaccel.sock` },
    urunitInitrd: g.urunit?.placement === 'extra' ? `${SCRATCH}/${URUNIT_CONF}` : undefined,
    seccomp: inp.spec.linux?.seccomp !== undefined,
    scratch: SCRATCH,
    accel, config: mcfg,
  });
  if (inp.incoming && uk.hypervisor !== 'qemu') throw invalidArgument(`restoring a checkpoint: a ${uk.hypervisor} VM cannot be restored (qemu only)`);
  const commandOf = (vm: VmSpec) => {
    const c = hv.command(binary, vm);
    if (inp.incoming) c.argv.push('-incoming', `unix:${SCRATCH}/${INCOMING_SOCKET}`);
    return c;
  };
  // At Start: the command line and files for the network found then, urunit's config among them
  // when it is a file of its own (FreeBSD's holds the network).
  const commandFor = (net: LaunchNet | undefined) => {
    const g = guestFor(net);
    const c = commandOf(vmFor(net, g));
    if (g.urunit && g.urunit.placement !== 'append') c.files[URUNIT_CONF] = g.urunit.config;
    return c;
  };
  const vm = vmFor(undefined, guest);
  const cmd = commandOf(vm);
  return { hv, mcfg, guest, vm, cmd, commandFor, binary, accel, memory, vaccel };
}

/** <bundle>/monitor (the derived bundle and its scratch dir, owned by the container's user) and the empty monitor root. */
async function makeMonitorBundleDirs(inp: LaunchInput): Promise<MonitorDirs> {
  const dir = monitorDir(inp.bundle);
  const root = monitorRoot(inp.bundle);
  const scratch = path.join(dir, 'scratch');
  await removeMonitorBundle(inp.bundle);
  fs.mkdirSync(scratch, { recursive: true, mode: 0o700 });
  fs.mkdirSync(root, { mode: 0o755 });
  const user = inp.spec.process?.user ?? { uid: 0, gid: 0 };
  fs.chownSync(scratch, user.uid, user.gid);
  return { dir, root, scratch, user };
}

/** What the monitor root holds, as bind mounts: urunc-launch, the monitor and its libraries and data, the guest's files, the scratch dir. */
async function monitorMounts(inp: LaunchInput, params: RootfsParams, a: Artifacts, v: VmPlan, d: MonitorDirs) {
  const { kernel, initrd, block, dataDisk } = a;
  const { hv, mcfg, guest, vm, binary } = v;
  const { dir, root, scratch, user } = d;
  const rootfsType = params.type;
  const binds: Array<[string, string, boolean]> = [[launchBinary(), LAUNCH_IN_ROOT, true], [binary, binary, true]];
  // The monitor's shared libraries: the library directories, as urunc binds them; merged-/usr
  // symlinks (/lib -> usr/lib) are recreated as symlinks in the monitor root.
  for (const d of LIBRARY_DIRS) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(d);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(d), path.join(root, d.slice(1)));
    else if (st.isDirectory()) binds.push([d, d, true]);
  }
  for (const d of dataDirsWithLinks(hv.dataDirs(mcfg))) binds.push([d.host, d.at, true]);
  binds.push([kernel, vm.kernel, true]);
  // The container's volumes: live in a 9p or virtio-fs root (as urunc binds them under /cntrRootfs), their files
  // copied into an initrd root (here) or a block root (at Create, task/prepare.ts, which also lends
  // block-device volumes as disks).
  const volumes = guestVolumes(inp.spec.mounts);
  const urunitConfig = guest.urunit?.placement === 'append' ? guest.urunit.config : undefined;
  const initrdCopy = initrd && rootfsType === 'initrd' && (urunitConfig !== undefined || volumes.length > 0)
    ? { from: initrd, to: path.join(monitorFilesDir(inp.bundle), 'initrd'), urunitConfig, volumes } : undefined;
  if (initrd && vm.initrd) binds.push([initrdCopy?.to ?? initrd, vm.initrd, true]);
  if (block && !block.device) binds.push([block.path, `${GUEST_DIR}/block`, false]);
  if (dataDisk) binds.push([dataDisk, `${GUEST_DIR}/annot_vol`, false]);
  let virtiofsd: LaunchPlan['virtiofsd'];
  if (vm.sharedFs) {
    // Live volumes under the export, as urunc binds them over /cntrRootfs; in the seed mode the image's
    // read-only view is served instead of the rootfs when every volume has its mount point there.
    const seed = inp.config.shared_fs.readonly;
    let fromView = seed && params.artifacts === 'view';
    for (const v of volumes) fromView = fromView && await mountPointIn(params.artifactRoot, v.destination, v.source);
    binds.push([fromView ? params.artifactRoot : params.mountedPath, SHARED_ROOT, fromView]);
    for (const v of volumes) binds.push([v.source, `${SHARED_ROOT}${v.destination}`, v.readonly]);
    if (vm.sharedFs.kind === 'virtiofs') {
      const vf = inp.config.extra_binaries.virtiofsd;
      const vfBinary = fs.realpathSync(vf.path);
      binds.push([vfBinary, vfBinary, true]);
      for (const d of loaderDirs(vfBinary, [...LIBRARY_DIRS, ...binds.map((b) => b[1])])) binds.push([d, d, true]);
      const argv = virtiofsdArgv(vfBinary, vf.options, vm.sharedFs.socket, SHARED_ROOT, { sandbox: virtiofsdSandbox(user.uid, inp.spec.process?.capabilities), readonly: seed });
      virtiofsd = { processFile: path.join(dir, 'virtiofsd.json'), socket: path.join(scratch, VIRTIOFS_SOCKET), log: path.join(dir, 'virtiofsd.log') };
      fs.writeFileSync(virtiofsd.processFile, JSON.stringify({
        terminal: false, user, args: argv, env: ['PATH=/usr/bin:/bin', 'HOME=/'], cwd: '/',
        ...pick(inp.spec.process ?? {}, ['capabilities', 'rlimits', 'oomScoreAdj', 'apparmorProfile', 'selinuxLabel']),
        noNewPrivileges: true,
      }));
    }
  }
  binds.push([scratch, SCRATCH, false]);
  // firecracker's hybrid vsock: the agent's socket beside the one firecracker makes (a tmpfs at /vaccel, derivedSpec).
  if (v.vaccel?.agentSocket) binds.push([v.vaccel.agentSocket.host, v.vaccel.agentSocket.inMonitor, true]);

  return { binds, initrdCopy, virtiofsd };
}

/** The device nodes of the monitor's /dev (and the cgroup rules that allow them). */
function monitorDevices(inp: LaunchInput, a: Artifacts, v: VmPlan) {
  const { block, volumeDisks } = a;
  const accel = v.accel;
  const devices: Array<{ path: string; type: string; major: number; minor: number }> = [];
  if (accel === 'kvm') devices.push({ path: '/dev/kvm', type: 'c', major: 10, minor: 232 });
  // Whether the guest gets a network is known at Start: the tap device is there for any container
  // with a network namespace of its own (none on the host's network).
  if ((inp.spec.linux?.namespaces ?? []).some((n) => n.type === 'network')) devices.push({ path: '/dev/net/tun', type: 'c', major: 10, minor: 200 });
  if (block?.device) devices.push({ path: BLOCK_DEVICE, type: 'b', ...block.device });
  for (const d of volumeDisks) devices.push({ path: d.node, type: 'b', ...d.dev });
  if (v.vaccel) devices.push(...vsockDevices(inp.unikernel.hypervisor));
  return devices;
}

/** The monitor container's OCI spec: the container's namespaces, cgroup, user and limits around the monitor root. */
function derivedSpec(inp: LaunchInput, v: VmPlan, binds: Array<[string, string, boolean]>, devices: ReturnType<typeof monitorDevices>, root: string) {
  const { memory, cmd, vaccel } = v;
  const spec = inp.spec;
  const user = spec.process?.user ?? { uid: 0, gid: 0 };
  const linux = spec.linux ?? {};
  const namespaces = [...(linux.namespaces ?? [])];
  if (!namespaces.some((n) => n.type === 'mount')) namespaces.push({ type: 'mount' });
  // A memory limit covers the guest's RAM plus the monitor's own share (vmm_overhead_mb).
  const resources = withVmmOverhead({ ...(linux.resources ?? {}) }, memory);
  resources.devices = [...(resources.devices ?? []), ...devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: 'rwm' }))];
  const derived = {
    ociVersion: spec.ociVersion,
    process: {
      terminal: spec.process?.terminal ?? false,
      user: spec.process?.user ?? { uid: 0, gid: 0 },
      args: [LAUNCH_IN_ROOT, `${SCRATCH}/${ARGV_FILE}`],
      env: ['PATH=/usr/bin:/bin', 'HOME=/'],
      cwd: '/',
      ...pick(spec.process ?? {}, ['capabilities', 'rlimits', 'noNewPrivileges', 'oomScoreAdj', 'apparmorProfile', 'selinuxLabel']),
      ...(cmd.seccomp ? { noNewPrivileges: true } : {}),
    },
    root: { path: root, readonly: true },
    hostname: spec.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      // vAccel: where firecracker makes its vsock socket, beside the agent's (bound below).
      ...(vaccel ? [{ destination: VACCEL_DIR, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=0700', `uid=${user.uid}`, `gid=${user.gid}`, 'size=64k'] }] : []),
      ...binds.map(([src, dst, ro]) => ({ destination: dst, type: 'bind', source: src, options: ['rbind', 'nosuid', 'nodev', ro ? 'ro' : 'rw'] })),
    ],
    // No hooks: the shim runs the container's hooks with its own bundle in the state (src/task/hooks.ts).
    annotations: spec.annotations,
    linux: {
      ...pick(linux, ['uidMappings', 'gidMappings', 'sysctl', 'cgroupsPath', 'rootfsPropagation', 'mountLabel', 'intelRdt']),
      namespaces,
      resources,
      devices: [...(linux.devices ?? []), ...devices.map((d) => ({ ...d, fileMode: 0o666, uid: 0, gid: 0 }))],
      // The container's own profile is not the monitor's (qemu applies its own -sandbox); a plug-in may give one.
      ...(cmd.seccomp ? { seccomp: cmd.seccomp } : {}),
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/proc/scsi'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus'],
    },
  };
  return derived;
}

function writeScratchFile(scratch: string, name: string, content: string | Buffer, user: { uid: number; gid: number }): void {
  const file = path.join(scratch, name);
  fs.writeFileSync(file, content, { mode: 0o600 });
  fs.chownSync(file, user.uid, user.gid);
}

/**
 * At Start, before runc starts the monitor container: the hypervisor's command line and config
 * files for the network found then, written where urunc-launch reads them. `check` may refuse the
 * command line first (a restore whose VM shape differs). Returns the argv.
 */
export function writeLaunchCommand(plan: LaunchPlan, net: LaunchNet | undefined, check?: (argv: readonly string[]) => void): string[] {
  const cmd = plan.command(net);
  check?.(cmd.argv);
  for (const [name, content] of Object.entries(cmd.files)) writeScratchFile(plan.scratch, name, content, plan.user);
  writeScratchFile(plan.scratch, ARGV_FILE, Buffer.from(cmd.argv.map((a) => `${a}\0`).join('')), plan.user);
  plan.argv = cmd.argv;
  return cmd.argv;
}

/** Writes what the plan could not write synchronously (sizes the image and the volumes control): the initrd copy. */
export async function writeLaunchFiles(plan: LaunchPlan): Promise<void> {
  const c = plan.initrdCopy;
  if (!c) return;
  const files: CpioEntry[] = await initrdVolumeFiles(c.volumes);
  if (c.urunitConfig !== undefined) files.push({ name: '/urunit.conf', mode: 0o100400, data: Buffer.from(c.urunitConfig) });
  const from = await fs.promises.stat(c.from);
  if (from.size > ARTIFACT_COPY_MAX) throw invalidArgument(`the image's initrd is ${from.size} bytes, more than the ${ARTIFACT_COPY_MAX / MiB} MiB copied to add urunit's config or volume files`);
  await fs.promises.mkdir(path.dirname(c.to), { recursive: true, mode: 0o700 });
  await fs.promises.copyFile(c.from, c.to);
  // The kernel reads an uncompressed archive after another only at a 4-byte aligned offset; it skips zeros.
  const { size } = await fs.promises.stat(c.to);
  const archive = cpioArchive([...parentDirs(files.map((f) => f.name)), ...files]);
  await fs.promises.appendFile(c.to, Buffer.concat([Buffer.alloc((4 - (size % 4)) % 4), archive]));
}

/**
 * The guest's memory in the monitor's unit, as urunc sizes it (unikontainers.go Exec and each
 * hypervisor's BuildExecCmd): the container's memory limit in bytes, else default_memory_mb MiB,
 * converted down (floor) to decimal MB for qemu, solo5 and cloud-hypervisor and to MiB for
 * firecracker. Every monitor takes the number as MiB, so qemu's guest of a 256 MiB limit has 268 MiB;
 * the container's cgroup covers that and the monitor's own memory (src/monitors/vmm-overhead.ts).
 */
export function guestMemory(limit: number | undefined, defaultMb: number, unit: number): number {
  const bytes = typeof limit === 'number' && limit > 0 ? limit : defaultMb * 2 ** 20;
  return Math.max(16, Math.floor(bytes / unit));
}

/** Removes what prepareLaunch made; idempotent. The monitor root holds no host mounts (runc's are in its own namespace). */
export async function removeMonitorBundle(bundle: string): Promise<void> {
  fs.rmSync(monitorDir(bundle), { recursive: true, force: true });
  fs.rmSync(monitorFilesDir(bundle), { recursive: true, force: true });
  const root = monitorRoot(bundle);
  if (!fs.existsSync(root)) return;
  if (await hasMountsUnder(root)) {
    throw new Error(`${root} still has mounts; not removing it`);
  }
  fs.rmSync(root, { recursive: true, force: true });
}

/**
 * Whether `dest` (a volume's destination) already exists in `root` as the kind of mount point its
 * source needs, through real directories only (a read-only root cannot get one made, and a symlink
 * would lead the bind elsewhere).
 */
async function mountPointIn(root: string, dest: string, source: string): Promise<boolean> {
  let p = root;
  const parts = dest.split('/').filter(Boolean);
  try {
    for (const [i, part] of parts.entries()) {
      p = path.join(p, part);
      // Inside the image's view and at a volume's source: either may sit on a filesystem that stops answering.
      const st = await bounded(`lstat ${p}`, fs.promises.lstat(p));
      if (i < parts.length - 1 ? !st.isDirectory() : st.isDirectory() !== (await bounded(`stat ${source}`, fs.promises.stat(source))).isDirectory() || st.isSymbolicLink()) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** The guest's root disk on the host: the image's block file (inside the rootfs) or the container's own device or file. */
async function blockDisk(params: RootfsParams, uk: UnikernelConfig): Promise<{ path: string; device?: { major: number; minor: number } }> {
  if (params.blockSource === 'image') {
    if (!uk.block || !params.mountedPath) throw invalidArgument('block rootfs from the image needs com.urunc.unikernel.block and a mounted rootfs');
    return { path: await resolveFileInRoot(params.mountedPath, uk.block, 'com.urunc.unikernel.block') };
  }
  const p = params.blockPath;
  if (!p) throw invalidArgument('block rootfs plan names no device');
  if (params.blockKind !== 'device') return { path: p };
  return { path: p, device: deviceNumbers(p) };
}

/** A block device node's major and minor numbers (Linux's dev_t encoding). */
function deviceNumbers(node: string): { major: number; minor: number } {
  const st = fs.statSync(node);
  if (!st.isBlockDevice()) throw invalidArgument(`${node} is not a block device`);
  return rdevNumbers(st.rdev);
}

function guestInput(inp: LaunchInput, uk: UnikernelConfig, rootfs: GuestRootfs, arch: VmSpec['arch'], disks: GuestInput['disks'], net: LaunchNet | undefined, vaccel: VAccel | undefined): GuestInput {
  const proc = inp.spec.process;
  const args = proc?.args?.length ? proc.args : (uk.cmdline ?? '').split(/\s+/).filter(Boolean);
  return {
    monitor: uk.hypervisor, arch, version: uk.unikernelVersion, args, env: withVAccelEnv(proc?.env ?? [], vaccel),
    user: { uid: proc?.user?.uid ?? 0, gid: proc?.user?.gid ?? 0 }, cwd: typeof proc?.cwd === 'string' ? proc.cwd : '/',
    net: net?.guest, nic: net && { tap: net.tap, mtu: net.mtu }, rootfs, disks,
    solo5NetDev: uk.solo5NetDev, solo5BlkDev: uk.solo5BlkDev, extraKernelArgs: inp.config.guests.linux.extra_cmdline,
  };
}

/** The image's data disk file, inside the mounted rootfs (a hostile path is an error). */
async function dataDiskPath(params: RootfsParams, blockPath: string): Promise<string> {
  if (!params.mountedPath) throw invalidArgument('com.urunc.unikernel.block with a blkMntPoint other than / needs the container rootfs mounted on the host');
  return resolveFileInRoot(params.mountedPath, blockPath, 'com.urunc.unikernel.block');
}

function findBinary(name: string): string {
  const candidates = name.includes('/') ? [name] : (process.env.PATH || '/usr/local/bin:/usr/bin:/bin').split(':').map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return fs.realpathSync(c);
    } catch {
      // next
    }
  }
  throw invalidArgument(`monitor binary ${name} not found${name.includes('/') ? '' : ' on PATH'}`);
}

/**
 * Data dirs (missing ones skipped) plus, at their own paths, the directories their absolute symlinks
 * point into (Debian's /usr/share/qemu/bios-256k.bin -> /usr/share/seabios/...).
 */
function dataDirsWithLinks(dirs: Array<{ host: string; at: string }>): Array<{ host: string; at: string }> {
  const out = new Map<string, string>();
  for (const d of dirs) {
    if (!fs.existsSync(d.host)) continue;
    let real: string;
    try {
      real = fs.realpathSync(d.host);
    } catch (err: unknown) {
      throw invalidArgument(`monitor data dir ${d.host}: ${messageOf(err)}`);
    }
    out.set(d.at, real);
    for (const e of fs.readdirSync(real, { withFileTypes: true })) {
      if (!e.isSymbolicLink()) continue;
      try {
        const parent = path.dirname(fs.realpathSync(path.join(real, e.name)));
        if (!parent.startsWith(real) && !out.has(parent)) out.set(parent, parent);
      } catch {
        // dangling link: nothing to bind
      }
    }
  }
  return [...out].map(([at, host]) => ({ host, at }));
}

function pick(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
