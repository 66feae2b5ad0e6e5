// The rootfs planner's priorities, the mount handler table's block detection, the persisted state
// and params, the view's create/release against a recording fake of containerd's API (real bind
// mounts), release from the state file, virtiofsd's arguments, sandbox and start-up wait (a fake binary), and the ELF loader dirs of a relocated helper.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Code, ShimError } from '../../src/errors.js';
import { elfLoading, loaderDirs } from '../../src/monitors/elf.js';
import { virtiofsdArgv, virtiofsdSandbox, waitForVirtiofsd } from '../../src/monitors/virtiofsd.js';
import { blockRootfs, compactLowerdirs, hasMountsUnder, mountAll, parseMountInfo, unmountAll, type Mount } from '../../src/rootfs/mounts.js';
import { chooseRootfs, type PlanInput } from '../../src/rootfs/planner.js';
import { guestBlockOf } from '../../src/monitors/guests/index.js';
import { blockVolumes, copyVolumeFiles } from '../../src/rootfs/volumes.js';
import { processStartTime, releaseRootfs } from '../../src/rootfs/release.js';
import { assertNoInternalAnnotations, persistParams, readParams, readState, StateFile, statePath } from '../../src/rootfs/state.js';
import { createView, type SnapshotApi } from '../../src/rootfs/view.js';
import { readCapped, readCappedSync } from '../../src/sys/read-capped.js';

