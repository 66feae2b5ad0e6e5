// qemu: urunc's argument set (memory in MB, -L data dir, -kernel/-initrd/-append, virtio devices,
// optional -sandbox) on `pc` or `microvm`, under kvm or tcg, plus what the guest type asks for (its
// own NIC, its exit device). The console is the serial port on qemu's stdio, which is the task's
// stdio. A QMP socket in the scratch dir feeds the watchdog and the graceful stop.
import type { Hypervisor, MonitorCommand, VmSpec } from './types.js';

/** MiB of translated code qemu keeps under tcg. */
export const TCG_TB_MB = 32;

export const qemu: Hypervisor = {
  name: 'qemu',
  defaultBinary: (arch) => `qemu-system-${arch}`,
  memoryUnit: 1e6,
  accel: (config, kvmUsable) => (config.accelerator === 'auto' ? (kvmUsable ? 'kvm' : 'tcg') : config.accelerator),
  // As urunc (prepareMonRootfs): data_path is a parent whose qemu/ is bound at /usr/share/qemu and
  // seabios/ at /usr/share/seabios (urunc-deploy's /opt/urunc/share); without it the host's own
  // directories, incl. Debian's firmware path (`qemu-system-x86_64 -L help`). -L is always /usr/share/qemu.
  dataDirs: (config) => (config.data_path
    ? [{ host: `${config.data_path}/qemu`, at: '/usr/share/qemu' }, { host: `${config.data_path}/seabios`, at: '/usr/share/seabios' }]
    : ['/usr/share/qemu', '/usr/share/seabios', '/usr/lib/ipxe/qemu'].map((d) => ({ host: d, at: d }))),
  command(binary: string, vm: VmSpec): MonitorCommand {
    // The guest type may need its own machine (FreeBSD: microvm with ACPI), else the config's.
    const machine = vm.arch === 'aarch64' ? 'virt' : vm.guest.qemuMachine ?? (vm.config.machine === 'microvm' ? 'microvm,pit=on,pic=on,rtc=on' : 'pc');
    const microvm = machine.startsWith('microvm');
    // microvm has no PCI bus: its virtio devices are the -device (virtio-mmio, modern only) variants.
    const dev = (pci: string) => (microvm ? pci.replace(/^(virtio-[a-z0-9-]+|vhost-user-fs|vhost-vsock)-pci\b/, '$1-device').replace(/,disable-(legacy|modern)=(on|off)/g, '') : pci);
    const a: string[] = [binary, '-name', `urunc-${vm.id}`, '-m', `${vm.memoryMb}M`, '-smp', String(vm.vcpus)];
    a.push('-M', machine);
    if (vm.accel === 'kvm') a.push('-accel', 'kvm', '-cpu', vm.config.cpu);
    // tcg's translation cache defaults to 1 GiB (an eighth of host RAM at most), filled as code runs:
    // 32 MiB keeps the monitor's own memory within vmm_overhead_mb and boots as fast (measured).
    else a.push('-accel', `tcg,tb-size=${TCG_TB_MB}`, '-cpu', 'max');
    a.push('-L', '/usr/share/qemu');
    a.push('-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot');
    const qmp = `${vm.scratch}/qmp.sock`;
    a.push('-qmp', `unix:${qmp},server=on,wait=off`);
    if (vm.seccomp) a.push('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
    // What the guest type asks for (urunc's MonitorCli); -no-reboot and -nodefaults are always here.
    a.push(...vm.guest.monitorArgs.filter((x) => x !== '-no-reboot' && x !== '-nodefaults'));
    if (vm.net) {
      if (vm.guest.netArgs) a.push(...vm.guest.netArgs.map((x) => dev(x)));
      else {
        // The default NIC advertises the tap's MTU to the guest (urunc's host_mtu).
        a.push('-netdev', `tap,id=net0,ifname=${vm.net.tap},script=no,downscript=no${vm.config.vhost ? ',vhost=on' : ''}`);
        a.push('-device', `${dev('virtio-net-pci')},netdev=net0,host_mtu=${vm.net.mtu},mac=${vm.net.mac}`);
      }
    }
    for (const b of vm.blocks) {
      if (vm.guest.blockArgs) {
        a.push(...vm.guest.blockArgs(b).map((x) => dev(x)));
        continue;
      }
      a.push('-device', `${dev('virtio-blk-pci')},serial=${b.id},drive=${b.id}${microvm ? '' : ',scsi=off'}`);
      a.push('-drive', `format=raw,if=none,id=${b.id},file=${b.path}`);
    }
    if (vm.sharedFs?.kind === '9p') {
      // multidevs=remap: volumes bound under the export live on other devices (urunc adds it after v0.8.0, #1034).
      a.push('-fsdev', `local,id=rootfs9p,security_model=none,path=${vm.sharedFs.path},multidevs=remap${vm.sharedFs.readonly ? ',readonly=on' : ''}`);
      a.push('-device', `${dev('virtio-9p-pci')},fsdev=rootfs9p,mount_tag=fs0`);
    } else if (vm.sharedFs?.kind === 'virtiofs') {
      // Shared guest RAM for virtiofsd from a memfd: no file (urunc's mem-path is under the bundle, RAM on real hosts).
      a.push('-object', `memory-backend-memfd,id=mem,size=${vm.memoryMb}M,share=on`, '-numa', 'node,memdev=mem');
      a.push('-chardev', `socket,id=char0,path=${vm.sharedFs.socket}`);
      a.push('-device', `${dev('vhost-user-fs-pci')},queue-size=1024,chardev=char0,tag=fs0`);
    }
    // vAccel (urunc's BuildExecCmd: after the guest's own arguments, before the command line).
    if (vm.vsock) a.push('-device', `${dev('vhost-vsock-pci')},id=vhost-vsock-pci0,guest-cid=${vm.vsock.cid}`);
    a.push('-kernel', vm.kernel);
    const initrd = vm.initrd ?? vm.urunitInitrd;
    if (initrd) a.push('-initrd', initrd);
    if (vm.guest.cmdline) a.push('-append', vm.guest.cmdline);
    return { argv: a, files: {}, qmp };
  },
};
