// rumprun (urunc's rumprun.go): its not-quite-JSON command line (repeated "env" keys, no HTML
// escaping) with the application, env, static network and the first disk at its mount point (the
// only one it mounts); solo5 devices named tap and rootfs.
import { output, type GuestInput, type GuestOutput, type GuestType } from './types.js';

function build(g: GuestInput): GuestOutput {
  const parts = [`"cmdline":${JSON.stringify(g.args.join(' '))}`];
  for (const e of g.env) parts.push(`"env":${JSON.stringify(e)}`);
  if (g.net) {
    parts.push(`"net":${JSON.stringify({ if: 'ukvmif0', cloner: 'True', type: 'inet', method: 'static', addr: g.net.ip, mask: '1', gw: g.net.gateway })}`);
  }
  const disk = g.disks[0];
  if (disk) parts.push(`"blk":${JSON.stringify({ source: 'etfs', path: '/dev/ld0a', fstype: 'blk', mountpoint: disk.mountPoint })}`);
  return output(`{${parts.join(',')}}`, { solo5Net: 'tap', solo5Block: 'rootfs' });
}

export const rumprun: GuestType = { sharedFs: [], blockFs: ['ext2'], blockRoot: true, build };
