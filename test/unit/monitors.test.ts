// Unikernel config, runtime config, guest command lines, hypervisor argv/config files and the
// in-root path resolver, each against its documented format.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveInRoot } from '../../src/rootfs/resolve-in-root.js';
import { decodeUruncJson, resolveUnikernelConfig } from '../../src/monitors/unikernel-config.js';
import { parseRuntimeConfig } from '../../src/monitors/runtime-config.js';
import { buildGuest, type GuestInput } from '../../src/monitors/guests.js';
import { HYPERVISOR_PLUGINS } from '../../src/monitors/hypervisors/index.js';
import type { VmSpec } from '../../src/monitors/hypervisors/types.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('resolveInRoot', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rir-'));
  fs.mkdirSync(path.join(root, 'unikernel'));
  fs.writeFileSync(path.join(root, 'unikernel', 'k'), 'x');
  fs.symlinkSync('/unikernel/k', path.join(root, 'abs-link'));
  fs.symlinkSync('../unikernel/k', path.join(root, 'unikernel', 'rel-link'));
  fs.symlinkSync('../../../../etc/shadow', path.join(root, 'unikernel', 'out-link'));
  fs.symlinkSync('loop2', path.join(root, 'loop1'));
  fs.symlinkSync('loop1', path.join(root, 'loop2'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('resolves absolute and relative paths inside the root', () => {
    expect(resolveInRoot(root, '/unikernel/k', 'binary')).toBe(path.join(root, 'unikernel/k'));
    expect(resolveInRoot(root, 'unikernel/./k', 'binary')).toBe(path.join(root, 'unikernel/k'));
    expect(resolveInRoot(root, '/unikernel/../unikernel/k', 'binary')).toBe(path.join(root, 'unikernel/k'));
  });
  it('follows symlinks with the image root as /', () => {
    expect(resolveInRoot(root, '/abs-link', 'binary')).toBe(path.join(root, 'unikernel/k'));
    expect(resolveInRoot(root, '/unikernel/rel-link', 'binary')).toBe(path.join(root, 'unikernel/k'));
  });
  it('refuses .. above the root, directly or through a symlink', () => {
    expect(() => resolveInRoot(root, '../../etc/shadow', 'binary')).toThrow(/escapes the image root/);
    expect(() => resolveInRoot(root, '/unikernel/../../etc/shadow', 'binary')).toThrow(/escapes the image root/);
    expect(() => resolveInRoot(root, '/unikernel/out-link', 'binary')).toThrow(/escapes the image root/);
  });
  it('reports missing files and symlink loops', () => {
    expect(() => resolveInRoot(root, '/nope', 'binary')).toThrow(/does not exist in the image/);
    expect(() => resolveInRoot(root, '/loop1', 'binary')).toThrow(/too many symbolic links/);
    expect(() => resolveInRoot(root, '/unikernel/k/x', 'binary')).toThrow(/not a directory/);
  });
});