const tmp: string[] = [];
const tmpdir = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rfu-'));
  tmp.push(d);
  return d;
};
afterEach(() => {
  for (const d of tmp.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const file = { path: '/snap/7', kind: 'file' as const, fstype: 'ext4', readonly: false };
const plan = (keys: PlanInput['keys'], over: Partial<PlanInput> = {}) =>
  chooseRootfs({ keys, containerBlock: undefined, sharedFs: { ninep: true, virtiofs: false }, guestBlock: guestBlockOf('linux'), ...over });

describe('rootfs planner', () => {
  // urunc's ChooseRootfs/rootfsSelector: the container rootfs (block, then virtio-fs, then 9p) only with mountRootfs=true.
  it("follows urunc's priority: initrd, image block, container block, virtio-fs, 9p, none", () => {
    const all = { initrd: '/i', block: '/b.img', mountRootfs: true };
    expect(plan(all, { containerBlock: file }).type).toBe('initrd');
    expect(plan({ block: '/b.img', mountRootfs: true }, { containerBlock: file })).toEqual({ type: 'block', blockSource: 'image' });
    // A block image mounted elsewhere than / is a volume, not the root.
    expect(plan({ block: '/b.img', blkMntPoint: '/data', mountRootfs: true }, { containerBlock: file }))
      .toEqual({ type: 'block', blockSource: 'container', blockPath: '/snap/7', blockKind: 'file', fstype: 'ext4' });
    expect(plan({ mountRootfs: true }).type).toBe('9pfs');
    expect(plan({ mountRootfs: true }, { sharedFs: { ninep: true, virtiofs: true } }).type).toBe('virtiofs');
    expect(() => plan({ mountRootfs: true }, { sharedFs: { ninep: false, virtiofs: false } })).toThrow(/neither as a disk \(the container rootfs is not a block device/);
    // Without mountRootfs the guest gets no root of the container's, whatever it could share.
    expect(plan({}, { sharedFs: { ninep: true, virtiofs: true } }).type).toBe('none');
    expect(plan({}, { containerBlock: file }).type).toBe('none');
    expect(plan({ mountRootfs: false }, { containerBlock: file }).type).toBe('none');
  });
  it('rootfsType forces a choice, and an impossible one is a clear error', () => {
    expect(plan({ rootfsType: 'block', initrd: '/i', mountRootfs: true }, { containerBlock: file }).blockSource).toBe('container');
    expect(plan({ rootfsType: '9pfs', initrd: '/i' }, { sharedFs: { ninep: true, virtiofs: true } }).type).toBe('9pfs');
    expect(plan({ rootfsType: 'none', initrd: '/i' }).type).toBe('none');
    expect(() => plan({ rootfsType: 'block' })).toThrow(/not a block device/);
    expect(() => plan({ rootfsType: 'initrd' })).toThrow(/needs com.urunc.unikernel.initrd/);
    expect(() => plan({ rootfsType: '9pfs' }, { sharedFs: { ninep: false, virtiofs: false } })).toThrow(/no 9p root/);
    expect(plan({ rootfsType: 'virtiofs', initrd: '/i' }, { sharedFs: { ninep: true, virtiofs: true } }).type).toBe('virtiofs');
    expect(() => plan({ rootfsType: 'virtiofs' }, { sharedFs: { ninep: true, virtiofs: false } })).toThrow(/no virtio-fs root, or the configured virtiofsd is missing/);
  });
});

// urunc rootfs.go tryExplicitBlock and tryContainerBlockRootfs ask the guest (unikernels/*.go
// SupportsBlock, SupportsFS) before a disk becomes its root, and fall through to tryVirtiofs, try9pfs.
describe('rootfs planner asks the guest type what it boots from', () => {
  const ext4 = file;
  const ext2 = { ...file, fstype: 'ext2' };
  const as = (type: Parameters<typeof guestBlockOf>[0], keys: PlanInput['keys'], containerBlock: PlanInput['containerBlock'], sharedFs = { ninep: false, virtiofs: false }) =>
    chooseRootfs({ keys, containerBlock, sharedFs, guestBlock: guestBlockOf(type) });
  const mount = { mountRootfs: true };
  it('linux (Linux.SupportsBlock, SupportsFS ext2/3/4): the container block rootfs of any of them; the image block file', () => {
    expect(as('linux', mount, ext4)).toMatchObject({ type: 'block', blockSource: 'container', fstype: 'ext4' });
    expect(as('linux', { block: '/b.img' }, undefined)).toEqual({ type: 'block', blockSource: 'image' });
  });
  it('rumprun (Rumprun.SupportsFS ext2 only): an ext4 block rootfs is not its root; an ext2 one is', () => {
    expect(() => as('rumprun', mount, ext4)).toThrow(/as a disk \(this guest type reads ext2 from a disk, and the container rootfs is ext4\) nor as a shared filesystem/);
    expect(as('rumprun', mount, ext2)).toMatchObject({ type: 'block', blockSource: 'container', fstype: 'ext2' });
  });
  it('mirage (SupportsBlock, SupportsFS nothing): only the image block file (tryExplicitBlock), never the container rootfs', () => {
    expect(as('mirage', { block: '/b.img' }, undefined)).toEqual({ type: 'block', blockSource: 'image' });
    expect(() => as('mirage', mount, ext2)).toThrow(/reads no filesystem from a disk/);
  });
  it('unikraft (no SupportsBlock; SupportsFS 9pfs): a block snapshotter\'s rootfs falls through to 9p; the image block file is skipped', () => {
    expect(as('unikraft', mount, ext4, { ninep: true, virtiofs: false })).toEqual({ type: '9pfs' });
    expect(as('unikraft', { block: '/b.img', mountRootfs: true }, undefined, { ninep: true, virtiofs: false })).toEqual({ type: '9pfs' });
    expect(as('unikraft', { block: '/b.img' }, undefined)).toEqual({ type: 'none' });
    expect(() => as('unikraft', { block: '/b.img', rootfsType: 'block' }, undefined)).toThrow(/rootfsType block: this guest type does not boot from a disk/);
  });
  it('mewz and hermit (no SupportsBlock, no shared filesystem): mountRootfs on a block snapshotter is an error naming both reasons', () => {
    for (const t of ['mewz', 'hermit'] as const) {
      expect(() => as(t, mount, ext4)).toThrow(/neither as a disk \(this guest type does not boot from a disk\) nor as a shared filesystem/);
    }
  });
});

// urunc block.go copyMountfiles (with SecureJoin since #840): files only, inside the root.
describe('volume files copied into a block root', () => {
  it('copies regular files at their destinations, creating directories, never out of the root', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vol-'));
    const root = path.join(d, 'root');
    const outside = path.join(d, 'outside');
    fs.mkdirSync(root);
    fs.mkdirSync(outside);
    fs.mkdirSync(path.join(root, 'real-etc'));
    fs.symlinkSync('/real-etc', path.join(root, 'etc'));
    fs.symlinkSync('../../outside', path.join(root, 'escape'));
    fs.symlinkSync('/nowhere', path.join(root, 'real-etc', 'hosts'));
    const src = path.join(d, 'src');
    fs.writeFileSync(src, 'nameserver 10.0.0.10\n', { mode: 0o644 });
    fs.mkdirSync(path.join(d, 'srcdir'));
    try {
      const n = await copyVolumeFiles(root, [
        { source: src, destination: '/etc/resolv.conf' },
        { source: src, destination: '/etc/hosts' },
        { source: src, destination: '/var/run/secrets/token' },
        { source: path.join(d, 'srcdir'), destination: '/data' },
      ]);
      expect(n).toBe(3);
      expect(fs.readFileSync(path.join(root, 'real-etc', 'resolv.conf'), 'utf8')).toBe('nameserver 10.0.0.10\n');
      expect(fs.lstatSync(path.join(root, 'real-etc', 'hosts')).isFile()).toBe(true);
      expect(fs.readFileSync(path.join(root, 'var', 'run', 'secrets', 'token'), 'utf8')).toContain('nameserver');
      expect(fs.existsSync(path.join(root, 'data'))).toBe(false);
      await expect(copyVolumeFiles(root, [{ source: src, destination: '/escape/x' }])).rejects.toThrow(/escapes the image root/);
      expect(fs.readdirSync(outside)).toEqual([]);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

// urunc block.go getBlockVolumes: a bind whose source is a whole block filesystem the guest mounts becomes disk vol<i>.
describe('volumes as disks', () => {
  it('only the topmost mount at the source, the root of a /dev filesystem of a type the guest mounts', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bv-'));
    try {
      for (const n of ['pv', 'sub', 'tmp', 'xfs', 'sp ace']) fs.mkdirSync(path.join(d, n));
      const esc = (p: string) => p.replace(/ /g, '\\040');
      const info = parseMountInfo([
        `30 1 8:1 / ${esc(d)}/pv rw,relatime shared:1 - ext4 /dev/sdb rw`,
        `31 1 8:2 /dir ${esc(d)}/sub rw - ext4 /dev/sdc rw`,
        `32 1 0:40 / ${esc(d)}/tmp rw - tmpfs tmpfs rw`,
        `33 1 8:3 / ${esc(d)}/xfs ro - xfs /dev/sdd rw`,
        `34 1 7:0 / ${esc(path.join(d, 'sp ace'))} ro,noatime - ext2 /dev/loop0 ro`,
      ].join('\n'));
      expect(info[4]?.mountPoint).toBe(path.join(d, 'sp ace'));
      const vols = ['pv', 'sub', 'tmp', 'xfs', 'sp ace', 'missing'].map((n, i) => ({ index: i + 6, source: path.join(d, n), destination: `/v/${i}`, readonly: false }));
      expect(await blockVolumes(vols, info, ['ext2', 'ext3', 'ext4'])).toEqual([
        { id: 'vol6', device: '/dev/sdb', fstype: 'ext4', hostPath: path.join(d, 'pv'), hostOptions: 'rw,relatime', mountPoint: '/v/0' },
        { id: 'vol10', device: '/dev/loop0', fstype: 'ext2', hostPath: path.join(d, 'sp ace'), hostOptions: 'ro,noatime', mountPoint: '/v/4' },
      ]);
      expect(await blockVolumes(vols, info, [])).toEqual([]);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('mount handlers', () => {
  it('a single ext4 mount of an image file with loop is a block rootfs; anything else is mounted', () => {
    const d = tmpdir();
    const img = path.join(d, 'snap');
    fs.writeFileSync(img, '');
    const m = (over: Partial<Mount>): Mount => ({ type: 'ext4', source: img, target: '', options: ['loop', 'rw'], ...over });
    expect(blockRootfs([m({})])).toEqual({ path: img, kind: 'file', fstype: 'ext4', readonly: false });
    expect(blockRootfs([m({ options: ['loop', 'ro'] })])?.readonly).toBe(true);
    expect(blockRootfs([m({ options: ['rw'] })])).toBeUndefined();
    expect(blockRootfs([m({ type: 'overlay', source: 'overlay', options: ['lowerdir=/a'] })])).toBeUndefined();
    expect(blockRootfs([m({ type: 'bind', options: ['rbind', 'ro'] })])).toBeUndefined();
    expect(blockRootfs([m({}), m({})])).toBeUndefined();
    // A block device mounted at a directory inside the root (2.x target) is not the root itself.
    expect(blockRootfs([m({ target: 'data' })])).toBeUndefined();
    expect(blockRootfs([m({ source: path.join(d, 'missing') })])).toBeUndefined();
  });
  it('a block device node is a block rootfs without loop', () => {
    const dev = fs.readdirSync('/dev').map((n) => `/dev/${n}`).find((p) => {
      try {
        return fs.statSync(p).isBlockDevice();
      } catch {
        return false;
      }
    });
    if (!dev) return;
    expect(blockRootfs([{ type: 'xfs', source: dev, target: '', options: [] }])).toEqual({ path: dev, kind: 'device', fstype: 'xfs', readonly: false });
  });
});

describe('persisted state and params', () => {
  it('writes the state file atomically and reads it back; params go into config.json, keeping its mode', () => {
    const b = tmpdir();
    fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations: { a: 'b' } }), { mode: 0o640 });
    const s = new StateFile(b, { namespace: 'ns', id: 'c1', address: '/run/c.sock' });
    s.update((x) => x.mounts.push('/m'));
    expect(readState(b)).toMatchObject({ version: 1, namespace: 'ns', id: 'c1', mounts: ['/m'] });
    expect(fs.readdirSync(b).sort()).toEqual(['config.json', 'urunc-rootfs.json']);
    const params = { type: 'block' as const, blockSource: 'container' as const, blockPath: '/f', mountedPath: '', artifacts: 'view' as const, artifactRoot: '/v' };
    persistParams(b, params);
    expect(readParams(b)).toEqual(params);
    const spec = JSON.parse(fs.readFileSync(path.join(b, 'config.json'), 'utf8'));
    expect(spec.annotations.a).toBe('b');
    expect(fs.statSync(path.join(b, 'config.json')).mode & 0o777).toBe(0o640);
    fs.writeFileSync(statePath(b), '{"version":9}');
    expect(() => readState(b)).toThrow(/unknown layout/);
  });
  it('a spec may not carry the runtime internal annotations', () => {
    expect(() => assertNoInternalAnnotations({ 'com.urunc.internal.rootfs.params': '{}' })).toThrow(/reserved for the runtime/);
    expect(() => assertNoInternalAnnotations({ 'com.urunc.unikernel.binary': '/k' })).not.toThrow();
  });
});

/** A recording fake of containerd's snapshot and lease calls; views are bind mounts of a directory. */
function fakeApi(layers: Record<string, { parent: string; kind: 'active' | 'committed' }>, source: string, fail: Partial<Record<keyof SnapshotApi, Error>> = {}) {
  const calls: string[] = [];
  const leases = new Set<string>();
  const snapshots = new Set<string>();
  const step = (name: keyof SnapshotApi, what: string) => {
    calls.push(`${name} ${what}`);
    const err = fail[name];
    if (err) throw err;
  };
  const api: SnapshotApi = {
    containerSnapshot: async (_ns, id) => (step('containerSnapshot', id), { snapshotter: 'overlayfs', key: id }),
    stat: async (_ns, _s, key) => {
      step('stat', key);
      const l = layers[key];
      if (!l) throw new ShimError(Code.NotFound, key);
      return l;
    },
    createLease: async (_ns, id) => (step('createLease', id), void leases.add(id)),
    view: async (_ns, lease, _s, key, parent) => {
      step('view', `${key}<-${parent}@${lease}`);
      snapshots.add(key);
      return [{ type: 'bind', source, target: '', options: ['rbind'] }];
    },
    removeSnapshot: async (_ns, _s, key) => (step('removeSnapshot', key), void snapshots.delete(key)),
    deleteLease: async (_ns, id) => (step('deleteLease', id), void leases.delete(id)),
  };
  return { api, calls, leases, snapshots };
}

describe('snapshot view', () => {
  const layers = { c1: { parent: 'top', kind: 'active' as const }, top: { parent: 'base', kind: 'committed' as const }, base: { parent: '', kind: 'committed' as const } };

  it('walks to the committed parent, leases, views, mounts read-only; release undoes all of it once', async () => {
    const b = tmpdir();
    const src = tmpdir();
    fs.writeFileSync(path.join(src, 'kernel'), 'k');
    const f = fakeApi(layers, src);
    const st = new StateFile(b, { namespace: 'ns', id: 'c1', address: '/c.sock' });
    const mp = await createView(f.api, st, b);
    try {
      expect(f.calls).toEqual(['containerSnapshot c1', 'stat c1', 'stat top', 'createLease urunc-rootfs-view-lease-c1', 'view urunc-rootfs-view-c1<-top@urunc-rootfs-view-lease-c1']);
      expect(fs.readFileSync(path.join(mp, 'kernel'), 'utf8')).toBe('k');
      expect(() => fs.writeFileSync(path.join(mp, 'x'), 'x')).toThrow(/EROFS|read-only/);
      expect(readState(b)?.view).toEqual({ snapshotter: 'overlayfs', key: 'urunc-rootfs-view-c1', lease: 'urunc-rootfs-view-lease-c1', parent: 'top', mountpoint: mp });
    } finally {
      await releaseRootfs(b, () => f.api);
    }
    expect(await hasMountsUnder(mp)).toBe(false);
    expect(fs.existsSync(mp)).toBe(false);
    expect([...f.leases, ...f.snapshots]).toEqual([]);
    expect(fs.existsSync(statePath(b))).toBe(false);
    const n = f.calls.length;
    await releaseRootfs(b, () => f.api);
    expect(f.calls.length).toBe(n);
  });

  it('a failed View releases the lease it took and clears the record', async () => {
    const b = tmpdir();
    const f = fakeApi(layers, tmpdir(), { view: new Error('snapshotter exploded') });
    const st = new StateFile(b, { namespace: 'ns', id: 'c1', address: '/c.sock' });
    await expect(createView(f.api, st, b)).rejects.toThrow(/snapshotter exploded/);
    expect(f.calls).toContain('deleteLease urunc-rootfs-view-lease-c1');
    expect(f.leases.size).toBe(0);
    expect(readState(b)?.view).toBeUndefined();
  });

  it('a release step that fails keeps the state file, and a later release finishes the job', async () => {
    const b = tmpdir();
    const src = tmpdir();
    const bad = fakeApi(layers, src, { deleteLease: new Error('containerd is down') });
    const st = new StateFile(b, { namespace: 'ns', id: 'c1', address: '/c.sock' });
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    st.update((s) => (s.virtiofsd = { pid: sleeper.pid as number, startTime: processStartTime(sleeper.pid as number) ?? '' }));
    await createView(bad.api, st, b);
    const exited = new Promise((r) => sleeper.once('exit', r));
    await expect(releaseRootfs(b, () => bad.api)).rejects.toThrow(/containerd is down/);
    await exited;
    expect(readState(b)?.view?.lease).toBe('urunc-rootfs-view-lease-c1');
    const good = fakeApi(layers, src);
    await releaseRootfs(b, () => good.api);
    expect(good.calls).toEqual(['removeSnapshot urunc-rootfs-view-c1', 'deleteLease urunc-rootfs-view-lease-c1']);
    expect(fs.existsSync(statePath(b))).toBe(false);
  });
});

describe('virtiofsd', () => {
  it("has urunc's socket and shared-dir arguments and the configured options, with our sandbox in place of theirs", () => {
    // urunc utils.go spawnVirtiofsd: <path> --socket-path=<sock> --shared-dir <dir> + strings.Fields(options).
    expect(virtiofsdArgv('/usr/libexec/virtiofsd', '--cache always --sandbox none', '/run/urunc/virtiofs.sock', '/cntrRootfs', { sandbox: 'chroot', readonly: false })).toEqual([
      '/usr/libexec/virtiofsd', '--socket-path=/run/urunc/virtiofs.sock', '--shared-dir', '/cntrRootfs', '--cache', 'always', '--sandbox', 'chroot',
    ]);
    expect(virtiofsdArgv('/opt/vfsd', '  --cache=never --sandbox=namespace --thread-pool-size=2 --readonly', '/s', '/d', { sandbox: 'none', readonly: true }))
      .toEqual(['/opt/vfsd', '--socket-path=/s', '--shared-dir', '/d', '--cache=never', '--thread-pool-size=2', '--sandbox', 'none', '--readonly']);
  });
  it('chroots only when the container process is root holding CAP_SYS_CHROOT in every set (virtiofsd refuses chroot to others)', () => {
    const all = ['CAP_CHOWN', 'CAP_SYS_CHROOT'];
    expect(virtiofsdSandbox(0, { bounding: all, effective: all, permitted: all })).toBe('chroot');
    expect(virtiofsdSandbox(1000, { bounding: all, effective: all, permitted: all })).toBe('none');
    expect(virtiofsdSandbox(0, { bounding: all, effective: ['CAP_CHOWN'], permitted: all })).toBe('none');
    expect(virtiofsdSandbox(0, { bounding: ['CAP_CHOWN'], effective: all, permitted: all })).toBe('none');
    expect(virtiofsdSandbox(0, undefined)).toBe('none');
  });
  it('waits for the socket, and reports a daemon that exits first with the end of its log', async () => {
    const d = tmpdir();
    const fake = path.join(d, 'virtiofsd');
    // Behaves like virtiofsd: refuses a missing shared dir on stderr, else creates the socket and serves.
    fs.writeFileSync(fake, '#!/bin/sh\nsock=${1#--socket-path=}\n[ -d "$3" ] || { echo "shared dir $3 missing" >&2; exit 1; }\nsleep 0.2\n: > "$sock"\nexec sleep 60\n', { mode: 0o755 });
    const start = (sock: string, dir: string, log: string) => {
      const fd = fs.openSync(log, 'a');
      const [bin, ...args] = virtiofsdArgv(fake, '', sock, dir, { sandbox: 'none', readonly: false });
      const child = spawn(bin as string, args, { stdio: ['ignore', fd, fd] });
      fs.closeSync(fd);
      return child;
    };
    const sock = path.join(d, 'vfs.sock');
    const ok = start(sock, d, path.join(d, 'ok.log'));
    await waitForVirtiofsd(ok.pid as number, sock, path.join(d, 'ok.log'));
    expect(fs.existsSync(sock)).toBe(true);
    ok.kill('SIGKILL');
    const bad = start(path.join(d, 'other.sock'), path.join(d, 'nope'), path.join(d, 'bad.log'));
    await expect(waitForVirtiofsd(bad.pid as number, path.join(d, 'other.sock'), path.join(d, 'bad.log'))).rejects.toThrow(/virtiofsd exited: shared dir .* missing/);
    const slow = start(path.join(d, 'slow.sock'), d, path.join(d, 'slow.log'));
    await expect(waitForVirtiofsd(slow.pid as number, path.join(d, 'never.sock'), path.join(d, 'slow.log'), 300)).rejects.toThrow(/did not create its socket in time/);
    slow.kill('SIGKILL');
  });
});

describe('ELF loading of a relocated helper', () => {
  it('reads the interpreter and the RPATH ($ORIGIN expanded) of a patched copy, and binds only what the root lacks', () => {
    const d = tmpdir();
    const bin = path.join(d, 'bin', 'tool');
    fs.mkdirSync(path.join(d, 'bin', 'lib'), { recursive: true });
    fs.mkdirSync(path.join(d, 'ld'));
    fs.copyFileSync('/bin/true', bin);
    fs.chmodSync(bin, 0o755);
    const host = elfLoading(bin);
    expect(host?.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(host?.searchDirs).toEqual([]);
    const r = spawnSync('patchelf', ['--set-interpreter', path.join(d, 'ld', 'ld-linux-x86-64.so.2'), '--force-rpath', '--set-rpath', '$ORIGIN/lib:/nonexistent/x', bin]);
    expect(r.status, r.stderr?.toString()).toBe(0);
    expect(elfLoading(bin)).toEqual({ interpreter: path.join(d, 'ld', 'ld-linux-x86-64.so.2'), searchDirs: [path.join(d, 'bin', 'lib'), '/nonexistent/x'] });
    // Missing dirs are skipped; a dir under one already bound is not bound again.
    expect(loaderDirs(bin, ['/lib', '/usr/lib'])).toEqual([path.join(d, 'ld'), path.join(d, 'bin', 'lib')]);
    expect(loaderDirs(bin, [d])).toEqual([]);
    expect(loaderDirs('/bin/true', ['/lib', '/lib64', '/usr/lib', '/usr/lib64'])).toEqual([]);
  });
  it('is not fooled by scripts or truncated files', () => {
    const d = tmpdir();
    fs.writeFileSync(path.join(d, 'script'), '#!/bin/sh\n');
    expect(elfLoading(path.join(d, 'script'))).toBeUndefined();
    const head = fs.readFileSync('/bin/true').subarray(0, 100);
    fs.writeFileSync(path.join(d, 'cut'), head);
    expect(() => elfLoading(path.join(d, 'cut'))).toThrow(/truncated ELF/);
  });
});

describe('overlay mounts with many layers', () => {
  // containerd mount_linux.go compactLowerdirOption: lower dirs relative to their common parent.
  it('takes the longest common parent out of the lower dirs, leaving other options alone', () => {
    const snap = (n: number) => `/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/${n}/fs`;
    expect(compactLowerdirs(['index=off', `lowerdir=${snap(12)}:${snap(3)}:${snap(140)}`, 'upperdir=/u', 'workdir=/w'])).toEqual({
      dir: '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots', options: ['index=off', 'lowerdir=12/fs:3/fs:140/fs', 'upperdir=/u', 'workdir=/w'],
    });
    expect(compactLowerdirs([`lowerdir=${snap(1)}:${snap(1)}`]).options).toEqual(['lowerdir=fs:fs']);
    expect(compactLowerdirs(['lowerdir=/a/x:/b/y']).dir).toBeUndefined();
    expect(compactLowerdirs([`lowerdir=${snap(1)}`]).dir).toBeUndefined();
    expect(compactLowerdirs(['lowerdir=rel/x:rel/y']).dir).toBeUndefined();
  });
  it('mounts 80 long-named layers whose options exceed a page, and names the mount when even that is too long', async () => {
    const d = tmpdir();
    const base = path.join(d, 'snapshots-with-a-rather-long-directory-name-to-pass-the-page-limit');
    const lowers: string[] = [];
    for (let i = 0; i < 80; i++) {
      const l = path.join(base, `layer-${String(i).padStart(3, '0')}`, 'fs');
      fs.mkdirSync(l, { recursive: true });
      fs.writeFileSync(path.join(l, `f${i}`), `layer ${i}\n`);
      lowers.push(l);
    }
    fs.mkdirSync(path.join(d, 'upper'));
    fs.mkdirSync(path.join(d, 'work'));
    const options = [`lowerdir=${lowers.join(':')}`, `upperdir=${path.join(d, 'upper')}`, `workdir=${path.join(d, 'work')}`];
    expect(options.join(',').length).toBeGreaterThan(4096);
    const root = path.join(d, 'rootfs');
    await mountAll([{ type: 'overlay', source: 'overlay', target: '', options }], root);
    try {
      expect(fs.readFileSync(path.join(root, 'f0'), 'utf8')).toBe('layer 0\n');
      expect(fs.readFileSync(path.join(root, 'f79'), 'utf8')).toBe('layer 79\n');
      fs.writeFileSync(path.join(root, 'new'), 'x');
      expect(fs.existsSync(path.join(d, 'upper', 'new'))).toBe(true);
    } finally {
      await unmountAll(root);
    }
    expect(await hasMountsUnder(d)).toBe(false);
    // Lower dirs with nothing in common cannot be shortened: a clear error, nothing mounted.
    const spread = Array.from({ length: 300 }, (_, i) => `/nonexistent-${i}/layer/fs`);
    await expect(mountAll([{ type: 'overlay', source: 'overlay', target: '', options: [`lowerdir=${spread.join(':')}`] }], path.join(d, 'r2')))
      .rejects.toThrow(/mount overlay on .*r2: its options are \d+ bytes for 300 lower dirs, more than the kernel's one-page limit/);
    // A plain failure names the mount and the errno.
    await expect(mountAll([{ type: 'overlay', source: 'overlay', target: '', options: ['lowerdir=/nonexistent/a:/nonexistent/b'] }], path.join(d, 'r3')))
      .rejects.toThrow(/mount overlay overlay on .*r3: ENOENT \(the source, a lower\/upper\/work dir or the target does not exist\)/);
    expect(await hasMountsUnder(d)).toBe(false);
  });
});


describe('capped reads of files others control', () => {
  it('reads a regular file; refuses one over the cap, a fifo (without blocking), a final symlink and a directory, each with a clear error', async () => {
    const d = tmpdir();
    const ok = path.join(d, 'urunc.json');
    fs.writeFileSync(ok, '{"a":"b"}');
    expect(await readCapped(ok, 64, 'urunc.json')).toBe('{"a":"b"}');
    expect(readCappedSync(ok, 64, 'urunc.json')).toBe('{"a":"b"}');
    const big = path.join(d, 'big');
    fs.writeFileSync(big, Buffer.alloc(65));
    await expect(readCapped(big, 64, 'big')).rejects.toThrow('big is 65 bytes, more than the 64 bytes allowed');
    expect(() => readCappedSync(big, 64, 'big')).toThrow('big is 65 bytes, more than the 64 bytes allowed');
    const sparse = path.join(d, 'sparse');
    fs.closeSync(fs.openSync(sparse, 'w'));
    fs.truncateSync(sparse, 3 * 2 ** 30);
    // A 3 GiB (sparse) file is refused from its size alone: nothing of it is read or allocated.
    await expect(readCapped(sparse, 2 ** 20, 'sparse')).rejects.toThrow(/sparse is 3221225472 bytes, more than the 1 MiB allowed/);
    const fifo = path.join(d, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expect(readCapped(fifo, 64, 'fifo')).rejects.toThrow('fifo is not a regular file');
    fs.symlinkSync(ok, path.join(d, 'link'));
    await expect(readCapped(path.join(d, 'link'), 64, 'link')).rejects.toThrow('link is a symbolic link');
    await expect(readCapped(d, 64, 'dir')).rejects.toThrow('dir is not a regular file');
  });
});
