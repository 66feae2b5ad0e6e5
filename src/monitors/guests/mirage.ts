// MirageOS (urunc's mirage.go): `--ipv4=IP/N --ipv4-gateway=GW args`; a network device named other
// than "service" (com.urunc.unikernel.solo5NetDev) prefixes the flags with its name
// (--<name>-ipv4=); solo5 devices named by solo5NetDev / solo5BlkDev, else service and storage.
import { maskToCidr, output, type GuestInput, type GuestOutput, type GuestType } from './types.js';

function build(g: GuestInput): GuestOutput {
  const netDev = g.solo5NetDev || 'service';
  const p: string[] = [];
  if (g.net) {
    const prefix = netDev === 'service' ? '' : `${netDev}-`;
    p.push(`--${prefix}ipv4=${g.net.ip}/${maskToCidr(g.net.mask)}`, `--${prefix}ipv4-gateway=${g.net.gateway}`);
  }
  p.push(...g.args);
  // urunc's Mirage.MonitorBlockCli gives qemu no disk.
  return output(p.join(' '), { solo5Net: netDev, solo5Block: g.solo5BlkDev || 'storage', blockArgs: g.monitor === 'qemu' ? () => [] : undefined });
}

export const mirage: GuestType = { sharedFs: [], blockFs: [], blockRoot: true, build };
