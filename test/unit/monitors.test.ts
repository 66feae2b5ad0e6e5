// Unikernel config, runtime config, guest command lines, hypervisor argv/config files and the
// in-root path resolver, each against its documented format.
import fs from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveInRoot } from '../../src/rootfs/resolve-in-root.js';
import { decodeUruncJson, resolveUnikernelConfig } from '../../src/monitors/unikernel-config.js';
import { parseRuntimeConfig } from '../../src/monitors/runtime-config.js';
import { buildGuest, type GuestInput } from '../../src/monitors/guests/index.js';
import { cpioArchive, parentDirs } from '../../src/rootfs/cpio.js';
import { guestVolumes } from '../../src/rootfs/volumes.js';
import { guestMemory } from '../../src/monitors/launcher.js';
import { HYPERVISOR_PLUGINS } from '../../src/monitors/hypervisors/index.js';
import type { VmSpec } from '../../src/monitors/hypervisors/types.js';
import { checkAgentSocket, guestCid, resolveVAccel, withVAccelEnv } from '../../src/monitors/vaccel.js';
import type { HypervisorName, UnikernelType } from '../../src/monitors/unikernel-config.js';

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

  it('resolves absolute and relative paths inside the root', async () => {
    expect(await resolveInRoot(root, '/unikernel/k', 'binary')).toBe(path.join(root, 'unikernel/k'));
    expect(await resolveInRoot(root, 'unikernel/./k', 'binary')).toBe(path.join(root, 'unikernel/k'));
    expect(await resolveInRoot(root, '/unikernel/../unikernel/k', 'binary')).toBe(path.join(root, 'unikernel/k'));
  });
  it('follows symlinks with the image root as /', async () => {
    expect(await resolveInRoot(root, '/abs-link', 'binary')).toBe(path.join(root, 'unikernel/k'));
    expect(await resolveInRoot(root, '/unikernel/rel-link', 'binary')).toBe(path.join(root, 'unikernel/k'));
  });
  it('refuses .. above the root, directly or through a symlink', async () => {
    await expect(resolveInRoot(root, '../../etc/shadow', 'binary')).rejects.toThrow(/escapes the image root/);
    await expect(resolveInRoot(root, '/unikernel/../../etc/shadow', 'binary')).rejects.toThrow(/escapes the image root/);
    await expect(resolveInRoot(root, '/unikernel/out-link', 'binary')).rejects.toThrow(/escapes the image root/);
  });
  it('reports missing files and symlink loops', async () => {
    await expect(resolveInRoot(root, '/nope', 'binary')).rejects.toThrow(/does not exist in the image/);
    await expect(resolveInRoot(root, '/loop1', 'binary')).rejects.toThrow(/too many symbolic links/);
    await expect(resolveInRoot(root, '/unikernel/k/x', 'binary')).rejects.toThrow(/not a directory/);
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
  // urunc annotations.go validateValues / validateSolo5DevName / supportedGuestMonitorPairs and
  // config.go's base64 urunc.json, as bunix writes it (every key, unused ones empty).
  it('a bunix-style urunc.json: every key present, empty values unset', () => {
    const keys = ['unikernelType', 'hypervisor', 'binary', 'cmdline', 'initrd', 'block', 'blkMntPoint', 'mountRootfs', 'unikernelVersion', 'solo5NetDev', 'solo5BlkDev'];
    const vals: Record<string, string> = { unikernelType: 'unikraft', hypervisor: 'qemu', binary: '/unikernel/kernel', cmdline: '', mountRootfs: 'false' };
    const j = decodeUruncJson(JSON.stringify(Object.fromEntries(keys.map((k) => [`com.urunc.unikernel.${k}`, b64(vals[k] ?? '')]))));
    expect(j).toEqual({ unikernelType: 'unikraft', hypervisor: 'qemu', binary: '/unikernel/kernel', mountRootfs: 'false' });
    expect(resolveUnikernelConfig({ spec: { initrd: '' }, image: {}, uruncJson: j })).toEqual({ unikernelType: 'unikraft', hypervisor: 'qemu', binary: '/unikernel/kernel', mountRootfs: false });
  });
  it('Go ParseBool spellings; urunc v0.8.0 path rules; solo5 names; guest/monitor pairs', () => {
    const ok = (over: Record<string, string>) => resolveUnikernelConfig({ spec: { ...full, ...over }, image: {}, uruncJson: {} });
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) expect(ok({ mountRootfs: t })?.mountRootfs).toBe(true);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) expect(ok({ mountRootfs: f })?.mountRootfs).toBe(false);
    expect(() => ok({ mountRootfs: 'tRuE' })).toThrow(/mountRootfs: must be true or false/);
    expect(() => ok({ mountRootfs: 'yes' })).toThrow(/mountRootfs/);
    expect(ok({ binary: 'unikernel/k' })?.binary).toBe('unikernel/k');
    expect(() => ok({ binary: '../k' })).toThrow(/binary: must not start with "\.\." or "-"/);
    expect(() => ok({ binary: '-k' })).toThrow(/binary: must not start with/);
    expect(() => ok({ binary: '/unikernel/../k' })).toThrow(/binary: must be a clean path/);
    expect(() => ok({ binary: '/unikernel//k' })).toThrow(/binary: must be a clean path/);
    expect(() => ok({ binary: '/unikernel/' })).toThrow(/binary: must be a clean path/);
    expect(() => ok({ binary: '.' })).toThrow(/binary: must be a clean path/);
    expect(() => ok({ binary: '/' })).toThrow(/binary: must not be "\/"/);
    expect(() => ok({ binary: 'x'.repeat(4097) })).toThrow(/binary/);
    expect(ok({ block: '/d.img', blkMntPoint: '/' })?.blkMntPoint).toBe('/');
    expect(() => ok({ initrd: '/' })).toThrow(/initrd: must not be/);
    expect(ok({ solo5NetDev: 'service2' })?.solo5NetDev).toBe('service2');
    expect(() => ok({ solo5NetDev: 'a_b' })).toThrow(/solo5NetDev: a solo5 device name/);
    expect(() => ok({ solo5BlkDev: 'x'.repeat(68) })).toThrow(/solo5BlkDev/);
    expect(() => ok({ hypervisor: 'hvt' })).toThrow(/unsupported guest monitor pair hvt unikraft/);
    expect(() => ok({ unikernelType: 'mewz', hypervisor: 'firecracker' })).toThrow(/unsupported guest monitor pair firecracker mewz/);
    expect(ok({ unikernelType: 'rumprun', hypervisor: 'spt' })?.hypervisor).toBe('spt');
    // hyperlight-unikraft (urunc v0.8.0, validateValues: supportedGuestMonitorPairs) runs unikraft only.
    expect(ok({ hypervisor: 'hyperlight-unikraft' })?.hypervisor).toBe('hyperlight-unikraft');
    expect(() => ok({ unikernelType: 'mewz', hypervisor: 'hyperlight-unikraft' })).toThrow(/unsupported guest monitor pair hyperlight-unikraft mewz/);
    expect(ok({ unikernelType: 'linux', hypervisor: 'cloud-hypervisor' })?.unikernelType).toBe('linux');
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
  // urunc urunc_config.go (BurntSushi/toml decode into its struct): unknown sections and keys are ignored.
  it('reads urunc knobs and ours; unknown keys and monitors warn and are ignored', () => {
    const warnings: string[] = [];
    const c = parseRuntimeConfig('[log]\nlevel = "debug"\n[monitors.qemu]\ndefault_memory_mb = 512\naccelerator = "tcg"\nbogus = 1\n[monitors.hvt]\npath = "/opt/hvt"\n[monitors.hyperlight]\npath = "/x"\n[monitors.hedge]\n[nope]\nx = 1\n', 't', (w) => warnings.push(w));
    expect(c.monitor('qemu')).toMatchObject({ default_memory_mb: 512, accelerator: 'tcg' });
    expect(c.monitor('hvt').path).toBe('/opt/hvt');
    expect(c.monitor('firecracker').default_memory_mb).toBe(256);
    expect(warnings.sort()).toEqual(['t: unknown key monitors.qemu.bogus ignored', 't: unknown key nope ignored',
      't: unknown monitor [monitors.hedge] ignored', 't: unknown monitor [monitors.hyperlight] ignored']);
  });
  // urunc urunc_config.go with logrus.ParseLevel, and #829 (0 means the default).
  it('logrus level names (fatal, panic; anything else info); 0 means the default', () => {
    expect(parseRuntimeConfig('[log]\nlevel = "fatal"\n', 't').log.level).toBe('fatal');
    expect(parseRuntimeConfig('[log]\nlevel = "Panic"\n', 't').log.level).toBe('panic');
    expect(parseRuntimeConfig('[log]\nlevel = "loud"\n', 't').log.level).toBe('info');
    const z = parseRuntimeConfig('[monitors.qemu]\ndefault_memory_mb = 0\ndefault_vcpus = 0\n', 't').monitor('qemu');
    expect([z.default_memory_mb, z.default_vcpus]).toEqual([256, 1]);
  });
  // urunc LoadUruncConfig: a file that does not decode is dropped whole for the defaults (loudly here).
  it('a file that does not decode (wrong type, bad value, bad TOML) is dropped for the defaults, with a warning', () => {
    for (const text of ['[monitors.qemu]\ndefault_memory_mb = "lots"\npath = "/opt/q"\n', '[monitors.qemu]\naccelerator = "hvf"\n', '[monitors\n', '[monitors.qemu]\ndefault_vcpus = -1\n']) {
      const warnings: string[] = [];
      const c = parseRuntimeConfig(text, 't', (w) => warnings.push(w));
      expect(c.monitor('qemu')).toMatchObject({ default_memory_mb: 256, path: '', accelerator: 'auto' });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^t does not decode \(.+\): the whole file is ignored and the defaults are used, as urunc does$/);
    }
  });
});

