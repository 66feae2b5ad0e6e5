// A Linux kernel (urunc's linux.go): console, root, ip=, then either env as kernel parameters (the
// kernel hands K=V words to init) or, when init is urunit, urunit's config (env, user, working
// directory, data disks) in an initrd; URUNIT_DEFROUTE=1 when the gateway is off-link; then
// [rd]init=<app> -- <args>, multi-word arguments single-quoted for urunit. qemu runs it with
// -no-reboot -nodefaults; it powers off on an ACPI power button when its init handles one.
import { assertNotKernelParam, linuxWord, output, type GuestInput, type GuestOutput, type GuestType } from './types.js';
import { isUrunit, urunitConfig, urunitVolumes } from './urunit.js';

const ROOT: Record<GuestInput['rootfs'], string | undefined> = {
  block: 'root=/dev/vda rw',
  initrd: 'root=/dev/ram0 rw',
  '9pfs': 'root=fs0 rw rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl',
  virtiofs: 'root=fs0 rw rootfstype=virtiofs',
  none: undefined,
};

/** Whether ip and gateway share a network under mask (urunc's IsIPInSubnet). */
export function onLink(ip: string, gateway: string, mask: string): boolean {
  const n = (a: string) => a.split('.').reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
  return ((n(ip) & n(mask)) >>> 0) === ((n(gateway) & n(mask)) >>> 0);
}

function build(g: GuestInput): GuestOutput {
  const p = ['panic=-1', g.arch === 'aarch64' && g.monitor === 'qemu' ? 'console=ttyAMA0' : 'console=ttyS0'];
  const root = ROOT[g.rootfs];
  if (root) p.push(root);
  if (g.net) p.push(`ip=${g.net.ip}::${g.net.gateway}:${g.net.mask}:urunc:eth0:off`);
  if (g.extraKernelArgs) p.push(g.extraKernelArgs);
  // urunit regroups single-quoted words (urunc's parseCmdLine quotes multi-word arguments so); any
  // other init gets its arguments as the kernel splits them, so they are quoted by the kernel's rule.
  const withUrunit = isUrunit(g.args[0]?.trim());
  const args = withUrunit
    ? g.args.map((a) => (a.trim().includes(' ') ? `'${a.trim()}'` : a.trim()))
    : g.args.map((a, i) => linuxWord(a, i === 0 ? 'entrypoint' : 'argument'));
  const [app, ...rest] = args;
  let urunit: GuestOutput['urunit'];
  if (withUrunit) {
    const placement = g.rootfs === 'initrd' ? 'append' : 'extra';
    // firecracker names its drives in order; urunit maps FC<id> to /dev/vd[b..] (Linux.buildUrunitConfig).
    const volumes = urunitVolumes(g.disks, g.monitor === 'firecracker');
    urunit = { config: urunitConfig({ env: g.env, uid: g.user.uid, gid: g.user.gid, cwd: g.cwd, volumes }), placement };
    p.push(placement === 'append' ? 'URUNIT_CONFIG=/urunit.conf' : 'retain_initrd URUNIT_CONFIG=/sys/firmware/initrd');
  } else {
    // Without urunit the kernel hands K=V words to init: quoted by its rule, and never one of its own parameters.
    assertNotKernelParam(g.env);
    p.push(...g.env.map((e) => linuxWord(e, 'env', { param: true })));
  }
  if (g.net && !onLink(g.net.ip, g.net.gateway, g.net.mask)) p.push('URUNIT_DEFROUTE=1');
  if (app) p.push(`${g.rootfs === 'initrd' ? 'rd' : ''}init=${app}`, '--', ...rest);
  return output(p.join(' '), {
    monitorArgs: g.monitor === 'qemu' ? ['-no-reboot', '-nodefaults'] : [],
    // urunc's Linux.MonitorBlockCli on qemu: the disk's id is its virtio serial, which urunit looks up.
    blockArgs: g.monitor === 'qemu'
      ? (d) => ['-device', `virtio-blk-pci,serial=${d.id},drive=${d.id}`, '-drive', `format=raw,if=none,id=${d.id},file=${d.path}`]
      : undefined,
    urunit,
    acpiPowerdown: g.monitor === 'qemu',
  });
}

export const linux: GuestType = {
  sharedFs: ['virtiofs', '9pfs'],
  blockFs: ['ext2', 'ext3', 'ext4'],
  blockRoot: true,
  build,
};
