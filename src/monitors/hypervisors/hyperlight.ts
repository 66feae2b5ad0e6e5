// hyperlight-unikraft (urunc v0.8.0's hyperlight.go, "simple execution only"): the kernel as its one
// positional argument, the initrd and the guest's memory in bytes; no command line, environment,
// network, disks or shared directories reach the guest, as in urunc. Paired with unikraft only.
// Not packaged here: argv is unit-tested and the lifecycle runs against a fake binary.
import { MiB } from '../../sys/read-capped.js';
import type { Hypervisor, MonitorCommand, VmSpec } from './types.js';

export const hyperlight: Hypervisor = {
  name: 'hyperlight-unikraft',
  defaultBinary: () => 'hyperlight-unikraft',
  // Memory is sized in MiB (the limit rounded down to one) and passed in bytes.
  memoryUnit: MiB,
  accel: () => 'kvm',
  dataDirs: () => [],
  command(binary: string, vm: VmSpec): MonitorCommand {
    const a = [binary, vm.kernel];
    if (vm.initrd) a.push('--initrd', vm.initrd);
    a.push('--memory', String(vm.memoryMb * MiB));
    return { argv: a, files: {}, qmp: undefined };
  },
};
