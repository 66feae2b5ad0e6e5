// FreeBSD as urunc's current freebsd.go builds it (merged after v0.8.0; FreeBSD.CommandString,
// Init, MonitorCli, MonitorNetCli, MonitorBlockCli, MonitorSharedfsCli, buildUrunitConfig):
// - root: the first virtio disk, `ufs:` for an image's block file, `ext2fs:` for the container's
//   own block snapshot; or the container's rootfs over 9p (`p9fs:fs0`, qemu). No other root.
// - `init_path=<argv[0]>` (the FreeBSD kernel starts init without arguments). When init is urunit
//   (argv[0] named urunit), its config (env, user, working directory, the arguments, data disks,
//   the network) is a raw disk after all others, `URUNIT_CONFIG=/dev/vtbd<n>`, and
//   `URUNIT_DEFROUTE=1` for an off-link gateway.
// - qemu: microvm with ACPI (FreeBSD reads the ACPI tables; pic=off crashes qemu), virtio-mmio
//   devices; firecracker: drives named FC<id>, none of them the root device.
// Boot arguments are kernel environment tokens split at blanks (and commas on PVH boot), so
// init_path must hold neither; everything else travels in the config disk.
import path from 'node:path';
import { invalidArgument } from '../../errors.js';
import { onLink } from './linux.js';
import { URUNIT_DISK, output, type GuestInput, type GuestOutput, type GuestType } from './types.js';
import { urunitConfig, urunitVolumes } from './urunit.js';

/** What FreeBSD's loader and kernel environment can carry in one token: a plain path. */
const INIT_PATH = /^[A-Za-z0-9._/+@%=-]+$/;

function build(g: GuestInput): GuestOutput {
  if (g.rootfs !== 'block' && g.rootfs !== '9pfs') {
    throw invalidArgument(`freebsd boots from a disk or a 9p root only (urunc's FreeBSD.Init), not ${g.rootfs === 'none' ? 'without a root' : `an ${g.rootfs} root`}: give it a block file (com.urunc.unikernel.block) or the container's rootfs (mountRootfs, on a block snapshotter or over 9p on qemu)`);
  }
  const [init, ...args] = g.args;
  const withUrunit = init !== undefined && path.posix.basename(init) === 'urunit';
  // The image's own block file is mounted at "/" (UFS, as FreeBSD images ship); the container's snapshot is ext2-4.
  const imageDisk = g.disks.find((d) => d.id === 'rootfs')?.mountPoint === '/';
  const p = [`vfs.root.mountfrom=${g.rootfs === '9pfs' ? 'p9fs:fs0' : `${imageDisk ? 'ufs' : 'ext2fs'}:/dev/vtbd0`}`];
  if (init !== undefined) {
    if (!INIT_PATH.test(init)) throw invalidArgument(`entrypoint ${JSON.stringify(init)}: FreeBSD's init_path boot argument cannot carry blanks, commas, colons, quotes or control characters`);
    p.push(`init_path=${init}`);
  }
  let urunit: GuestOutput['urunit'];
  if (withUrunit) {
    // The config disk comes after the root disk (a block root) and the data disks.
    p.push(`URUNIT_CONFIG=/dev/vtbd${g.disks.length}`);
    if (g.net && !onLink(g.net.ip, g.net.gateway, g.net.mask)) p.push('URUNIT_DEFROUTE=1');
    const config = urunitConfig({
      env: g.env, uid: g.user.uid, gid: g.user.gid, cwd: g.cwd, volumes: urunitVolumes(g.disks, g.monitor === 'firecracker'),
      freebsd: { args, net: g.net && { ip: g.net.ip, gateway: g.net.gateway, mask: g.net.mask } },
    });
    urunit = { config, placement: 'disk' };
  } else if (args.length > 0) {
    // urunc drops them: FreeBSD starts init without arguments, and only urunit reads them from its config.
    throw invalidArgument(`freebsd: the arguments after ${init} cannot reach an init that is not urunit (FreeBSD starts init without arguments); use urunit as the entrypoint`);
  }
  if (g.monitor === 'qemu') {
    return output(p.join(' '), {
      qemuMachine: 'microvm,acpi=on,pic=on,pit=on,rtc=on',
      monitorArgs: ['-nodefaults', '-no-reboot'],
      netArgs: g.net && g.nic ? ['-netdev', `tap,id=net0,script=no,downscript=no,ifname=${g.nic.tap}`, '-device', `virtio-net-device,netdev=net0,mac=${g.net.mac}`] : undefined,
      blockArgs: (d) => ['-device', `virtio-blk-device,serial=${d.id},drive=${d.id}`, '-drive', `format=raw,if=none,id=${d.id},file=${d.path}`],
      urunit,
    });
  }
  return output(p.join(' '), { urunit, driveId: (id) => (id === URUNIT_DISK ? 'FC_URUNIT_CONFIG' : `FC${id}`) });
}

// urunc's SupportsBlock and SupportsFS (ext2 for a disk, 9pfs).
export const freebsd: GuestType = { sharedFs: ['9pfs'], blockFs: ['ext2'], blockRoot: true, build };
