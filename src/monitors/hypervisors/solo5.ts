// solo5 tenders: hvt (KVM) and spt (seccomp, no KVM). `--mem=MB`, devices named as the guest was
// built (--net:<name>=tap, --block:<name>=path), then the kernel and its command line as argv.
import type { Hypervisor, MonitorCommand, VmSpec } from './types.js';

function solo5(name: 'hvt' | 'spt'): Hypervisor {
  return {
    name,
    defaultBinary: () => `solo5-${name}`,
    memoryUnit: 1e6,
    accel: () => (name === 'hvt' ? 'kvm' : 'none'),
    dataDirs: () => [],
    command(binary: string, vm: VmSpec): MonitorCommand {
      const a = [binary, `--mem=${vm.memoryMb}`];
      if (vm.net) a.push(`--net:${vm.guest.solo5Net}=${vm.net.tap}`, `--net-mac:${vm.guest.solo5Net}=${vm.net.mac}`);
      // A solo5 guest is built with one block device name: its first disk (urunc's MonitorBlockCli, Block[0]).
      const [disk] = vm.blocks;
      if (disk) a.push(`--block:${vm.guest.solo5Block}=${disk.path}`);
      a.push(vm.kernel);
      if (vm.guest.cmdline) a.push(vm.guest.cmdline);
      return { argv: a, files: {}, qmp: undefined };
    },
  };
}

export const hvt = solo5('hvt');
export const spt = solo5('spt');
