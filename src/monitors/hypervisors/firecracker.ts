// firecracker: no API socket; the whole VM is a JSON config file (boot-source, machine-config,
// drives, network-interfaces) written into the scratch dir. Memory in MiB. Not run on this
// project's machines (not packaged); its config is unit-tested against the documented schema.
import type { Hypervisor, MonitorCommand, VmSpec } from './types.js';

export const firecracker: Hypervisor = {
  name: 'firecracker',
  defaultBinary: () => 'firecracker',
  memoryUnit: 2 ** 20,
  accel: () => 'kvm',
  dataDirs: () => [],
  command(binary: string, vm: VmSpec): MonitorCommand {
    const config = {
      'boot-source': {
        kernel_image_path: vm.kernel,
        boot_args: vm.guest.cmdline,
        // firecracker takes one initrd: the root initrd, else urunit's config (urunc's firecracker.go).
        ...(vm.initrd ?? vm.urunitInitrd ? { initrd_path: vm.initrd ?? vm.urunitInitrd } : {}),
      },
      'machine-config': { vcpu_count: vm.vcpus, mem_size_mib: vm.memoryMb, smt: false },
      // The guest may name its drives (FreeBSD: FC<id>, never the root device, which is Linux's root=).
      drives: vm.blocks.map((b) => {
        const id = vm.guest.driveId?.(b.id) ?? b.id;
        return { drive_id: id, path_on_host: b.path, is_root_device: id === 'rootfs', is_read_only: false };
      }),
      'network-interfaces': vm.net ? [{ iface_id: 'net1', guest_mac: vm.net.mac, host_dev_name: vm.net.tap }] : [],
      // vAccel over firecracker's hybrid vsock (urunc's FirecrackerVSockDev): a guest connection to port P reaches <uds_path>_P.
      ...(vm.vsock ? { vsock: { guest_cid: vm.vsock.cid, uds_path: vm.vsock.udsPath, vsock_id: 'root' } } : {}),
    };
    const file = `${vm.scratch}/fc.json`;
    const argv = [binary, '--no-api', '--config-file', file];
    if (!vm.seccomp) argv.push('--no-seccomp');
    return { argv, files: { 'fc.json': `${JSON.stringify(config, null, 2)}\n` }, qmp: undefined };
  },
};