describe('unikernel config', () => {
  const full = { unikernelType: 'unikraft', hypervisor: 'qemu', binary: '/unikernel/k' };
  it('no unikernelType anywhere: an ordinary container', () => {
    expect(resolveUnikernelConfig({ spec: {}, image: { cmdline: 'x' }, uruncJson: {} })).toBeUndefined();
  });
  it('spec wins over image, image over urunc.json, key by key', () => {
    const c = resolveUnikernelConfig({ spec: { hypervisor: 'firecracker' }, image: { ...full, cmdline: 'img' }, uruncJson: { ...full, cmdline: 'json', initrd: '/i' } });
    expect(c).toMatchObject({ hypervisor: 'firecracker', unikernelType: 'unikraft', cmdline: 'img', initrd: '/i' });
  });
  it('urunc.json values are base64; other keys are ignored; malformed files are errors', () => {
    const j = decodeUruncJson(JSON.stringify({ 'com.urunc.unikernel.binary': b64('/unikernel/k'), 'com.urunc.unikernel.mountRootfs': b64('true'), other: 1 }));
    expect(j).toEqual({ binary: '/unikernel/k', mountRootfs: 'true' });
    expect(resolveUnikernelConfig({ spec: {}, image: {}, uruncJson: { ...full, mountRootfs: 'true' } })?.mountRootfs).toBe(true);
    expect(() => decodeUruncJson('{')).toThrow(/not valid JSON/);
    expect(() => decodeUruncJson('[]')).toThrow(/JSON object/);
    expect(() => decodeUruncJson(JSON.stringify({ 'com.urunc.unikernel.binary': 'not base64!' }))).toThrow(/base64/);
  });
  it('invalid values are clear errors', () => {
    expect(() => resolveUnikernelConfig({ spec: { ...full, unikernelType: 'windows' }, image: {}, uruncJson: {} })).toThrow(/unikernelType/);
    expect(() => resolveUnikernelConfig({ spec: { ...full, binary: '/a b;rm' }, image: {}, uruncJson: {} })).toThrow(/binary: only/);
    expect(() => resolveUnikernelConfig({ spec: { unikernelType: 'linux' }, image: {}, uruncJson: {} })).toThrow(/hypervisor: required/);
    expect(() => resolveUnikernelConfig({ spec: { ...full, mountRootfs: 'maybe' }, image: {}, uruncJson: {} })).toThrow(/mountRootfs/);
  });
});

describe('runtime config', () => {
  it('defaults as urunc', () => {
    const c = parseRuntimeConfig('', 't');
    expect(c.monitor('qemu')).toMatchObject({ default_memory_mb: 256, default_vcpus: 1, accelerator: 'auto', machine: 'pc', cpu: 'host' });
    expect(c.extra_binaries.virtiofsd).toEqual({ path: '/usr/libexec/virtiofsd', options: '--cache always --sandbox none' });
    expect(c.rootfs_view.enabled).toBe(false);
  });
  it('reads urunc knobs and ours; unknown keys warn', () => {
    const warnings: string[] = [];
    const c = parseRuntimeConfig('[log]\nlevel = "debug"\n[monitors.qemu]\ndefault_memory_mb = 512\naccelerator = "tcg"\nbogus = 1\n[monitors.hvt]\npath = "/opt/hvt"\n[nope]\nx = 1\n', 't', (w) => warnings.push(w));
    expect(c.monitor('qemu')).toMatchObject({ default_memory_mb: 512, accelerator: 'tcg' });
    expect(c.monitor('hvt').path).toBe('/opt/hvt');
    expect(c.monitor('firecracker').default_memory_mb).toBe(256);
    expect(warnings).toEqual(['t: unknown key monitors.qemu.bogus ignored', 't: unknown key nope ignored']);
  });
  it('wrong types and bad TOML fail', () => {
    expect(() => parseRuntimeConfig('[monitors.qemu]\ndefault_memory_mb = "lots"\n', 't')).toThrow(/monitors.qemu.default_memory_mb/);
    expect(() => parseRuntimeConfig('[monitors.qemu]\naccelerator = "hvf"\n', 't')).toThrow(/accelerator/);
    expect(() => parseRuntimeConfig('[monitors\n', 't')).toThrow(/^t: /);
  });
});

const g = (over: Partial<GuestInput> = {}): GuestInput => ({
  monitor: 'qemu', arch: 'x86_64', version: undefined, args: ['/bin/app', 'a b', 'c'], env: ['K=V'], net: undefined, rootfs: 'none', blockMountPoint: undefined, ...over,
});
const net = { ip: '10.4.0.5', mask: '255.255.255.0', gateway: '10.4.0.1', mac: '02:00:00:00:00:01' };