const g = (over: Partial<GuestInput> = {}): GuestInput => ({
  monitor: 'qemu', arch: 'x86_64', version: undefined, args: ['/bin/app', 'a b', 'c'], env: ['K=V'], user: { uid: 0, gid: 0 }, cwd: '/',
  net: undefined, nic: undefined, rootfs: 'none', disks: [], ...over,
});
const net = { ip: '10.4.0.5', mask: '255.255.255.0', gateway: '10.4.0.1', mac: '02:00:00:00:00:01' };
const nic = { tap: 'tap0', mtu: 1450 };

describe('guest command lines (urunc formats)', () => {
  // urunc linux.go Linux.CommandString (no urunit: env as kernel words) and parseCmdLine (quoting).
  // Without urunit, init's arguments are as the kernel splits them (lib/cmdline.c next_arg): multi-word
  // ones are double-quoted (urunc's parseCmdLine single-quotes them for urunit, which regroups them).
  it('linux: initrd, 9p, block, ip=, env, init and quoted args', () => {
    expect(buildGuest('linux', g({ rootfs: 'initrd' })).cmdline).toBe("panic=-1 console=ttyS0 root=/dev/ram0 rw K=V rdinit=/bin/app -- \"a b\" c");
    expect(buildGuest('linux', g({ rootfs: '9pfs', net })).cmdline).toBe(
      "panic=-1 console=ttyS0 root=fs0 rw rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl ip=10.4.0.5::10.4.0.1:255.255.255.0:urunc:eth0:off K=V init=/bin/app -- \"a b\" c");
    expect(buildGuest('linux', g({ rootfs: 'virtiofs' })).cmdline).toBe("panic=-1 console=ttyS0 root=fs0 rw rootfstype=virtiofs K=V init=/bin/app -- \"a b\" c");
    expect(buildGuest('linux', g({ rootfs: 'block', args: ['/sbin/init'], env: [] })).cmdline).toBe('panic=-1 console=ttyS0 root=/dev/vda rw init=/sbin/init --');
    // urunc linux.go Linux.MonitorCli: -no-reboot -nodefaults on qemu, nothing elsewhere.
    expect(buildGuest('linux', g()).monitorArgs).toEqual(['-no-reboot', '-nodefaults']);
    expect(buildGuest('linux', g({ monitor: 'firecracker' })).monitorArgs).toEqual([]);
    expect(buildGuest('linux', g({ arch: 'aarch64' })).cmdline).toMatch(/^panic=-1 console=ttyAMA0 /);
    expect(buildGuest('linux', g({ arch: 'aarch64', monitor: 'firecracker' })).cmdline).toMatch(/^panic=-1 console=ttyS0 /);
    expect(buildGuest('linux', g()).acpiPowerdown).toBe(true);
    expect(buildGuest('linux', g()).urunit).toBeUndefined();
  });

  // urunc linux.go Linux.CommandString / IsIPInSubnet: URUNIT_DEFROUTE=1 only for an off-link gateway.
  it('linux: URUNIT_DEFROUTE=1 when the gateway is off-link (a pod /32)', () => {
    const pod32 = { ip: '10.244.1.7', mask: '255.255.255.255', gateway: '169.254.1.1', mac: 'm' };
    expect(buildGuest('linux', g({ net: pod32, env: [] })).cmdline).toBe(
      "panic=-1 console=ttyS0 ip=10.244.1.7::169.254.1.1:255.255.255.255:urunc:eth0:off URUNIT_DEFROUTE=1 init=/bin/app -- \"a b\" c");
    expect(buildGuest('linux', g({ net, env: [] })).cmdline).not.toContain('URUNIT_DEFROUTE');
  });

  // urunc linux.go Linux.Init (urunit detection), setupUrunitConfig, buildUrunitConfig, CommandString, MonitorCli.
  it('linux with urunit: env, user, workdir and data disks in urunit.conf, never on the command line', () => {
    const env = ['PATH=/bin', 'MSG=hello big world', 'X=1 init=/bin/sh'];
    const input = g({ args: ['/urunit', '/bin/app', 'two words'], env, user: { uid: 1000, gid: 100 }, cwd: '/srv/app' });
    const initrd = buildGuest('linux', { ...input, rootfs: 'initrd' });
    expect(initrd.cmdline).toBe("panic=-1 console=ttyS0 root=/dev/ram0 rw URUNIT_CONFIG=/urunit.conf rdinit=/urunit -- /bin/app 'two words'");
    expect(initrd.urunit).toEqual({
      placement: 'append',
      config: 'UES\nPATH=/bin\nMSG=hello big world\nX=1 init=/bin/sh\nUEE\nUCS\nUID:1000\nGID:100\nWD:/srv/app\nUCE\nUBS\nUBE\n',
    });
    const disks = [{ id: 'rootfs', mountPoint: '/data' }, { id: 'annot_vol', mountPoint: '/mnt/data' }];
    const block = buildGuest('linux', { ...input, rootfs: 'block', disks, net });
    expect(block.cmdline).toBe("panic=-1 console=ttyS0 root=/dev/vda rw ip=10.4.0.5::10.4.0.1:255.255.255.0:urunc:eth0:off retain_initrd URUNIT_CONFIG=/sys/firmware/initrd init=/urunit -- /bin/app 'two words'");
    expect(block.urunit?.placement).toBe('extra');
    expect(block.urunit?.config).toContain('UBS\nID:annot_vol\nMP:/mnt/data\nUBE\n');
    // firecracker finds its drives by order: urunit's FC<id> names.
    expect(buildGuest('linux', { ...input, rootfs: 'block', disks, monitor: 'firecracker' }).urunit?.config).toContain('ID:FCannot_vol\nMP:/mnt/data\n');
    expect(() => buildGuest('linux', { ...input, env: ['A=line\nbreak'] })).toThrow(/line break/);
  });

  // urunc unikraft.go setCurrentArgs / setCompatArgs / CommandString.
  it('unikraft: current and pre-0.16.1 forms', () => {
    expect(buildGuest('unikraft', g({ rootfs: 'initrd', net, args: ['x'] })).cmdline).toBe(
      'Unikraft env.vars=[ K=V ] netdev.ip=10.4.0.5/24:10.4.0.1:8.8.8.8 vfs.fstab=[ "initrd0:/:extract:::" ] -- x');
    expect(buildGuest('unikraft', g({ rootfs: '9pfs', args: ['x'], env: [] })).cmdline).toBe('Unikraft netdev.ip=/24::8.8.8.8 vfs.fstab=[ "fs0:/:9pfs:::" ] -- x');
    expect(buildGuest('unikraft', g({ version: '0.15.0', rootfs: 'initrd', net, args: ['x'] })).cmdline).toBe(
      'Unikraft netdev.ipv4_addr=10.4.0.5 netdev.ipv4_gw_addr=10.4.0.1 netdev.ipv4_subnet_mask=255.255.255.0 vfs.rootfs=initrd -- x');
    const u = buildGuest('unikraft', g({ net, nic, args: ['x'] }));
    expect([u.netArgs, u.urunit]).toEqual([undefined, undefined]);
    // Unikraft's system_off (plat/common/x86/cpu_native.c) ends qemu through isa-debug-exit with 41:
    // qemu's 83 is a normal halt (the task's 0). Other monitors get no device.
    expect([u.monitorArgs, u.haltStatus]).toEqual([['-device', 'isa-debug-exit,iobase=0x501,iosize=2'], 83]);
    const fc = buildGuest('unikraft', g({ monitor: 'firecracker', args: ['x'] }));
    expect([fc.monitorArgs, fc.haltStatus]).toEqual([[], undefined]);
  });

  // Ours, beyond urunc (unikraft.go and linux.go splice values in raw): a value that would split into
  // more words, close Unikraft's env.vars=[ ], or name a kernel parameter is refused.
  // Values reach the guest intact by its own parser's rules (Unikraft: lib/ukargparse uk_argnparse and
  // lib/uklibparam uk_libparam_parse; Linux: lib/cmdline.c next_arg), so none can add a parameter.
  // urunc splices them in raw (a space splits a value); only what no quoting carries is refused.
  it('values are quoted by the guest parser\'s rules, never injected; only what no quoting carries is refused', () => {
    const uk = buildGuest('unikraft', g({ args: ['nginx', '-g', 'daemon off;', "it's", 'a\\b', '--', '[x]'], env: ['A=1 ] vfs.fstab=[ x', 'Q="a"', "S=it's \"q\""] }));
    expect(uk.cmdline).toBe(`Unikraft env.vars=[ 'A=1 ] vfs.fstab=[ x' 'Q="a"' "S=it's \\"q\\"" ] netdev.ip=/24::8.8.8.8 -- nginx -g 'daemon off;' "it's" 'a\\b' -- [x]`);
    expect(() => buildGuest('unikraft', g({ args: ['x'], env: ['A=[x]'] }))).toThrow(/env "A=\[x\]": Unikraft ends its env.vars=\[ \] list at a word that ends in \]/);
    expect(() => buildGuest('unikraft', g({ args: ['x', ''], env: [] }))).toThrow(/argument "": Unikraft's parser drops an empty word/);
    expect(() => buildGuest('unikraft', g({ args: ['x', 'a\nb'], env: [] }))).toThrow(/a line break or control character cannot be passed/);
    const lx = buildGuest('linux', g({ args: ['/bin/app', 'daemon off;', "it's", ''], env: ['X=1 init=/bin/sh', "Y=it's"], rootfs: 'initrd' }));
    expect(lx.cmdline).toBe(`panic=-1 console=ttyS0 root=/dev/ram0 rw X="1 init=/bin/sh" Y=it's rdinit=/bin/app -- "daemon off;" it's ""`);
    expect(() => buildGuest('linux', g({ env: ['Q=say "hi"'] }))).toThrow(/env "Q=say \\"hi\\"": the Linux kernel's command line has no escape for a double quote/);
    expect(() => buildGuest('linux', g({ args: ['/bin/app', 'a"b'] }))).toThrow(/argument "a\\"b": the Linux kernel's command line has no escape/);
    expect(() => buildGuest('linux', g({ env: ['init=/bin/sh'] }))).toThrow(/env "init": the guest kernel would take it for its own parameter/);
    expect(() => buildGuest('linux', g({ env: ['ext4.debug=1'] }))).toThrow(/its own parameter/);
    // With urunit the env travels in its config file: any value is fine.
    expect(buildGuest('linux', g({ args: ['/urunit', '/app'], env: ['X=1 init=/bin/sh'], rootfs: 'initrd' })).urunit?.config).toContain('X=1 init=/bin/sh\n');
  });

  // urunc rumprun.go CommandString, MonitorNetCli (tap), MonitorBlockCli (rootfs, first disk only).
  it('rumprun: its JSON with repeated env keys, net and its first disk at its mount point', () => {
    const out = buildGuest('rumprun', g({ monitor: 'hvt', args: ['redis', '--x'], env: ['A=1', 'B=2'], net, rootfs: 'block', disks: [{ id: 'rootfs', mountPoint: '/data' }] }));
    expect(out.cmdline).toBe('{"cmdline":"redis --x","env":"A=1","env":"B=2","net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static","addr":"10.4.0.5","mask":"1","gw":"10.4.0.1"},"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}');
    expect([out.solo5Net, out.solo5Block]).toEqual(['tap', 'rootfs']);
    // A data disk (block with blkMntPoint /mnt) and no root disk.
    expect(buildGuest('rumprun', g({ monitor: 'spt', args: ['x'], env: [], disks: [{ id: 'annot_vol', mountPoint: '/mnt' }] })).cmdline).toBe(
      '{"cmdline":"x","blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/mnt"}}');
  });

  // urunc mirage.go Init (solo5NetDev prefix, CIDR), MonitorNetCli, MonitorBlockCli.
  it('mirage: ipv4 flags, named solo5 devices', () => {
    expect(buildGuest('mirage', g({ net, args: ['--hello=hola'] })).cmdline).toBe('--ipv4=10.4.0.5/24 --ipv4-gateway=10.4.0.1 --hello=hola');
    const named = buildGuest('mirage', g({ net, args: [], solo5NetDev: 'management', solo5BlkDev: 'disk0' }));
    expect(named.cmdline).toBe('--management-ipv4=10.4.0.5/24 --management-ipv4-gateway=10.4.0.1');
    expect([named.solo5Net, named.solo5Block]).toEqual(['management', 'disk0']);
    const dflt = buildGuest('mirage', g({ solo5NetDev: 'service' }));
    expect([dflt.solo5Net, dflt.solo5Block]).toEqual(['service', 'storage']);
  });

  // urunc mewz.go CommandString, MonitorNetCli (modern-only NIC), MonitorCli (exit device at 0x501).
  it('mewz: ip and gateway only, modern virtio NIC, its exit device', () => {
    const m = buildGuest('mewz', g({ net, nic }));
    expect(m.cmdline).toBe('ip=10.4.0.5/24 gateway=10.4.0.1');
    expect(m.netArgs).toEqual(['-device', 'virtio-net-pci,netdev=net0,disable-legacy=on,disable-modern=off,mac=02:00:00:00:00:01',
      '-netdev', 'tap,script=no,downscript=no,id=net0,ifname=tap0']);
    expect(m.monitorArgs).toEqual(['-no-reboot', '-device', 'isa-debug-exit,iobase=0x501,iosize=2']);
    expect(buildGuest('mewz', g()).cmdline).toBe('ip=/24 gateway=');
  });

  // urunc hermit_rs.go CommandString, MonitorNetCli, MonitorCli (no exit device).
  it('hermit: ip, gateway, -- only between network and command, modern virtio NIC, no exit device', () => {
    const h = buildGuest('hermit', g({ net, nic, args: ['x', '-v'] }));
    expect(h.cmdline).toBe('ip=10.4.0.5/24 gateway=10.4.0.1 -- x -v');
    expect(h.netArgs).toEqual(['-netdev', 'tap,id=net0,ifname=tap0,script=no,downscript=no', '-device', 'virtio-net-pci,netdev=net0,disable-legacy=on,mac=02:00:00:00:00:01']);
    expect(h.monitorArgs).toEqual(['-no-reboot']);
    expect(buildGuest('hermit', g({ args: ['exit=9'] })).cmdline).toBe('exit=9');
  });

  // urunc includeos.go CommandString (PR branch).
  it('includeos', () => {
    expect(buildGuest('includeos', g({ net, args: ['app', '-v'], env: ['A=1'] })).cmdline).toBe('A=1 --net=10.4.0.5/255.255.255.0 --gateway=10.4.0.1 app -v');
  });

  // urunc freebsd.go (current): FreeBSD.CommandString, Init, buildUrunitConfig, as its TestFreeBSDCommandString,
  // TestFreeBSDBuildUrunitConfig, TestFreeBSDPlainInit and TestFreeBSDInitRootfsType expect them.
  describe('freebsd', () => {
    const bsd = (over: Partial<GuestInput>) => buildGuest('freebsd', g({ monitor: 'firecracker', rootfs: 'block', args: ['/urunit', '/rescue/sh', '-c', 'echo hello world'], ...over }));
    it('the root, init_path, and urunit\'s config disk after the others', () => {
      // The image's block file (mounted at "/") is UFS; the container's block snapshot ext2fs.
      expect(bsd({ disks: [{ id: 'rootfs', mountPoint: '/' }] }).cmdline).toBe('vfs.root.mountfrom=ufs:/dev/vtbd0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd1');
      expect(bsd({ disks: [{ id: 'rootfs', mountPoint: '/data' }, { id: 'vol0', mountPoint: '/v' }] }).cmdline).toBe('vfs.root.mountfrom=ext2fs:/dev/vtbd0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd2');
      expect(bsd({ monitor: 'qemu', rootfs: '9pfs' }).cmdline).toBe('vfs.root.mountfrom=p9fs:fs0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd0');
      expect(bsd({ monitor: 'qemu', rootfs: '9pfs', disks: [{ id: 'vol0', mountPoint: '/v' }] }).cmdline).toBe('vfs.root.mountfrom=p9fs:fs0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd1');
      // A gateway outside the guest's subnet asks urunit for a default route; inside, not.
      const rooted = { disks: [{ id: 'rootfs', mountPoint: '/' }] };
      expect(bsd({ ...rooted, net: { ip: '10.244.1.5', gateway: '169.254.1.1', mask: '255.255.255.0', mac: net.mac } }).cmdline).toMatch(/URUNIT_CONFIG=\/dev\/vtbd1 URUNIT_DEFROUTE=1$/);
      expect(bsd({ ...rooted, net: { ip: '172.17.0.2', gateway: '172.17.0.1', mask: '255.255.0.0', mac: net.mac } }).cmdline).toMatch(/URUNIT_CONFIG=\/dev\/vtbd1$/);
      // The container's command as init: no config disk, no URUNIT_* (TestFreeBSDPlainInit).
      const plain = bsd({ ...rooted, args: ['/sbin/init'], net });
      expect([plain.cmdline, plain.urunit]).toEqual(['vfs.root.mountfrom=ufs:/dev/vtbd0 init_path=/sbin/init', undefined]);
    });
    it('the config: env, user, working directory, arguments, data disks, network, padded to whole sectors', () => {
      const f = bsd({ env: ['PATH=/bin:/sbin', 'FOO=bar'], user: { uid: 1001, gid: 1001 }, cwd: '/tmp', net: { ip: '172.17.0.2', gateway: '172.17.0.1', mask: '255.255.0.0', mac: net.mac },
        disks: [{ id: 'rootfs', mountPoint: '/' }, { id: 'vol0', mountPoint: '/data' }] });
      const head = 'UES\nPATH=/bin:/sbin\nFOO=bar\nUEE\nUCS\nUID:1001\nGID:1001\nWD:/tmp\nARC:3\nARV:/rescue/sh\nARV:-c\nARV:echo hello world\nUCE\n'
        + 'UBS\nID:FCvol0\nMP:/data\nUBE\nUNS\nIP:172.17.0.2\nGW:172.17.0.1\nMSK:255.255.0.0\nUNE\nPAD\n';
      const conf = f.urunit?.config ?? '';
      expect(f.urunit?.placement).toBe('disk');
      expect(conf.startsWith(head)).toBe(true);
      expect(conf.length % 512).toBe(0);
      expect(conf.slice(head.length)).toMatch(/^\n+$/);
      // On qemu the data disk is found by its own serial; without a network the lines are empty.
      expect(bsd({ monitor: 'qemu', disks: [{ id: 'vol0', mountPoint: '/data' }], rootfs: '9pfs' }).urunit?.config).toContain('UBS\nID:vol0\nMP:/data\nUBE\nUNS\nIP:\nGW:\nMSK:\nUNE\nPAD\n');
    });
    it('refused with the reason: a root it cannot boot, arguments a plain init never gets, an init path the boot arguments cannot carry', () => {
      for (const rootfs of ['initrd', 'virtiofs', 'none'] as const) expect(() => bsd({ rootfs }), rootfs).toThrow(/freebsd boots from a disk or a 9p root only/);
      expect(() => bsd({ args: ['/sbin/init', '-s'] })).toThrow(/cannot reach an init that is not urunit/);
      for (const init of ['/my init', '/a,b', '/a:b', "/it's"]) expect(() => bsd({ args: [init] }), init).toThrow(/init_path boot argument cannot carry/);
      expect(() => bsd({ args: ['/urunit', 'two\nlines'] })).toThrow(/cannot pass an argument with a line break/);
    });
  });

  // urunc initrd.AddFileToInitrd: a newc record appended after the initrd, which the kernel unpacks too.
  it('urunit config and volume files travel in newc cpio records, with their parent directories', () => {
    const c = cpioArchive([...parentDirs(['/etc/resolv.conf', '/urunit.conf']), { name: '/urunit.conf', mode: 0o100400, data: Buffer.from('UES\nUEE\n') }], 0);
    expect(c.subarray(0, 6).toString()).toBe('070701');
    expect(c.length % 4).toBe(0);
    const text = c.toString('latin1');
    // The first record: the directory /etc (mode 040755, nlink 2, name size 5).
    expect(text.slice(14, 22)).toBe('000041ED');
    expect(text.slice(38, 46)).toBe('00000002');
    expect(text.slice(94, 102)).toBe('00000005');
    expect(text).toContain('/etc\0');
    expect(text).toContain('/urunit.conf\0');
    expect(text).toContain('UES\nUEE\n');
    expect(text).toContain('TRAILER!!!\0');
    expect(parentDirs(['/a/b/c', '/a/d']).map((d) => d.name)).toEqual(['/a', '/a/b']);
  });

  // urunc mountVolumes/copyMountfiles/CopyFileMountsToInitrd: only bind mounts reach the guest.
  it('volumes: bind mounts only, destinations inside the guest root', () => {
    expect(guestVolumes([
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/etc/resolv.conf', type: 'bind', source: '/var/lib/x/resolv.conf', options: ['rbind', 'ro'] },
      { destination: '/data/', source: '/srv/d', options: ['rbind', 'rw'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid'] },
    ])).toEqual([
      { index: 1, source: '/var/lib/x/resolv.conf', destination: '/etc/resolv.conf', readonly: true },
      { index: 2, source: '/srv/d', destination: '/data', readonly: false },
    ]);
    expect(() => guestVolumes([{ destination: '/a/../../etc', type: 'bind', source: '/x' }])).toThrow(/inside the guest's root/);
    expect(() => guestVolumes([{ destination: 'rel', type: 'bind', source: '/x' }])).toThrow(/absolute destination/);
  });
});

const vm = (over: Partial<VmSpec> = {}): VmSpec => ({
  id: 'c1', arch: 'x86_64', kernel: '/guest/kernel', initrd: undefined,
  guest: buildGuest('linux', g({ rootfs: 'block', args: ['/init'], env: [] })), memoryMb: 268, vcpus: 2,
  blocks: [], sharedFs: undefined, net: undefined, vsock: undefined, urunitInitrd: undefined, seccomp: false, scratch: '/run/urunc', accel: 'kvm',
  config: parseRuntimeConfig('', 't').monitor('qemu'), ...over,
});

// Every guest type on every monitor urunc pairs it with (supportedGuestMonitorPairs, plus includeos and
// freebsd from their urunc sources), one full input: network, env with a space, uid/gid, workdir, a
// block root. The exact argv each expectation mirrors: qemu.go / firecracker.go / cloud_hypervisor.go /
// hvt.go / spt.go BuildExecCmd with the guest's CommandString, MonitorNetCli, MonitorBlockCli, MonitorCli.
// urunc hyperlight.go BuildExecCmd (TestHyperlightBuildExecCmd, TestHyperlightBuildExecCmdNoInitrd):
// `<bin> <kernel> [--initrd <path>] --memory <bytes>`; the guest's command line, network and disks never reach it.
describe('hyperlight-unikraft', () => {
  it('the kernel, the initrd and the memory in bytes, nothing else', () => {
    const guest = buildGuest('unikraft', g({ monitor: 'hyperlight-unikraft', args: ['/app', '-v'], env: ['A=1'], net, nic, rootfs: 'initrd' }));
    const h = HYPERVISOR_PLUGINS['hyperlight-unikraft'];
    const withInitrd = h.command('/usr/local/bin/hyperlight-unikraft', vm({ guest, initrd: '/guest/initrd', memoryMb: 256, net: { tap: 'tap0', mac: net.mac, mtu: 1500 } }));
    expect(withInitrd).toEqual({ argv: ['/usr/local/bin/hyperlight-unikraft', '/guest/kernel', '--initrd', '/guest/initrd', '--memory', '268435456'], files: {}, qmp: undefined });
    expect(h.command('/usr/local/bin/hyperlight-unikraft', vm({ guest, memoryMb: 256 })).argv).toEqual(['/usr/local/bin/hyperlight-unikraft', '/guest/kernel', '--memory', '268435456']);
    // A 256 MiB limit (or the default 256 MiB) is 256 in this monitor's unit (MiB); no qemu exit device for it.
    expect([h.memoryUnit, h.defaultBinary('x86_64'), h.accel(vm().config, true), guest.monitorArgs]).toEqual([2 ** 20, 'hyperlight-unikraft', 'kvm', []]);
  });
});

describe('guest type x monitor: exact argv', () => {
  const QEMU = ['-name', 'urunc-c1', '-m', '268M', '-smp', '1', '-M', 'pc', '-accel', 'kvm', '-cpu', 'host', '-L', '/usr/share/qemu', '-nodefaults',
    '-no-user-config', '-display', 'none', '-vga', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-qmp', 'unix:/run/urunc/qmp.sock,server=on,wait=off'];
  const NIC = ['-netdev', 'tap,id=net0,ifname=tap0,script=no,downscript=no', '-device', 'virtio-net-pci,netdev=net0,host_mtu=1450,mac=02:00:00:00:00:01'];
  const DISK = ['-device', 'virtio-blk-pci,serial=rootfs,drive=rootfs,scsi=off', '-drive', 'format=raw,if=none,id=rootfs,file=/dev/urunc-rootfs'];
  const LINUX = 'panic=-1 console=ttyS0 root=/dev/vda rw ip=10.4.0.5::10.4.0.1:255.255.255.0:urunc:eth0:off A=1 B=2 init=/app -- -v';
  const RUMP = '{"cmdline":"/app -v","env":"A=1","env":"B=2","net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static","addr":"10.4.0.5","mask":"1","gw":"10.4.0.1"},"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}';
  const argvOf = (m: HypervisorName, t: UnikernelType) => {
    const guest = buildGuest(t, g({ monitor: m, args: ['/app', '-v'], env: ['A=1', 'B=2'], user: { uid: 1000, gid: 100 }, cwd: '/w', net, nic, rootfs: 'block',
      disks: [{ id: 'rootfs', mountPoint: '/data' }] }));
    return HYPERVISOR_PLUGINS[m].command(`/bin/${m}`, vm({ guest, vcpus: 1, net: { tap: 'tap0', mac: net.mac, mtu: 1450 }, blocks: [{ id: 'rootfs', path: '/dev/urunc-rootfs' }, { id: 'vol9', path: '/dev/urunc-vol9' }] }));
  };
  const fc = (bootArgs: string) => ({
    'boot-source': { kernel_image_path: '/guest/kernel', boot_args: bootArgs },
    'machine-config': { vcpu_count: 1, mem_size_mib: 268, smt: false },
    drives: [{ drive_id: 'rootfs', path_on_host: '/dev/urunc-rootfs', is_root_device: true, is_read_only: false },
      { drive_id: 'vol9', path_on_host: '/dev/urunc-vol9', is_root_device: false, is_read_only: false }],
    'network-interfaces': [{ iface_id: 'net1', guest_mac: '02:00:00:00:00:01', host_dev_name: 'tap0' }],
  });
  it.each<[HypervisorName, UnikernelType, string[]]>([
    ['qemu', 'linux', ['/bin/qemu', ...QEMU, ...NIC, '-device', 'virtio-blk-pci,serial=rootfs,drive=rootfs', '-drive', 'format=raw,if=none,id=rootfs,file=/dev/urunc-rootfs',
      '-device', 'virtio-blk-pci,serial=vol9,drive=vol9', '-drive', 'format=raw,if=none,id=vol9,file=/dev/urunc-vol9', '-kernel', '/guest/kernel', '-append', LINUX]],
    // Unikraft's exit device (ours; urunc gives it to mewz only): its system_off ends microvm through it.
    ['qemu', 'unikraft', ['/bin/qemu', ...QEMU, '-device', 'isa-debug-exit,iobase=0x501,iosize=2', ...NIC, ...DISK, '-device', 'virtio-blk-pci,serial=vol9,drive=vol9,scsi=off', '-drive', 'format=raw,if=none,id=vol9,file=/dev/urunc-vol9',
      '-kernel', '/guest/kernel', '-append', 'Unikraft env.vars=[ A=1 B=2 ] netdev.ip=10.4.0.5/24:10.4.0.1:8.8.8.8 -- /app -v']],
    ['qemu', 'mewz', ['/bin/qemu', ...QEMU, '-device', 'isa-debug-exit,iobase=0x501,iosize=2', '-device', 'virtio-net-pci,netdev=net0,disable-legacy=on,disable-modern=off,mac=02:00:00:00:00:01',
      '-netdev', 'tap,script=no,downscript=no,id=net0,ifname=tap0', ...DISK, '-device', 'virtio-blk-pci,serial=vol9,drive=vol9,scsi=off', '-drive', 'format=raw,if=none,id=vol9,file=/dev/urunc-vol9',
      '-kernel', '/guest/kernel', '-append', 'ip=10.4.0.5/24 gateway=10.4.0.1']],
    ['qemu', 'hermit', ['/bin/qemu', ...QEMU, '-netdev', 'tap,id=net0,ifname=tap0,script=no,downscript=no', '-device', 'virtio-net-pci,netdev=net0,disable-legacy=on,mac=02:00:00:00:00:01',
      ...DISK, '-device', 'virtio-blk-pci,serial=vol9,drive=vol9,scsi=off', '-drive', 'format=raw,if=none,id=vol9,file=/dev/urunc-vol9',
      '-kernel', '/guest/kernel', '-append', 'ip=10.4.0.5/24 gateway=10.4.0.1 -- /app -v']],
    ['qemu', 'mirage', ['/bin/qemu', ...QEMU, ...NIC, '-kernel', '/guest/kernel', '-append', '--ipv4=10.4.0.5/24 --ipv4-gateway=10.4.0.1 /app -v']],
    ['qemu', 'includeos', ['/bin/qemu', ...QEMU, ...NIC, ...DISK, '-device', 'virtio-blk-pci,serial=vol9,drive=vol9,scsi=off', '-drive', 'format=raw,if=none,id=vol9,file=/dev/urunc-vol9',
      '-kernel', '/guest/kernel', '-append', 'A=1 B=2 --net=10.4.0.5/255.255.255.0 --gateway=10.4.0.1 /app -v']],
    ['cloud-hypervisor', 'linux', ['/bin/cloud-hypervisor', '--memory', 'size=268M', '--cpus', 'boot=1', '--kernel', '/guest/kernel', '--console', 'off', '--serial', 'tty',
      '--seccomp', 'false', '--net', 'tap=tap0,mac=02:00:00:00:00:01,mtu=1450', '--disk', 'path=/dev/urunc-rootfs,id=rootfs', '--disk', 'path=/dev/urunc-vol9,id=vol9', '--cmdline', LINUX]],
    ['hvt', 'rumprun', ['/bin/hvt', '--mem=268', '--net:tap=tap0', '--net-mac:tap=02:00:00:00:00:01', '--block:rootfs=/dev/urunc-rootfs', '/guest/kernel', RUMP]],
    ['spt', 'rumprun', ['/bin/spt', '--mem=268', '--net:tap=tap0', '--net-mac:tap=02:00:00:00:00:01', '--block:rootfs=/dev/urunc-rootfs', '/guest/kernel', RUMP]],
    ['hvt', 'mirage', ['/bin/hvt', '--mem=268', '--net:service=tap0', '--net-mac:service=02:00:00:00:00:01', '--block:storage=/dev/urunc-rootfs', '/guest/kernel',
      '--ipv4=10.4.0.5/24 --ipv4-gateway=10.4.0.1 /app -v']],
    ['spt', 'mirage', ['/bin/spt', '--mem=268', '--net:service=tap0', '--net-mac:service=02:00:00:00:00:01', '--block:storage=/dev/urunc-rootfs', '/guest/kernel',
      '--ipv4=10.4.0.5/24 --ipv4-gateway=10.4.0.1 /app -v']],
    ['hvt', 'includeos', ['/bin/hvt', '--mem=268', '--net:service=tap0', '--net-mac:service=02:00:00:00:00:01', '--block:storage=/dev/urunc-rootfs', '/guest/kernel',
      'A=1 B=2 --net=10.4.0.5/255.255.255.0 --gateway=10.4.0.1 /app -v']],
  ])('%s + %s', (m, t, argv) => {
    expect(argvOf(m, t).argv).toEqual(argv);
  });
  it.each<[UnikernelType, string]>([
    ['linux', LINUX],
    ['unikraft', 'Unikraft env.vars=[ A=1 B=2 ] netdev.ip=10.4.0.5/24:10.4.0.1:8.8.8.8 -- /app -v'],
  ])('firecracker + %s: --no-api, and its config file', (t, bootArgs) => {
    const cmd = argvOf('firecracker', t);
    expect(cmd.argv).toEqual(['/bin/firecracker', '--no-api', '--config-file', '/run/urunc/fc.json', '--no-seccomp']);
    expect(JSON.parse(cmd.files['fc.json'] as string)).toEqual(fc(bootArgs));
  });
  // urunc freebsd.go MonitorBlockCli (TestFreeBSDMonitorBlockCli), MonitorNetCli, MonitorCli, MonitorSharedfsCli:
  // firecracker drives FC<id> and FC_URUNIT_CONFIG, none the root device; qemu microvm with ACPI and virtio-mmio devices.
  it('freebsd on firecracker and on qemu', () => {
    const guestOn = (m: HypervisorName, rootfs: GuestInput['rootfs'], disks: GuestInput['disks']) =>
      buildGuest('freebsd', g({ monitor: m, args: ['/urunit', '/app'], env: ['A=1'], net, nic, rootfs, disks }));
    const blocks = [{ id: 'rootfs', path: '/dev/urunc-rootfs' }, { id: 'vol9', path: '/dev/urunc-vol9' }, { id: 'urunit', path: '/run/urunc/urunit.conf' }];
    const fcCmd = HYPERVISOR_PLUGINS.firecracker.command('/bin/firecracker', vm({ guest: guestOn('firecracker', 'block', [{ id: 'rootfs', mountPoint: '/data' }, { id: 'vol9', mountPoint: '/v' }]), vcpus: 1,
      net: { tap: 'tap0', mac: net.mac, mtu: 1450 }, blocks }));
    const cfg = JSON.parse(fcCmd.files['fc.json'] as string);
    expect(cfg['boot-source'].boot_args).toBe('vfs.root.mountfrom=ext2fs:/dev/vtbd0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd2');
    expect(cfg.drives).toEqual([
      { drive_id: 'FCrootfs', path_on_host: '/dev/urunc-rootfs', is_root_device: false, is_read_only: false },
      { drive_id: 'FCvol9', path_on_host: '/dev/urunc-vol9', is_root_device: false, is_read_only: false },
      { drive_id: 'FC_URUNIT_CONFIG', path_on_host: '/run/urunc/urunit.conf', is_root_device: false, is_read_only: false },
    ]);
    const q = HYPERVISOR_PLUGINS.qemu.command('/bin/qemu', vm({ guest: guestOn('qemu', '9pfs', [{ id: 'vol9', mountPoint: '/v' }]), vcpus: 1, net: { tap: 'tap0', mac: net.mac, mtu: 1450 },
      blocks: blocks.slice(1), sharedFs: { kind: '9p', path: '/cntrRootfs', readonly: false } })).argv;
    expect(q).toEqual(['/bin/qemu', '-name', 'urunc-c1', '-m', '268M', '-smp', '1', '-M', 'microvm,acpi=on,pic=on,pit=on,rtc=on', '-accel', 'kvm', '-cpu', 'host', '-L', '/usr/share/qemu',
      '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-qmp', 'unix:/run/urunc/qmp.sock,server=on,wait=off',
      '-netdev', 'tap,id=net0,script=no,downscript=no,ifname=tap0', '-device', 'virtio-net-device,netdev=net0,mac=02:00:00:00:00:01',
      '-device', 'virtio-blk-device,serial=vol9,drive=vol9', '-drive', 'format=raw,if=none,id=vol9,file=/dev/urunc-vol9',
      '-device', 'virtio-blk-device,serial=urunit,drive=urunit', '-drive', 'format=raw,if=none,id=urunit,file=/run/urunc/urunit.conf',
      '-fsdev', 'local,id=rootfs9p,security_model=none,path=/cntrRootfs,multidevs=remap', '-device', 'virtio-9p-device,fsdev=rootfs9p,mount_tag=fs0',
      '-kernel', '/guest/kernel', '-append', 'vfs.root.mountfrom=p9fs:fs0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd1']);
  });
});

describe('hypervisors', () => {
  it('qemu pc: urunc argument set with block, net, sandbox, initrd and the QMP socket', () => {
    const cmd = HYPERVISOR_PLUGINS.qemu.command('/usr/bin/qemu-system-x86_64', vm({
      blocks: [{ id: 'rootfs', path: '/guest/block' }], net: { tap: 'tap0', mac: '02:00:00:00:00:01', mtu: 1450 }, seccomp: true, initrd: '/guest/initrd',
    }));
    const a = cmd.argv.join(' ');
    expect(a).toContain('-m 268M -smp 2 -M pc -accel kvm -cpu host -L /usr/share/qemu');
    expect(a).toContain('-nodefaults -no-user-config -display none -vga none -serial stdio -monitor none -no-reboot');
    expect(a).toContain('-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
    // urunc qemu.go BuildExecCmd / getVirtioNetArg: the default NIC carries the tap's MTU as host_mtu.
    expect(a).toContain('-netdev tap,id=net0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=net0,host_mtu=1450,mac=02:00:00:00:00:01');
    // urunc gives no exit device but mewz's (qemu.go has none of its own).
    expect(a).not.toContain('isa-debug-exit');
    // urunc linux.go Linux.MonitorBlockCli: the Linux guest's own disk arguments (no scsi=off).
    expect(a).toContain('-device virtio-blk-pci,serial=rootfs,drive=rootfs -drive format=raw,if=none,id=rootfs,file=/guest/block');
    // urunc qemu.go BuildExecCmd: the default disk arguments, for a guest with none of its own.
    const uk = HYPERVISOR_PLUGINS.qemu.command('q', vm({ guest: buildGuest('unikraft', g({ args: ['x'] })), blocks: [{ id: 'rootfs', path: '/b' }] })).argv.join(' ');
    expect(uk).toContain('-device virtio-blk-pci,serial=rootfs,drive=rootfs,scsi=off -drive format=raw,if=none,id=rootfs,file=/b');
    expect(a).toContain('-kernel /guest/kernel -initrd /guest/initrd -append panic=-1 console=ttyS0 root=/dev/vda rw init=/init --');
    expect(cmd.qmp).toBe('/run/urunc/qmp.sock');
    expect(a.match(/-no-reboot/g)).toHaveLength(1);
  });
  // urunc qemu.go BuildExecCmd: the guest's MonitorNetCli replaces the default NIC, its OtherArgs follow.
  it('qemu: the guest type\'s own NIC and exit device (mewz), also on microvm', () => {
    const guest = buildGuest('mewz', g({ net, nic }));
    const a = HYPERVISOR_PLUGINS.qemu.command('q', vm({ guest, net: { tap: 'tap0', mac: net.mac, mtu: 1450 } })).argv.join(' ');
    expect(a).toContain('-device isa-debug-exit,iobase=0x501,iosize=2');
    expect(a).toContain('-device virtio-net-pci,netdev=net0,disable-legacy=on,disable-modern=off,mac=02:00:00:00:00:01 -netdev tap,script=no,downscript=no,id=net0,ifname=tap0');
    expect(a).not.toContain('host_mtu');
    const config = parseRuntimeConfig('[monitors.qemu]\nmachine = "microvm"\n', 't').monitor('qemu');
    const m = HYPERVISOR_PLUGINS.qemu.command('q', vm({ config, guest, net: { tap: 'tap0', mac: net.mac, mtu: 1450 } })).argv.join(' ');
    expect(m).toContain('-device virtio-net-device,netdev=net0,mac=02:00:00:00:00:01');
  });
  // urunc linux.go MonitorCli (ExtraInitrd) with qemu.go, firecracker.go and cloud_hypervisor.go BuildExecCmd.
  it('urunit\'s config as the only initrd: qemu -initrd, firecracker initrd_path, cloud-hypervisor --initramfs', () => {
    const u = { urunitInitrd: '/run/urunc/urunit.conf' };
    expect(HYPERVISOR_PLUGINS.qemu.command('q', vm(u)).argv.join(' ')).toContain('-kernel /guest/kernel -initrd /run/urunc/urunit.conf -append');
    const fc = JSON.parse(HYPERVISOR_PLUGINS.firecracker.command('f', vm(u)).files['fc.json'] as string);
    expect(fc['boot-source'].initrd_path).toBe('/run/urunc/urunit.conf');
    expect(HYPERVISOR_PLUGINS['cloud-hypervisor'].command('ch', vm(u)).argv.join(' ')).toContain('--initramfs /run/urunc/urunit.conf');
  });
  // urunc unikontainers.go Exec (bytes of the limit, else default_memory_mb MiB) and each BuildExecCmd's unit.
  it('memory: decimal MB for qemu, solo5 and cloud-hypervisor, MiB for firecracker, never above the limit', () => {
    expect(guestMemory(undefined, 256, HYPERVISOR_PLUGINS.qemu.memoryUnit)).toBe(268);
    expect(guestMemory(undefined, 256, HYPERVISOR_PLUGINS.hvt.memoryUnit)).toBe(268);
    expect(guestMemory(undefined, 256, HYPERVISOR_PLUGINS['cloud-hypervisor'].memoryUnit)).toBe(268);
    expect(guestMemory(undefined, 256, HYPERVISOR_PLUGINS.firecracker.memoryUnit)).toBe(256);
    const limit = 512 * 2 ** 20;
    expect(guestMemory(limit, 256, HYPERVISOR_PLUGINS.qemu.memoryUnit)).toBe(536);
    expect(guestMemory(limit, 256, HYPERVISOR_PLUGINS.firecracker.memoryUnit)).toBe(512);
    expect(guestMemory(500_000_000, 256, HYPERVISOR_PLUGINS.firecracker.memoryUnit) * 2 ** 20).toBeLessThanOrEqual(500_000_000);
  });
  // urunc prepareMonRootfs / qemu.go BuildExecCmd: data_path is a parent (urunc-deploy's /opt/urunc/share),
  // its qemu/ and seabios/ bound at /usr/share/qemu and /usr/share/seabios; -L stays /usr/share/qemu.
  it('qemu data_path: a parent of qemu/ and seabios/, bound where qemu looks; -L /usr/share/qemu', () => {
    const config = parseRuntimeConfig('[monitors.qemu]\ndata_path = "/opt/urunc/share"\n', 't').monitor('qemu');
    expect(HYPERVISOR_PLUGINS.qemu.dataDirs(config)).toEqual([
      { host: '/opt/urunc/share/qemu', at: '/usr/share/qemu' }, { host: '/opt/urunc/share/seabios', at: '/usr/share/seabios' }]);
    expect(HYPERVISOR_PLUGINS.qemu.command('q', vm({ config })).argv.join(' ')).toContain('-L /usr/share/qemu ');
    expect(HYPERVISOR_PLUGINS.qemu.dataDirs(parseRuntimeConfig('', 't').monitor('qemu'))[0]).toEqual({ host: '/usr/share/qemu', at: '/usr/share/qemu' });
  });
  it('qemu microvm/tcg: mmio devices, 9p and virtio-fs', () => {
    const config = parseRuntimeConfig('[monitors.qemu]\nmachine = "microvm"\n', 't').monitor('qemu');
    let a = HYPERVISOR_PLUGINS.qemu.command('q', vm({ config, accel: 'tcg', sharedFs: { kind: '9p', path: '/cntrRootfs', readonly: true } })).argv.join(' ');
    expect(HYPERVISOR_PLUGINS.qemu.command('q', vm({ sharedFs: { kind: '9p', path: '/cntrRootfs', readonly: false } })).argv.join(' ')).toContain(
      '-fsdev local,id=rootfs9p,security_model=none,path=/cntrRootfs,multidevs=remap -device virtio-9p-pci');
    expect(a).toContain('-M microvm,pit=on,pic=on,rtc=on -accel tcg,tb-size=32 -cpu max');
    expect(a).toContain('-fsdev local,id=rootfs9p,security_model=none,path=/cntrRootfs,multidevs=remap,readonly=on -device virtio-9p-device,fsdev=rootfs9p,mount_tag=fs0');
    a = HYPERVISOR_PLUGINS.qemu.command('q', vm({ sharedFs: { kind: 'virtiofs', socket: '/run/urunc/vfs.sock' } })).argv.join(' ');
    expect(a).toContain('-object memory-backend-memfd,id=mem,size=268M,share=on -numa node,memdev=mem -chardev socket,id=char0,path=/run/urunc/vfs.sock -device vhost-user-fs-pci,queue-size=1024,chardev=char0,tag=fs0');
  });
  it('firecracker: --no-api with a config file in its documented schema (MiB)', () => {
    const cmd = HYPERVISOR_PLUGINS.firecracker.command('/usr/bin/firecracker', vm({ blocks: [{ id: 'rootfs', path: '/guest/block' }], net: { tap: 't', mac: 'm', mtu: 1500 }, initrd: '/guest/initrd' }));
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
    expect(HYPERVISOR_PLUGINS['cloud-hypervisor'].command('ch', vm({ seccomp: true, blocks: [{ id: 'vol0', path: '/b' }], net: { tap: 't', mac: 'm', mtu: 1450 } })).argv).toEqual([
      'ch', '--memory', 'size=268M', '--cpus', 'boot=2', '--kernel', '/guest/kernel', '--console', 'off', '--serial', 'tty', '--seccomp', 'true',
      '--net', 'tap=t,mac=m,mtu=1450', '--disk', 'path=/b,id=vol0', '--cmdline', 'panic=-1 console=ttyS0 root=/dev/vda rw init=/init --']);
    const guest = buildGuest('rumprun', g({ monitor: 'hvt', args: ['x'], env: [] }));
    expect(HYPERVISOR_PLUGINS.hvt.command('solo5-hvt', vm({ guest, net: { tap: 'tap0', mac: 'aa', mtu: 1500 }, blocks: [{ id: 'rootfs', path: '/b' }] })).argv).toEqual([
      'solo5-hvt', '--mem=268', '--net:tap=tap0', '--net-mac:tap=aa', '--block:rootfs=/b', '/guest/kernel', '{"cmdline":"x"}']);
    // urunc mirage.go MonitorNetCli / MonitorBlockCli with solo5NetDev / solo5BlkDev.
    const mirage = buildGuest('mirage', g({ monitor: 'spt', args: [], net, solo5NetDev: 'mgmt', solo5BlkDev: 'disk0' }));
    expect(HYPERVISOR_PLUGINS.spt.command('solo5-spt', vm({ guest: mirage, net: { tap: 'tap0', mac: 'aa', mtu: 1500 }, blocks: [{ id: 'annot_vol', path: '/d' }] })).argv).toEqual([
      'solo5-spt', '--mem=268', '--net:mgmt=tap0', '--net-mac:mgmt=aa', '--block:disk0=/d', '/guest/kernel', '--mgmt-ipv4=10.4.0.5/24 --mgmt-ipv4-gateway=10.4.0.1']);
    expect(HYPERVISOR_PLUGINS.spt.accel(vm().config, true)).toBe('none');
    // urunc hvt.go PreExec: solo5-hvt under urunc's allowlist (trap otherwise) when the container has seccomp.
    const hvtCmd = HYPERVISOR_PLUGINS.hvt.command('solo5-hvt', vm({ guest, seccomp: true }));
    expect(hvtCmd.seccomp?.defaultAction).toBe('SCMP_ACT_TRAP');
    expect(hvtCmd.seccomp?.architectures).toEqual(['SCMP_ARCH_X86_64']);
    expect(hvtCmd.seccomp?.syscalls).toEqual([{ action: 'SCMP_ACT_ALLOW', names: expect.arrayContaining(['ioctl', 'pread64', 'pwrite64', 'execve', 'exit_group', 'arch_prctl', 'newfstatat']) }]);
    expect(hvtCmd.seccomp?.syscalls[0]?.names).toHaveLength(45);
    expect(hvtCmd.seccomp?.syscalls[0]?.names).not.toContain('mkdir');
    expect(HYPERVISOR_PLUGINS.hvt.command('solo5-hvt', vm({ guest, seccomp: false })).seccomp).toBeUndefined();
    expect(HYPERVISOR_PLUGINS.spt.command('solo5-spt', vm({ guest, seccomp: true })).seccomp).toBeUndefined();
    expect(HYPERVISOR_PLUGINS.hvt.accel(vm().config, false)).toBe('kvm');
  });
});

// vAccel as urunc sets it up: unikontainers/vaccel.go resolveVAccelConfig, isValidVSockAddress,
// idToGuestCID, checkVAccelSocket; the VACCEL_RPC_ADDRESS env in unikontainers.go Exec; qemu.go and
// firecracker.go BuildExecCmd for the device; New's refusal while [runtime] vAccel is off.
describe('vAccel', () => {
  const on = (a: Record<string, string>, hv: HypervisorName = 'qemu') => resolveVAccel(a, hv, 'c1', true);
  const ask = (address: string) => ({ 'com.urunc.unikernel.vAccel': 'vsock', 'com.urunc.unikernel.RPCAddress': address });

  it('the keys: absent means none; refused while [runtime] vAccel is off; only vsock; the address required', () => {
    expect(resolveVAccel({ other: 'x' }, 'qemu', 'c1', false)).toBeUndefined();
    expect(parseRuntimeConfig('', 't').runtime.vAccel).toBe(false);
    expect(parseRuntimeConfig('[runtime]\nvAccel = true\n', 't').runtime.vAccel).toBe(true);
    expect(() => resolveVAccel(ask('vsock://2:2048'), 'qemu', 'c1', false)).toThrow('com.urunc.unikernel.vAccel is set, but vAccel is disabled in the urunc configuration ([runtime] vAccel)');
    expect(() => on({ 'com.urunc.unikernel.vAccel': 'tcp', 'com.urunc.unikernel.RPCAddress': 'vsock://2:2048' })).toThrow(/only "vsock" is supported, got "tcp"/);
    expect(() => on({ 'com.urunc.unikernel.vAccel': 'vsock' })).toThrow(/com.urunc.unikernel.RPCAddress is not/);
    expect(() => on({ 'com.urunc.unikernel.RPCAddress': 'vsock://2:2048' })).toThrow('com.urunc.unikernel.RPCAddress is set, but com.urunc.unikernel.vAccel is not');
    expect(() => on(ask(`vsock://2:${'1'.repeat(5000)}`))).toThrow(/longer than 4096 bytes/);
  });

  it('qemu takes vsock://2:<port>; firecracker unix://<dir>/vaccel.sock_<port>, told to the guest as vsock://2:<port>; other monitors have none', () => {
    expect(on(ask('vsock://2:2048'))).toEqual({ cid: guestCid('c1'), guestAddress: 'vsock://2:2048', agentSocket: undefined });
    for (const bad of ['vsock://3:2048', 'vsock://2:0', 'vsock://2:65536', 'vsock://2:02048', 'unix:///run/vaccel/vaccel.sock_2048']) {
      expect(() => on(ask(bad)), bad).toThrow(/is not vsock:\/\/2:<port>, the form qemu takes/);
    }
    expect(on(ask('unix:///run/vaccel/vaccel.sock_2048'), 'firecracker')).toEqual({
      cid: guestCid('c1'), guestAddress: 'vsock://2:2048', agentSocket: { host: '/run/vaccel/vaccel.sock_2048', inMonitor: '/vaccel/vaccel.sock_2048' },
    });
    // Only plain absolute directories (urunc's vAccelSockDirRe): no dots, blanks or relative paths.
    for (const bad of ['unix:///run/../etc/vaccel.sock_2048', 'unix:///run/a b/vaccel.sock_2048', 'unix://run/vaccel.sock_2048', 'vsock://2:2048', 'unix:///run/vaccel.sock_70000']) {
      expect(() => on(ask(bad), 'firecracker'), bad).toThrow(/the form firecracker takes/);
    }
    for (const hv of ['cloud-hypervisor', 'hvt', 'spt', 'hyperlight-unikraft'] as HypervisorName[]) {
      expect(() => on(ask('vsock://2:2048'), hv)).toThrow(`${hv} does not support vAccel`);
    }
  });

  it('the guest CID: FNV-1a of the id onto 3..2^32-2, the same for every process (urunc\'s current idToGuestCID)', () => {
    // FNV-1a 32 of "a" is 0xe40c292c, of "foobar" 0xbf9cf968 (the published test vectors).
    expect(guestCid('a')).toBe(0xe40c292c + 3);
    expect(guestCid('foobar')).toBe(0xbf9cf968 + 3);
    expect(guestCid('')).toBe(0x811c9dc5 + 3);
    for (const id of ['x', 'c1', 'a'.repeat(64), 'ü']) expect(guestCid(id)).toBeGreaterThanOrEqual(3);
  });

  it('VACCEL_RPC_ADDRESS replaces the image\'s first one and goes last', () => {
    const v = on(ask('vsock://2:2048'));
    expect(withVAccelEnv(['A=1', 'VACCEL_RPC_ADDRESS=tcp://x', 'B=2'], v)).toEqual(['A=1', 'B=2', 'VACCEL_RPC_ADDRESS=vsock://2:2048']);
    expect(withVAccelEnv(['A=1'], undefined)).toEqual(['A=1']);
    // The guest types carry it like any env entry: Unikraft's env.vars.
    const uk = buildGuest('unikraft', g({ args: ['app'], env: withVAccelEnv(['PATH=/bin'], v) }));
    expect(uk.cmdline).toContain('env.vars=[ PATH=/bin VACCEL_RPC_ADDRESS=vsock://2:2048 ]');
  });

  it('qemu gets the vhost-vsock device before the kernel (virtio-mmio on microvm); firecracker its vsock with the socket in /vaccel', () => {
    const vsock = { cid: 1234567, udsPath: '/vaccel/vaccel.sock' };
    const pc = HYPERVISOR_PLUGINS.qemu.command('q', vm({ vsock })).argv.join(' ');
    expect(pc).toMatch(/-device vhost-vsock-pci,id=vhost-vsock-pci0,guest-cid=1234567 -kernel /);
    const micro = HYPERVISOR_PLUGINS.qemu.command('q', vm({ vsock, config: parseRuntimeConfig('[monitors.qemu]\nmachine = "microvm"\n', 't').monitor('qemu') })).argv.join(' ');
    expect(micro).toContain('-device vhost-vsock-device,id=vhost-vsock-pci0,guest-cid=1234567');
    expect(HYPERVISOR_PLUGINS.qemu.command('q', vm()).argv.join(' ')).not.toContain('vsock');
    const fc = JSON.parse(HYPERVISOR_PLUGINS.firecracker.command('fc', vm({ vsock })).files['fc.json'] as string);
    expect(fc.vsock).toEqual({ guest_cid: 1234567, uds_path: '/vaccel/vaccel.sock', vsock_id: 'root' });
    expect(JSON.parse(HYPERVISOR_PLUGINS.firecracker.command('fc', vm()).files['fc.json'] as string).vsock).toBeUndefined();
  });

  it('firecracker\'s agent socket must be a listening unix socket (urunc\'s checkVAccelSocket)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaccel-'));
    try {
      const sock = path.join(dir, 'vaccel.sock_2048');
      const server = createServer().listen(sock);
      await new Promise((r) => server.once('listening', r));
      await expect(checkAgentSocket(on(ask(`unix://${sock}`), 'firecracker'))).resolves.toBeUndefined();
      server.close();
      fs.writeFileSync(sock, '');
      await expect(checkAgentSocket(on(ask(`unix://${sock}`), 'firecracker'))).rejects.toThrow(`${sock} is not a unix socket`);
      fs.rmSync(sock);
      await expect(checkAgentSocket(on(ask(`unix://${sock}`), 'firecracker'))).rejects.toThrow(`no vAccel agent socket at ${sock}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
