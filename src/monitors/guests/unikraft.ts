// Unikraft (urunc's unikraft.go): `Unikraft [console] env.vars=[ .. ] netdev.ip=IP/N:GW:DNS
// vfs.fstab=[ .. ] -- args`, or the netdev.ipv4_* / vfs.rootfs form before 0.16.1 (which takes no
// env). Its root is an initrd or 9pfs (never virtio-fs); the monitor's default NIC.
import { maskToCidr, output, unikraftListWord, unikraftWord, type GuestInput, type GuestOutput, type GuestType } from './types.js';

/** qemu's status for Unikraft's isa-debug-exit code 41 (a normal halt): (41 << 1) | 1. */
export const UNIKRAFT_HALT_STATUS = 83;

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function build(g: GuestInput): GuestOutput {
  // env.vars=[ .. ] and the arguments are words of Unikraft's own syntax, quoted by its parser's
  // rules so that each arrives as written (urunc splices them in raw, and a space splits them).
  const env = g.env.map((e) => unikraftListWord(e, 'env'));
  const args = g.args.map((a) => unikraftWord(a, 'argument'));
  const legacy = g.version !== undefined && /^\d+(\.\d+)*$/.test(g.version) && compareVersions(g.version, '0.16.1') < 0;
  const p = ['Unikraft'];
  if (g.arch === 'aarch64') p.push('console=ttyS0');
  if (!legacy && env.length > 0) p.push(`env.vars=[ ${env.join(' ')} ]`);
  // urunc writes the network settings with or without a network (empty values then).
  const n = g.net ?? { ip: '', gateway: '', mask: '' };
  if (legacy) p.push(`netdev.ipv4_addr=${n.ip}`, `netdev.ipv4_gw_addr=${n.gateway}`, `netdev.ipv4_subnet_mask=${n.mask}`);
  else p.push(`netdev.ip=${n.ip}/${n.mask ? maskToCidr(n.mask) : 24}:${n.gateway}:8.8.8.8`);
  if (legacy && g.rootfs === 'initrd') p.push('vfs.rootfs=initrd');
  else if (!legacy && g.rootfs === 'initrd') p.push('vfs.fstab=[ "initrd0:/:extract:::" ]');
  else if (!legacy && g.rootfs === '9pfs') p.push('vfs.fstab=[ "fs0:/:9pfs:::" ]');
  p.push('--', ...args);
  // Unikraft ends a VM on qemu by ACPI, which microvm lacks, then through the isa-debug-exit device
  // (plat/common/x86/cpu_native.c system_off): with it a halting guest ends qemu on any machine, with
  // (41 << 1) | 1 = 83 for a halt (the task's 0) and 85 for a crash. urunc gives the device to mewz only,
  // so a Unikraft guest on microvm never ends its VM there.
  if (g.monitor !== 'qemu') return output(p.join(' '));
  return output(p.join(' '), { monitorArgs: ['-device', 'isa-debug-exit,iobase=0x501,iosize=2'], haltStatus: UNIKRAFT_HALT_STATUS });
}

export const unikraft: GuestType = { sharedFs: ['9pfs'], blockFs: [], blockRoot: false, build };
