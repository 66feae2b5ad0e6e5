// mewz (urunc's mewz.go): `ip=IP/N gateway=GW` and nothing else on its command line (urunc writes
// `ip=/24 gateway=` without a network too); on qemu a modern-only virtio NIC (its driver finds no
// legacy device), -no-reboot, and the isa-debug-exit device at 0x501 through which it ends the VM
// with a status.
import { maskToCidr, output, type GuestInput, type GuestOutput, type GuestType } from './types.js';

function build(g: GuestInput): GuestOutput {
  const p = g.net ? [`ip=${g.net.ip}/${maskToCidr(g.net.mask)}`, `gateway=${g.net.gateway}`] : ['ip=/24', 'gateway='];
  const nic = g.monitor === 'qemu' && g.net && g.nic
    ? ['-device', `virtio-net-pci,netdev=net0,disable-legacy=on,disable-modern=off,mac=${g.net.mac}`, '-netdev', `tap,script=no,downscript=no,id=net0,ifname=${g.nic.tap}`]
    : undefined;
  return output(p.join(' '), {
    netArgs: nic,
    monitorArgs: g.monitor === 'qemu' ? ['-no-reboot', '-device', 'isa-debug-exit,iobase=0x501,iosize=2'] : [],
  });
}

export const mewz: GuestType = { sharedFs: [], blockFs: [], blockRoot: false, build };
