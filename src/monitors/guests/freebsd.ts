// FreeBSD (urunc's freebsd.go, merged after v0.8.0): root from the first virtio disk
// (`vfs.root.mountfrom=ext2fs:/dev/vtbd0` for the container's block rootfs), its urunit config as
// an extra disk. urunc runs it on firecracker only (its qemu devices are disabled upstream).
import { output, type GuestInput, type GuestOutput, type GuestType } from './types.js';
import { urunitConfig, urunitVolumes } from './urunit.js';

function build(g: GuestInput): GuestOutput {
  const config = urunitConfig({ env: g.env, uid: g.user.uid, gid: g.user.gid, cwd: g.cwd, volumes: urunitVolumes(g.disks, true) });
  return output(g.rootfs === 'block' ? 'vfs.root.mountfrom=ext2fs:/dev/vtbd0' : 'vfs.root.mountfrom=/dev/vtbd0', {
    urunit: { config, placement: 'disk' },
  });
}

export const freebsd: GuestType = { sharedFs: [], blockFs: ['ext2'], blockRoot: true, build };
