// The contract between the launcher and the hypervisor plug-ins: a resolved VM (paths as seen
// inside the monitor root) in, argv and scratch files out. Plug-ins are pure: no I/O.
import type { GuestOutput } from '../guests/index.js';
import type { MonitorConfig } from '../runtime-config.js';
import type { HypervisorName } from '../unikernel-config.js';

export interface VmSpec {
  id: string;
  arch: 'x86_64' | 'aarch64';
  kernel: string;
  initrd: string | undefined;
  guest: GuestOutput;
  /** Guest memory in the monitor's own unit (Hypervisor.memoryUnit). */
  memoryMb: number;
  vcpus: number;
  blocks: Array<{ id: string; path: string }>;
  /** 9p export of this directory as fs0, or virtio-fs through virtiofsd's socket. */
  sharedFs: { kind: '9p'; path: string; readonly: boolean } | { kind: 'virtiofs'; socket: string } | undefined;
  net: { tap: string; mac: string; mtu: number } | undefined;
  /** vAccel's vsock device: the guest's CID, and firecracker's unix socket for it (src/monitors/vaccel.ts). */
  vsock: { cid: number; udsPath: string } | undefined;
  /** urunit's config as a raw initrd of its own (path inside the monitor root), when the guest has no root initrd. */
  urunitInitrd: string | undefined;
  seccomp: boolean;
  /** Writable directory inside the monitor root, also reachable from the host (sockets, config files). */
  scratch: string;
  accel: 'kvm' | 'tcg' | 'none';
  config: MonitorConfig;
}

export interface MonitorCommand {
  argv: string[];
  /** Files to write into the scratch directory before exec, by name. */
  files: Record<string, string>;
  /** A QMP socket (path inside the monitor root) the watchdog can watch. */
  qmp: string | undefined;
  /** A seccomp filter runc installs (with no_new_privs) right before it execs the monitor. */
  seccomp?: OciSeccomp | undefined;
}

/** The OCI runtime spec's linux.seccomp, as runc takes it. */
export interface OciSeccomp {
  defaultAction: string;
  architectures: string[];
  syscalls: Array<{ names: string[]; action: string }>;
}

export interface Hypervisor {
  name: HypervisorName;
  /** The binary looked up on the host's PATH when monitors.<name>.path is empty. */
  defaultBinary(arch: VmSpec['arch']): string;
  /** The unit of the monitor's memory argument in bytes: decimal MB (1e6) for most, MiB for firecracker. */
  memoryUnit: number;
  /** The accelerator this monitor needs ("none" for solo5-spt). */
  accel(config: MonitorConfig, kvmUsable: boolean): VmSpec['accel'];
  /** Host directories with firmware/data the monitor reads, and where they are bound (read-only) in its root. */
  dataDirs(config: MonitorConfig): Array<{ host: string; at: string }>;
  command(binary: string, vm: VmSpec): MonitorCommand;
}
