// The launcher: turns a unikernel container into a jailed hypervisor. It resolves the boot
// artifacts inside the image root, sizes the VM, asks the hypervisor plug-in for argv, and writes
// a derived OCI bundle (<bundle>/monitor) whose root is the minimal monitor root (<bundle>/monroot):
// the monitor binary, its libraries and data files, /dev with only the nodes it needs, the bound
// kernel/initrd, and a scratch dir. runc then does the privileged part in one place, as a jailer
// does: new mount namespace, the spec's other namespaces joined or created, the spec's cgroup,
// the spec's uid/gid, pivot into the monitor root, and exec of the hypervisor. So the pid runc
// reports is the hypervisor's for its whole life, nothing runs before Start (runc's exec fifo),
// and the hypervisor's exit status is the task's.
// Owned by the task: <bundle>/monitor and <bundle>/monroot are removed by removeMonitorBundle.
import fs from 'node:fs';
import path from 'node:path';
import { invalidArgument, messageOf } from '../errors.js';
import { resolveFileInRoot } from '../rootfs/resolve-in-root.js';
import { buildGuest, type GuestNet, type GuestRootfs } from './guests.js';
import { HYPERVISOR_PLUGINS } from './hypervisors/index.js';
import type { VmSpec } from './hypervisors/types.js';
import type { RuntimeConfig } from './runtime-config.js';
import type { UnikernelConfig } from './unikernel-config.js';
import type { RootfsParams } from '../rootfs/planner.js';
import { readParams } from '../rootfs/state.js';
import { hasMountsUnder } from '../rootfs/mounts.js';

/** Inside the monitor root. */
const GUEST_DIR = '/guest';
const SHARED_ROOT = '/cntrRootfs';
const SCRATCH = '/run/urunc';
/** The container's block device, as a node in the monitor's /dev. */
const BLOCK_DEVICE = '/dev/urunc-rootfs';
export const VIRTIOFS_SOCKET = 'virtiofs.sock';

export interface LaunchInput {
  id: string;
  /** The bundle; the rootfs plan is read from its config.json (com.urunc.internal.rootfs.params). */
  bundle: string;
  /** config.json as parsed JSON. */
  spec: OciSpec;
  unikernel: UnikernelConfig;
  config: RuntimeConfig;
  kvmUsable: () => boolean;
  /** The guest's network (a tap in the container's network namespace), when it has one. */
  net?: { tap: string; guest: GuestNet } | undefined;
}

export interface LaunchPlan {
  /** The bundle to give runc. */
  runcBundle: string;
  argv: string[];
  /** Host path of the QMP socket's directory, when the monitor has one. */
  qmpInMonitor: string | undefined;
  rootfsType: GuestRootfs;
  accel: VmSpec['accel'];
}

export type OciSpec = Record<string, unknown> & {
  ociVersion: string;
  process?: Record<string, unknown> & { args?: string[]; env?: string[]; terminal?: boolean; user?: { uid: number; gid: number } };
  linux?: Record<string, unknown> & {
    namespaces?: Array<{ type: string; path?: string }>;
    resources?: Record<string, unknown> & { memory?: { limit?: number }; devices?: unknown[] };
    devices?: unknown[];
    seccomp?: unknown;
  };
  annotations?: Record<string, string>;
  hooks?: unknown;
  hostname?: string;
};

export const monitorDir = (bundle: string) => path.join(bundle, 'monitor');
export const monitorRoot = (bundle: string) => path.join(bundle, 'monroot');

