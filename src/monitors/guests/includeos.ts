// IncludeOS (urunc's includeos.go): env words, `--net=IP/MASK --gateway=GW`, then the command; on
// solo5 its devices are named service and storage (one block device); qemu's default devices.
import { output, type GuestInput, type GuestOutput, type GuestType } from './types.js';

function build(g: GuestInput): GuestOutput {
  const p = [...g.env];
  if (g.net) p.push(`--net=${g.net.ip}/${g.net.mask}`, `--gateway=${g.net.gateway}`);
  if (g.args.length > 0) p.push(g.args.join(' '));
  return output(p.join(' '));
}

export const includeos: GuestType = { sharedFs: [], blockFs: ['ext2', 'ext3', 'ext4'], blockRoot: true, build };
