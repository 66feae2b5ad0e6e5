// cloud-hypervisor: everything on the command line (--kernel, --cmdline, --memory, --cpus, --disk,
// --net, --fs); console on the serial port, which is the task's stdio. Not packaged here: argv is
// unit-tested and the lifecycle runs against a fake binary.
import type { Hypervisor, MonitorCommand, VmSpec } from './types.js';

export const cloudHypervisor: Hypervisor = {
  name: 'cloud-hypervisor',
  defaultBinary: () => 'cloud-hypervisor',
  memoryUnit: 1e6,
  accel: () => 'kvm',
  dataDirs: () => [],
  command(binary: string, vm: VmSpec): MonitorCommand {
    const shared = vm.sharedFs?.kind === 'virtiofs';
    const a = [binary, '--memory', `size=${vm.memoryMb}M${shared ? ',shared=on' : ''}`, '--cpus', `boot=${vm.vcpus}`];
    a.push('--kernel', vm.kernel, '--console', 'off', '--serial', 'tty', '--seccomp', vm.seccomp ? 'true' : 'false');
    if (vm.net) a.push('--net', `tap=${vm.net.tap},mac=${vm.net.mac},mtu=${vm.net.mtu}`);
    for (const b of vm.blocks) a.push('--disk', `path=${b.path},id=${b.id}`);
    if (vm.initrd ?? vm.urunitInitrd) a.push('--initramfs', (vm.initrd ?? vm.urunitInitrd) as string);
    if (vm.sharedFs?.kind === 'virtiofs') a.push('--fs', `tag=fs0,socket=${vm.sharedFs.socket}`);
    if (vm.guest.cmdline) a.push('--cmdline', vm.guest.cmdline);
    return { argv: a, files: {}, qmp: undefined };
  },
};