export function prepareLaunch(inp: LaunchInput): LaunchPlan {
  const uk = inp.unikernel;
  const hv = HYPERVISOR_PLUGINS[uk.hypervisor];
  const mcfg = inp.config.monitor(uk.hypervisor);
  const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

  // The plan Create persisted, read back from disk (never from a copy held in memory).
  const params = readParams(inp.bundle);
  const rootfsType = params.type;
  // Boot artifacts, resolved inside their root (a view, the rootfs, or copies): a hostile path is an error, never followed out.
  const kernel = resolveFileInRoot(params.artifactRoot, uk.binary, 'com.urunc.unikernel.binary');
  const initrd = uk.initrd ? resolveFileInRoot(params.artifactRoot, uk.initrd, 'com.urunc.unikernel.initrd') : undefined;
  const block = rootfsType === 'block' ? blockDisk(params, uk) : undefined;
  const guest = buildGuest(uk.unikernelType, guestInput(inp, uk, rootfsType, arch));

  const binary = findBinary(mcfg.path || hv.defaultBinary(arch));
  const accel = hv.accel(mcfg, inp.kvmUsable());
  const limit = inp.spec.linux?.resources?.memory?.limit;
  // As urunc: the container's memory limit, in decimal MB, is the guest's memory.
  const memoryMb = typeof limit === 'number' && limit > 0 ? Math.max(16, Math.floor(limit / 1e6)) : mcfg.default_memory_mb;
  const vm: VmSpec = {
    id: inp.id, arch,
    kernel: `${GUEST_DIR}/kernel`,
    initrd: initrd ? `${GUEST_DIR}/initrd` : undefined,
    guest, memoryMb, vcpus: mcfg.default_vcpus,
    blocks: block ? [{ id: 'rootfs', path: block.device ? BLOCK_DEVICE : `${GUEST_DIR}/block` }] : [],
    // A Linux guest gets a read-only export: it keeps its writes in its own overlay (tmpfs upper), off the container's files.
    sharedFs: rootfsType === '9pfs' ? { kind: '9p', path: SHARED_ROOT, readonly: uk.unikernelType === 'linux' }
      : rootfsType === 'virtiofs' ? { kind: 'virtiofs', socket: `${SCRATCH}/${VIRTIOFS_SOCKET}` } : undefined,
    net: inp.net ? { tap: inp.net.tap, mac: inp.net.guest.mac } : undefined,
    seccomp: inp.spec.linux?.seccomp !== undefined,
    scratch: SCRATCH,
    accel, config: mcfg,
  };
  const cmd = hv.command(binary, vm);

  const dir = monitorDir(inp.bundle);
  const root = monitorRoot(inp.bundle);
  const scratch = path.join(dir, 'scratch');
  removeMonitorBundle(inp.bundle);
  fs.mkdirSync(scratch, { recursive: true, mode: 0o700 });
  fs.mkdirSync(root, { mode: 0o755 });
  const user = inp.spec.process?.user ?? { uid: 0, gid: 0 };
  fs.chownSync(scratch, user.uid, user.gid);
  for (const [name, content] of Object.entries(cmd.files)) {
    fs.writeFileSync(path.join(scratch, name), content, { mode: 0o600 });
    fs.chownSync(path.join(scratch, name), user.uid, user.gid);
  }

  const binds: Array<[string, string, boolean]> = [[binary, binary, true]];
  // The monitor's shared libraries: the library directories, as urunc binds them; merged-/usr
  // symlinks (/lib -> usr/lib) are recreated as symlinks in the monitor root.
  for (const d of ['/lib', '/lib64', '/usr/lib', '/usr/lib64']) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(d);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(d), path.join(root, d.slice(1)));
    else if (st.isDirectory()) binds.push([d, d, true]);
  }
  for (const d of dataDirsWithLinks(hv.dataDirs(mcfg))) binds.push([d, d, true]);
  binds.push([kernel, vm.kernel, true]);
  if (initrd && vm.initrd) binds.push([initrd, vm.initrd, true]);
  if (block && !block.device) binds.push([block.path, `${GUEST_DIR}/block`, false]);
  if (vm.sharedFs?.kind === '9p') binds.push([params.mountedPath, SHARED_ROOT, false]);
  binds.push([scratch, SCRATCH, false]);

  const devices: Array<{ path: string; type: string; major: number; minor: number }> = [];
  if (accel === 'kvm') devices.push({ path: '/dev/kvm', type: 'c', major: 10, minor: 232 });
  if (vm.net) devices.push({ path: '/dev/net/tun', type: 'c', major: 10, minor: 200 });
  if (block?.device) devices.push({ path: BLOCK_DEVICE, type: 'b', ...block.device });

  const spec = inp.spec;
  const linux = spec.linux ?? {};
  const namespaces = [...(linux.namespaces ?? [])];
  if (!namespaces.some((n) => n.type === 'mount')) namespaces.push({ type: 'mount' });
  const resources = { ...(linux.resources ?? {}) };
  resources.devices = [...(resources.devices ?? []), ...devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: 'rwm' }))];
  const derived = {
    ociVersion: spec.ociVersion,
    process: {
      terminal: spec.process?.terminal ?? false,
      user: spec.process?.user ?? { uid: 0, gid: 0 },
      args: cmd.argv,
      env: ['PATH=/usr/bin:/bin', 'HOME=/'],
      cwd: '/',
      ...pick(spec.process ?? {}, ['capabilities', 'rlimits', 'noNewPrivileges', 'oomScoreAdj', 'apparmorProfile', 'selinuxLabel']),
    },
    root: { path: root, readonly: true },
    hostname: spec.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      ...binds.map(([src, dst, ro]) => ({ destination: dst, type: 'bind', source: src, options: ['rbind', 'nosuid', 'nodev', ro ? 'ro' : 'rw'] })),
    ],
    // No hooks: the shim runs the container's hooks with its own bundle in the state (src/task/hooks.ts).
    annotations: spec.annotations,
    linux: {
      ...pick(linux, ['uidMappings', 'gidMappings', 'sysctl', 'cgroupsPath', 'rootfsPropagation', 'mountLabel', 'intelRdt']),
      namespaces,
      resources,
      devices: [...(linux.devices ?? []), ...devices.map((d) => ({ ...d, fileMode: 0o666, uid: 0, gid: 0 }))],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/proc/scsi'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus'],
    },
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(derived));
  return { runcBundle: dir, argv: cmd.argv, qmpInMonitor: cmd.qmp, rootfsType, accel };
}

