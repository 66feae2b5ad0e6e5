// Hermit (urunc's hermit_rs.go): `ip=IP/N gateway=GW -- args` (the `--` only between network
// settings and a command), a modern-only virtio NIC and -no-reboot on qemu; no exit device (urunc
// gives it none, so its exit status is qemu's power-off status).
import { maskToCidr, output, type GuestInput, type GuestOutput, type GuestType } from './types.js';

function build(g: GuestInput): GuestOutput {
  const p: string[] = [];
  if (g.net) p.push(`ip=${g.net.ip}/${maskToCidr(g.net.mask)}`, `gateway=${g.net.gateway}`);
  const command = g.args.join(' ').trim();
  if (p.length > 0 && command) p.push('--');
  if (command) p.push(command);
  const nic = g.monitor === 'qemu' && g.net && g.nic
    ? ['-netdev', `tap,id=net0,ifname=${g.nic.tap},script=no,downscript=no`, '-device', `${g.arch === 'aarch64' ? 'virtio-net-device,netdev=net0' : 'virtio-net-pci,netdev=net0,disable-legacy=on'},mac=${g.net.mac}`]
    : undefined;
  return output(p.join(' '), { netArgs: nic, monitorArgs: g.monitor === 'qemu' ? ['-no-reboot'] : [] });
}

export const hermit: GuestType = { sharedFs: [], blockFs: [], blockRoot: false, build };