describe('guest command lines (urunc formats)', () => {
  it('linux: initrd, 9p, block, ip=, env, init and quoted args', () => {
    expect(buildGuest('linux', g({ rootfs: 'initrd' })).cmdline).toBe("panic=-1 console=ttyS0 root=/dev/ram0 rw K=V rdinit=/bin/app -- 'a b' c");
    expect(buildGuest('linux', g({ rootfs: '9pfs', net })).cmdline).toBe(
      "panic=-1 console=ttyS0 root=fs0 rw rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl ip=10.4.0.5::10.4.0.1:255.255.255.0:urunc:eth0:off K=V init=/bin/app -- 'a b' c");
    expect(buildGuest('linux', g({ rootfs: 'block', args: ['/sbin/init'], env: [] })).cmdline).toBe('panic=-1 console=ttyS0 root=/dev/vda rw init=/sbin/init --');
    expect(buildGuest('linux', g()).qemuArgs).toEqual(['-no-reboot', '-nodefaults']);
  });
  it('unikraft: current and pre-0.16.1 forms', () => {
    expect(buildGuest('unikraft', g({ rootfs: 'initrd', net, args: ['x'] })).cmdline).toBe(
      'Unikraft env.vars=[ K=V ] netdev.ip=10.4.0.5/24:10.4.0.1:8.8.8.8 vfs.fstab=[ "initrd0:/:extract:::" ] -- x');
    expect(buildGuest('unikraft', g({ version: '0.15.0', rootfs: 'initrd', net, args: ['x'] })).cmdline).toBe(
      'Unikraft netdev.ipv4_addr=10.4.0.5 netdev.ipv4_gw_addr=10.4.0.1 netdev.ipv4_subnet_mask=255.255.255.0 vfs.rootfs=initrd -- x');
  });
  it('rumprun: its JSON with repeated env keys, net and block', () => {
    const out = buildGuest('rumprun', g({ monitor: 'hvt', args: ['redis', '--x'], env: ['A=1', 'B=2'], net, rootfs: 'block', blockMountPoint: '/data' }));
    expect(out.cmdline).toBe('{"cmdline":"redis --x","env":"A=1","env":"B=2","net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static","addr":"10.4.0.5","mask":"1","gw":"10.4.0.1"},"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}');
    expect([out.solo5Net, out.solo5Block]).toEqual(['tap', 'rootfs']);
  });
  it('mirage, mewz, hermit', () => {
    expect(buildGuest('mirage', g({ net, args: ['--hello=hola'] })).cmdline).toBe('--ipv4=10.4.0.5/24 --ipv4-gateway=10.4.0.1 --hello=hola');
    expect(buildGuest('mewz', g({ net })).cmdline).toBe('ip=10.4.0.5/24 gateway=10.4.0.1');
    expect(buildGuest('mewz', g()).qemuArgs).toContain('isa-debug-exit,iobase=0x501,iosize=2');
    expect(buildGuest('hermit', g({ net, args: ['x'] })).cmdline).toBe('ip=10.4.0.5/24 gateway=10.4.0.1 -- x');
  });
});

const vm = (over: Partial<VmSpec> = {}): VmSpec => ({
  id: 'c1', arch: 'x86_64', kernel: '/guest/kernel', initrd: undefined,
  guest: buildGuest('linux', g({ rootfs: 'block', args: ['/init'], env: [] })), memoryMb: 268, vcpus: 2,
  blocks: [], sharedFs: undefined, net: undefined, seccomp: false, scratch: '/run/urunc', accel: 'kvm',
  config: parseRuntimeConfig('', 't').monitor('qemu'), ...over,
});

