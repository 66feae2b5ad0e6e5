// The contract between the launcher and the guest types. A guest type turns what the container
// asks for (argv, env, user, network, root, volumes) into what its kernel and its monitor need:
// the command line, the monitor arguments it depends on (NIC, exit device), solo5 device names,
// urunit's config. As urunc's per-guest interface (pkg/unikontainers/unikernels: CommandString,
// MonitorNetCli, MonitorBlockCli, MonitorCli, Init), so the hypervisor plug-ins branch on no guest.
import { invalidArgument } from '../../errors.js';
import type { HypervisorName } from '../unikernel-config.js';

export type GuestRootfs = 'initrd' | 'block' | '9pfs' | 'virtiofs' | 'none';

export interface GuestNet {
  ip: string;
  mask: string;
  gateway: string;
  mac: string;
}

export interface GuestInput {
  monitor: HypervisorName;
  arch: 'x86_64' | 'aarch64';
  version: string | undefined;
  /** The application's argv (the spec's process.args, or the cmdline annotation). */
  args: string[];
  /** K=V strings from the spec's process.env. */
  env: string[];
  /** The spec's process user and cwd (urunit applies them in the guest). */
  user: { uid: number; gid: number };
  cwd: string;
  net: GuestNet | undefined;
  /** The host side of the guest's NIC: its tap and MTU. */
  nic: { tap: string; mtu: number } | undefined;
  rootfs: GuestRootfs;
  /**
   * The VM's disks in attach order (urunc's block list): the root disk "rootfs" (mount point "/" for
   * an image's block file, "/data" for the container's own snapshot), the image's data disk
   * "annot_vol" (blkMntPoint other than "/"), volumes "vol<i>".
   */
  disks: Array<{ id: string; mountPoint: string }>;
  /** solo5 device names from com.urunc.unikernel.solo5NetDev / solo5BlkDev, when the image sets them. */
  solo5NetDev?: string | undefined;
  solo5BlkDev?: string | undefined;
  /** Host-configured kernel parameters (linux only). */
  extraKernelArgs?: string;
}

export interface GuestOutput {
  cmdline: string;
  /** Monitor arguments the guest needs (urunc's MonitorCli): qemu's -no-reboot, mewz's exit device. */
  monitorArgs: string[];
  /** The guest's own NIC arguments for its monitor (urunc's MonitorNetCli); undefined: the plug-in's default NIC. */
  netArgs: string[] | undefined;
  /** The guest's own arguments for one disk on its monitor (urunc's MonitorBlockCli); undefined: the plug-in's default. */
  blockArgs: ((disk: { id: string; path: string }) => string[]) | undefined;
  /** solo5 device names the guest was built with (--net:<name>, --block:<name>). */
  solo5Net: string;
  solo5Block: string;
  /**
   * urunit's config file: appended to the root initrd as /urunit.conf ("append"), or handed to the
   * monitor as the only initrd, read by the guest at /sys/firmware/initrd ("extra"), or attached as a
   * raw disk of its own ("disk", FreeBSD).
   */
  urunit: { config: string; placement: 'append' | 'extra' | 'disk' } | undefined;
  /** The guest shuts down on an ACPI power button press (QMP system_powerdown). */
  acpiPowerdown: boolean;
  /** The monitor's exit status by which the guest says it halted normally (an exit device's code): the task's status is then 0. */
  haltStatus?: number;
  /** qemu's machine for this guest whatever the config says (FreeBSD: microvm with ACPI, its only working shape). */
  qemuMachine?: string;
  /** firecracker's drive id for a disk (FreeBSD: FC<id>, its urunit config disk FC_URUNIT_CONFIG); default the disk's id. */
  driveId?: (id: string) => string;
}

/** The id of urunit's raw config disk among the VM's disks (qemu's serial; firecracker's drive id through driveId). */
export const URUNIT_DISK = 'urunit';

export interface GuestType {
  /** The shared-filesystem roots the guest can mount (urunc's SupportsFS for 9pfs/virtiofs). */
  sharedFs: ReadonlyArray<'9pfs' | 'virtiofs'>;
  /** The filesystems it mounts from a disk (urunc's SupportsFS for block roots and volumes); none: it takes no volume disks. */
  blockFs: readonly string[];
  /** It boots from a disk (urunc's SupportsBlock): an image's block file, or the container's block rootfs in blockFs. */
  blockRoot: boolean;
  build(g: GuestInput): GuestOutput;
}

