// Guest types: how each unikernel framework wants its command line, in urunc's exact formats, and
// what it asks of the monitor (extra qemu arguments, solo5 device names). One entry per type; the
// hypervisor plug-ins never branch on the guest type themselves.
import type { HypervisorName, UnikernelType } from './unikernel-config.js';

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
  net: GuestNet | undefined;
  rootfs: GuestRootfs;
  /** Where the guest mounts a block volume (blkMntPoint), for guests that mount it themselves. */
  blockMountPoint: string | undefined;
  /** Host-configured kernel parameters (linux only). */
  extraKernelArgs?: string;
}

export interface GuestOutput {
  cmdline: string;
  /** Extra qemu arguments the guest needs (linux: -no-reboot; mewz: its exit device). */
  qemuArgs: string[];
  /** solo5 device names the guest was built with. */
  solo5Net: string;
  solo5Block: string;
}

/** Guest types that can take their root from a shared filesystem (9p, virtio-fs), as in urunc. */
const SHARED_FS: ReadonlySet<UnikernelType> = new Set<UnikernelType>(['linux', 'unikraft']);

export function supportsSharedFs(type: UnikernelType): boolean {
  return SHARED_FS.has(type);
}

export function maskToCidr(mask: string): number {
  const bits = mask.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  if (!/^1*0*$/.test(bits) || bits.length !== 32) throw new Error(`bad netmask ${mask}`);
  return bits.indexOf('0') === -1 ? 32 : bits.indexOf('0');
}

const base = (cmdline: string, extra: Partial<GuestOutput> = {}): GuestOutput => ({
  cmdline, qemuArgs: [], solo5Net: 'service', solo5Block: 'storage', ...extra,
});

/** A Linux kernel: console, root, ip=, env as K=V (the kernel hands them to init), init= -- args. */
function linux(g: GuestInput): GuestOutput {
  const p = ['panic=-1', g.arch === 'aarch64' && g.monitor === 'qemu' ? 'console=ttyAMA0' : 'console=ttyS0'];
  let rdinit = '';
  if (g.rootfs === 'block') p.push('root=/dev/vda rw');
  else if (g.rootfs === 'initrd') {
    p.push('root=/dev/ram0 rw');
    rdinit = 'rd';
  } else if (g.rootfs === '9pfs') p.push('root=fs0 rw rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl');
  else if (g.rootfs === 'virtiofs') p.push('root=fs0 rw rootfstype=virtiofs');
  if (g.net) p.push(`ip=${g.net.ip}::${g.net.gateway}:${g.net.mask}:urunc:eth0:off`);
  if (g.extraKernelArgs) p.push(g.extraKernelArgs);
  p.push(...g.env);
  // Multi-word arguments are quoted for the guest's init, as urunc's urunit expects.
  const args = g.args.map((a) => (a.trim().includes(' ') ? `'${a.trim()}'` : a));
  const [app, ...rest] = args;
  if (app) p.push(`${rdinit}init=${app}`, '--', ...rest);
  return base(p.join(' '), { qemuArgs: ['-no-reboot', '-nodefaults'] });
}

function unikraft(g: GuestInput): GuestOutput {
  const legacy = g.version !== undefined && /^\d+(\.\d+)*$/.test(g.version) && compareVersions(g.version, '0.16.1') < 0;
  const p = ['Unikraft'];
  if (g.arch === 'aarch64') p.push('console=ttyS0');
  if (!legacy && g.env.length > 0) p.push(`env.vars=[ ${g.env.join(' ')} ]`);
  if (g.net) {
    if (legacy) p.push(`netdev.ipv4_addr=${g.net.ip}`, `netdev.ipv4_gw_addr=${g.net.gateway}`, `netdev.ipv4_subnet_mask=${g.net.mask}`);
    else p.push(`netdev.ip=${g.net.ip}/${maskToCidr(g.net.mask)}:${g.net.gateway}:8.8.8.8`);
  }
  if (legacy && g.rootfs === 'initrd') p.push('vfs.rootfs=initrd');
  else if (!legacy && g.rootfs === 'initrd') p.push('vfs.fstab=[ "initrd0:/:extract:::" ]');
  else if (!legacy && g.rootfs === '9pfs') p.push('vfs.fstab=[ "fs0:/:9pfs:::" ]');
  p.push('--', ...g.args);
  return base(p.join(' '));
}

/** rumprun's not-quite-JSON: repeated "env" keys, no HTML escaping. */
function rumprun(g: GuestInput): GuestOutput {
  const parts = [`"cmdline":${JSON.stringify(g.args.join(' '))}`];
  for (const e of g.env) parts.push(`"env":${JSON.stringify(e)}`);
  if (g.net) {
    parts.push(`"net":${JSON.stringify({ if: 'ukvmif0', cloner: 'True', type: 'inet', method: 'static', addr: g.net.ip, mask: '1', gw: g.net.gateway })}`);
  }
  if (g.rootfs === 'block') {
    parts.push(`"blk":${JSON.stringify({ source: 'etfs', path: '/dev/ld0a', fstype: 'blk', mountpoint: g.blockMountPoint ?? '/data' })}`);
  }
  return base(`{${parts.join(',')}}`, { solo5Net: 'tap', solo5Block: 'rootfs' });
}

function mirage(g: GuestInput): GuestOutput {
  const p: string[] = [];
  if (g.net) p.push(`--ipv4=${g.net.ip}/${maskToCidr(g.net.mask)}`, `--ipv4-gateway=${g.net.gateway}`);
  p.push(...g.args);
  return base(p.join(' '));
}

function mewz(g: GuestInput): GuestOutput {
  const p: string[] = [];
  if (g.net) p.push(`ip=${g.net.ip}/${maskToCidr(g.net.mask)}`, `gateway=${g.net.gateway}`);
  return base(p.join(' '), { qemuArgs: ['-no-reboot', '-device', 'isa-debug-exit,iobase=0x501,iosize=2'] });
}

function hermit(g: GuestInput): GuestOutput {
  const p: string[] = [];
  if (g.net) p.push(`ip=${g.net.ip}/${maskToCidr(g.net.mask)}`, `gateway=${g.net.gateway}`);
  if (g.args.length > 0) p.push('--', ...g.args);
  return base(p.join(' '));
}

const GUESTS: Record<UnikernelType, (g: GuestInput) => GuestOutput> = { linux, unikraft, rumprun, mirage, mewz, hermit };

export function buildGuest(type: UnikernelType, input: GuestInput): GuestOutput {
  return GUESTS[type](input);
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