describe('hypervisors', () => {
  it('qemu pc: urunc argument set with block, net, sandbox, initrd and the QMP socket', () => {
    const cmd = HYPERVISOR_PLUGINS.qemu.command('/usr/bin/qemu-system-x86_64', vm({
      blocks: [{ id: 'rootfs', path: '/guest/block' }], net: { tap: 'tap0', mac: '02:00:00:00:00:01' }, seccomp: true, initrd: '/guest/initrd',
    }));
    const a = cmd.argv.join(' ');
    expect(a).toContain('-m 268M -smp 2 -M pc -accel kvm -cpu host -L /usr/share/qemu');
    expect(a).toContain('-nodefaults -no-user-config -display none -vga none -serial stdio -monitor none -no-reboot');
    expect(a).toContain('-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
    expect(a).toContain('-netdev tap,id=net0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01');
    expect(a).toContain('-device virtio-blk-pci,serial=rootfs,drive=rootfs,scsi=off -drive format=raw,if=none,id=rootfs,file=/guest/block');
    expect(a).toContain('-kernel /guest/kernel -initrd /guest/initrd -append panic=-1 console=ttyS0 root=/dev/vda rw init=/init --');
    expect(cmd.qmp).toBe('/run/urunc/qmp.sock');
    expect(a.match(/-no-reboot/g)).toHaveLength(1);
  });
  it('qemu microvm/tcg: mmio devices, 9p and virtio-fs', () => {
    const config = parseRuntimeConfig('[monitors.qemu]\nmachine = "microvm"\n', 't').monitor('qemu');
    let a = HYPERVISOR_PLUGINS.qemu.command('q', vm({ config, accel: 'tcg', sharedFs: { kind: '9p', path: '/cntrRootfs', readonly: true } })).argv.join(' ');
    expect(a).toContain('-M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max');
    expect(a).toContain('-fsdev local,id=rootfs9p,security_model=none,path=/cntrRootfs,readonly=on -device virtio-9p-device,fsdev=rootfs9p,mount_tag=fs0');
    a = HYPERVISOR_PLUGINS.qemu.command('q', vm({ sharedFs: { kind: 'virtiofs', socket: '/run/urunc/vfs.sock' } })).argv.join(' ');
    expect(a).toContain('-object memory-backend-file,id=mem,size=268M,mem-path=/run/urunc,share=on -numa node,memdev=mem -chardev socket,id=char0,path=/run/urunc/vfs.sock -device vhost-user-fs-pci,queue-size=1024,chardev=char0,tag=fs0');
  });
  it('firecracker: --no-api with a config file in its documented schema (MiB)', () => {
    const cmd = HYPERVISOR_PLUGINS.firecracker.command('/usr/bin/firecracker', vm({ blocks: [{ id: 'rootfs', path: '/guest/block' }], net: { tap: 't', mac: 'm' }, initrd: '/guest/initrd' }));
    expect(cmd.argv).toEqual(['/usr/bin/firecracker', '--no-api', '--config-file', '/run/urunc/fc.json', '--no-seccomp']);
    const cfg = JSON.parse(cmd.files['fc.json'] as string);
    expect(cfg).toEqual({
      'boot-source': { kernel_image_path: '/guest/kernel', boot_args: 'panic=-1 console=ttyS0 root=/dev/vda rw init=/init --', initrd_path: '/guest/initrd' },
      'machine-config': { vcpu_count: 2, mem_size_mib: 268, smt: false },
      drives: [{ drive_id: 'rootfs', path_on_host: '/guest/block', is_root_device: true, is_read_only: false }],
      'network-interfaces': [{ iface_id: 'net1', guest_mac: 'm', host_dev_name: 't' }],
    });
  });
  it('cloud-hypervisor and solo5', () => {
    expect(HYPERVISOR_PLUGINS['cloud-hypervisor'].command('ch', vm({ seccomp: true, blocks: [{ id: 'vol0', path: '/b' }] })).argv).toEqual([
      'ch', '--memory', 'size=268M', '--cpus', 'boot=2', '--kernel', '/guest/kernel', '--console', 'off', '--serial', 'tty', '--seccomp', 'true',
      '--disk', 'path=/b,id=vol0', '--cmdline', 'panic=-1 console=ttyS0 root=/dev/vda rw init=/init --']);
    const guest = buildGuest('rumprun', g({ monitor: 'hvt', args: ['x'], env: [] }));
    expect(HYPERVISOR_PLUGINS.hvt.command('solo5-hvt', vm({ guest, net: { tap: 'tap0', mac: 'aa' }, blocks: [{ id: 'rootfs', path: '/b' }] })).argv).toEqual([
      'solo5-hvt', '--mem=268', '--net:tap=tap0', '--net-mac:tap=aa', '--block:rootfs=/b', '/guest/kernel', '{"cmdline":"x"}']);
    expect(HYPERVISOR_PLUGINS.spt.accel(vm().config, true)).toBe('none');
    expect(HYPERVISOR_PLUGINS.hvt.accel(vm().config, false)).toBe('kvm');
  });
});