export function maskToCidr(mask: string): number {
  const bits = mask.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  if (!/^1*0*$/.test(bits) || bits.length !== 32) throw new Error(`bad netmask ${mask}`);
  return bits.indexOf('0') === -1 ? 32 : bits.indexOf('0');
}

/** An output with the defaults: no extra monitor arguments, the plug-in's NIC, solo5's usual device names. */
export const output = (cmdline: string, extra: Partial<GuestOutput> = {}): GuestOutput => ({
  cmdline, monitorArgs: [], netArgs: undefined, blockArgs: undefined, solo5Net: 'service', solo5Block: 'storage', urunit: undefined, acpiPowerdown: false, ...extra,
});

/** Kernel parameters a Linux kernel consumes itself: an env entry named so would change the boot, not the app's env. */
const KERNEL_PARAMS = new Set(['init', 'rdinit', 'root', 'rootfstype', 'rootflags', 'rootwait', 'ro', 'rw', 'console', 'earlycon', 'ip', 'nfsroot',
  'panic', 'initrd', 'retain_initrd', 'noinitrd', 'quiet', 'debug', 'loglevel', 'mem', 'maxcpus', 'nosmp', 'single', 'systemd.unit', 'URUNIT_CONFIG', 'URUNIT_DEFROUTE']);

/** Short for an error message. */
const shown = (w: string): string => JSON.stringify(w.length > 40 ? `${w.slice(0, 40)}...` : w);

/** Line breaks and other control characters (a tab is whitespace, and quoting carries it): no kernel command line carries them. */
function refuseControl(w: string, what: string): void {
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(w)) throw invalidArgument(`${what} ${shown(w)}: a line break or control character cannot be passed on a kernel command line`);
}

/**
 * One word as Unikraft's argument parser reads it back (uk_argnparse, lib/ukargparse/argparse.c):
 * as it is when it holds nothing the parser treats specially; else single-quoted (all literal up to
 * the next '); else, when it holds a ', double-quoted with " and \ escaped (the only escapes inside
 * double quotes). An empty word is dropped by the parser: it cannot be passed.
 */
export function unikraftWord(w: string, what: string): string {
  refuseControl(w, what);
  if (w === '') throw invalidArgument(`${what} "": Unikraft's parser drops an empty word, so it cannot be passed`);
  if (!/[\s"'\\]/.test(w)) return w;
  if (!w.includes("'")) return `'${w}'`;
  return `"${w.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * An entry of Unikraft's `env.vars=[ .. ]` (uk_libparam_parse, lib/uklibparam/parser.c): quoted as
 * any word, but a word that ends in ] closes the list whatever its quotes (they are gone by then).
 */
export function unikraftListWord(w: string, what: string): string {
  if (w.endsWith(']')) throw invalidArgument(`${what} ${shown(w)}: Unikraft ends its env.vars=[ ] list at a word that ends in ], so such a value cannot be passed`);
  return unikraftWord(w, what);
}

/**
 * One word as the Linux kernel reads it back (next_arg, lib/cmdline.c): only double quotes mean
 * anything, at the start of the word or of its value, and any " in it toggles quoting, so a value
 * holding one cannot be passed; whitespace is carried in double quotes (`K="a b"`, `"two words"`),
 * the empty word as `""`. Single quotes and backslashes are ordinary characters.
 */
export function linuxWord(w: string, what: string, opts: { param?: boolean } = {}): string {
  refuseControl(w, what);
  if (w.includes('"')) throw invalidArgument(`${what} ${shown(w)}: the Linux kernel's command line has no escape for a double quote, so it cannot be passed`);
  if (w !== '' && !/\s/.test(w)) return w;
  const eq = opts.param ? w.indexOf('=') : -1;
  return eq > 0 ? `${w.slice(0, eq + 1)}"${w.slice(eq + 1)}"` : `"${w}"`;
}

/** An env name the Linux kernel takes for one of its own parameters (or a module's, with a "."): refused, it would change the boot. */
export function assertNotKernelParam(env: readonly string[]): void {
  for (const w of env) {
    const name = w.split('=')[0] ?? '';
    if (name.includes('.') || KERNEL_PARAMS.has(name)) throw invalidArgument(`env ${JSON.stringify(name)}: the guest kernel would take it for its own parameter`);
  }
}
