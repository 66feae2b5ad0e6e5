// qemu: urunc's argument set (memory in MB, -L data dir, -kernel/-initrd/-append, virtio devices,
// optional -sandbox) on `pc` or `microvm`, under kvm or tcg. The console is the serial port on
// qemu's stdio, which is the task's stdio. A QMP socket in the scratch dir feeds the watchdog.
import type { Hypervisor, MonitorCommand, VmSpec } from './types.js';

export const qemu: Hypervisor = {
  name: 'qemu',
  defaultBinary: (arch) => `qemu-system-${arch}`,
  accel: (config, kvmUsable) => (config.accelerator === 'auto' ? (kvmUsable ? 'kvm' : 'tcg') : config.accelerator),
  // Debian's qemu searches its firmware path (`qemu-system-x86_64 -L help`) besides -L.
  dataDirs: (config) => (config.data_path ? [config.data_path] : ['/usr/share/qemu', '/usr/share/seabios', '/usr/lib/ipxe/qemu']),
  command(binary: string, vm: VmSpec): MonitorCommand {
    const microvm = vm.arch === 'x86_64' && vm.config.machine === 'microvm';
    // microvm has no PCI bus: its virtio devices are the -device (virtio-mmio) variants.
    const dev = (pci: string) => (microvm ? pci.replace(/-pci$/, '-device') : pci);
    const a: string[] = [binary, '-name', `urunc-${vm.id}`, '-m', `${vm.memoryMb}M`, '-smp', String(vm.vcpus)];
    if (vm.arch === 'aarch64') a.push('-M', 'virt');
    else if (microvm) a.push('-M', 'microvm,pit=on,pic=on,rtc=on');
    else a.push('-M', 'pc');
    if (vm.accel === 'kvm') a.push('-accel', 'kvm', '-cpu', vm.config.cpu);
    else a.push('-accel', 'tcg', '-cpu', 'max');
    a.push('-L', vm.config.data_path || '/usr/share/qemu');
    a.push('-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot');
    const qmp = `${vm.scratch}/qmp.sock`;
    a.push('-qmp', `unix:${qmp},server=on,wait=off`);
    if (vm.seccomp) a.push('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
    const extra = vm.guest.qemuArgs.filter((x) => x !== '-no-reboot' && x !== '-nodefaults');
    // A guest can end the VM with a status through isa-debug-exit (qemu exits with (code << 1) | 1).
    if (vm.arch === 'x86_64' && !extra.some((x) => x.startsWith('isa-debug-exit'))) a.push('-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04');
    a.push(...extra);
    if (vm.net) {
      a.push('-netdev', `tap,id=net0,ifname=${vm.net.tap},script=no,downscript=no${vm.config.vhost ? ',vhost=on' : ''}`);
      a.push('-device', `${dev('virtio-net-pci')},netdev=net0,mac=${vm.net.mac}`);
    }
    for (const b of vm.blocks) {
      a.push('-device', `${dev('virtio-blk-pci')},serial=${b.id},drive=${b.id}${microvm ? '' : ',scsi=off'}`);
      a.push('-drive', `format=raw,if=none,id=${b.id},file=${b.path}`);
    }
    if (vm.sharedFs?.kind === '9p') {
      a.push('-fsdev', `local,id=rootfs9p,security_model=none,path=${vm.sharedFs.path}${vm.sharedFs.readonly ? ',readonly=on' : ''}`);
      a.push('-device', `${dev('virtio-9p-pci')},fsdev=rootfs9p,mount_tag=fs0`);
    } else if (vm.sharedFs?.kind === 'virtiofs') {
      a.push('-object', `memory-backend-file,id=mem,size=${vm.memoryMb}M,mem-path=${vm.scratch},share=on`, '-numa', 'node,memdev=mem');
      a.push('-chardev', `socket,id=char0,path=${vm.sharedFs.socket}`);
      a.push('-device', `${dev('vhost-user-fs-pci')},queue-size=1024,chardev=char0,tag=fs0`);
    }
    a.push('-kernel', vm.kernel);
    if (vm.initrd) a.push('-initrd', vm.initrd);
    if (vm.guest.cmdline) a.push('-append', vm.guest.cmdline);
    return { argv: a, files: {}, qmp };
  },
};