/** Removes what prepareLaunch made; idempotent. The monitor root holds no host mounts (runc's are in its own namespace). */
export function removeMonitorBundle(bundle: string): void {
  fs.rmSync(monitorDir(bundle), { recursive: true, force: true });
  const root = monitorRoot(bundle);
  if (!fs.existsSync(root)) return;
  if (hasMountsUnder(root)) {
    throw new Error(`${root} still has mounts; not removing it`);
  }
  fs.rmSync(root, { recursive: true, force: true });
}

/** The guest's root disk on the host: the image's block file (inside the rootfs) or the container's own device or file. */
function blockDisk(params: RootfsParams, uk: UnikernelConfig): { path: string; device?: { major: number; minor: number } } {
  if (params.blockSource === 'image') {
    if (!uk.block || !params.mountedPath) throw invalidArgument('block rootfs from the image needs com.urunc.unikernel.block and a mounted rootfs');
    return { path: resolveFileInRoot(params.mountedPath, uk.block, 'com.urunc.unikernel.block') };
  }
  const p = params.blockPath;
  if (!p) throw invalidArgument('block rootfs plan names no device');
  if (params.blockKind !== 'device') return { path: p };
  const rdev = fs.statSync(p).rdev;
  return { path: p, device: { major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((Math.floor(rdev / 4096) & 0xfff00)) } };
}

function guestInput(inp: LaunchInput, uk: UnikernelConfig, rootfs: GuestRootfs, arch: VmSpec['arch']) {
  const args = inp.spec.process?.args?.length ? inp.spec.process.args : (uk.cmdline ?? '').split(/\s+/).filter(Boolean);
  return {
    monitor: uk.hypervisor, arch, version: uk.unikernelVersion, args, env: inp.spec.process?.env ?? [], net: inp.net?.guest, rootfs,
    blockMountPoint: uk.blkMntPoint, extraKernelArgs: inp.config.guests.linux.extra_cmdline,
  };
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

/** Data dirs plus the directories their symlinks point into (Debian's /usr/share/qemu -> ../seabios). */
function dataDirsWithLinks(dirs: string[]): string[] {
  const out = new Set<string>();
  for (const d of dirs) {
    if (!fs.existsSync(d)) continue;
    let real: string;
    try {
      real = fs.realpathSync(d);
    } catch (err: unknown) {
      throw invalidArgument(`monitor data dir ${d}: ${messageOf(err)}`);
    }
    out.add(real);
    for (const e of fs.readdirSync(real, { withFileTypes: true })) {
      if (!e.isSymbolicLink()) continue;
      try {
        const target = fs.realpathSync(path.join(real, e.name));
        const parent = path.dirname(target);
        if (!parent.startsWith(real)) out.add(parent);
      } catch {
        // dangling link: nothing to bind
      }
    }
  }
  return [...out];
}

function pick(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
