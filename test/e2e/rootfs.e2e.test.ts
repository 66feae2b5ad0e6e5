// Root filesystems end to end: the container's block rootfs passed straight to the VM (blockfile
// snapshotter, never mounted on the host), read-only snapshot views of the image for the boot
// artifacts (lease + view visible while the task runs, gone after it), cleanup after a shim crash
// (with and without containerd's container record), failure injection at each Create step, and the
// 9p and virtio-fs exports (read-write as urunc's, or read-only with the guest's tmpfs overlay), virtiofsd
// confined to the monitor's container. Real containerd, runc, qemu and virtiofsd (trixie's).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeOciImage } from '../../scripts/lib/oci-image.js';
import { socketAddress } from '../../src/shim/address.js';
import { ContainerdGrpc } from '../../src/shim/containerd-grpc.js';
import { NAMESPACE_KEY } from '../../src/shim/ttrpc/server.js';
import { TtrpcClient } from '../../src/shim/ttrpc/client.js';
import * as pb from '../../src/gen/containerd/task/v2/shim.js';
import { GUESTS, buildGuests, linuxRootLayer, unikernelImage } from '../fixtures/unikernel-images.js';
import { Containerd, RUNTIME, pidsMatching, sleep, versionsUnderTest, waitFor, qemuPids, type Version } from './containerd.js';

const HELLO_LAYERED = 'docker.io/library/hello-uk:layered';
const LINUX_BLOCK = 'docker.io/library/linux-uk:block';
const LINUX_9P_WRITE = 'docker.io/library/linux-uk:9p-write';
const LINUX_VFS_WRITE = 'docker.io/library/linux-uk:virtiofs-write';
const UK_MOUNT_ROOTFS = 'docker.io/library/hello-uk:mount-rootfs';
/** Debian trixie's virtiofsd, unpacked and relocated by scripts/fetch-newer.sh. */
const VIRTIOFSD = path.join(GUESTS, '..', 'virtiofsd', 'virtiofsd');
const VIEW_ON = ['--annotation', 'com.urunc.unikernel.snapshotView=true'];

// kvm where /dev/kvm works (the hello kernel's quick path), else tcg (see KVM in containerd.ts).
const QEMU_KVM = '[monitors.qemu]\naccelerator = "auto"\nmachine = "microvm"\ncpu = "host,-arch-capabilities"\n';
const QEMU_TCG = '[monitors.qemu]\naccelerator = "tcg"\nmachine = "microvm"\n[guests.linux]\nextra_cmdline = "tsc_early_khz=2000000 tsc=reliable quiet"\n';

const REPO_CACHE = path.join(GUESTS, '..', 'images');

/** The hello kernel in one layer and its urunc.json in another (the view must merge them). */
function layeredHelloImage(): string {
  const out = path.join(REPO_CACHE, 'uk-hello-layered.tar');
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(REPO_CACHE, { recursive: true });
  const k = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-'));
  const j = fs.mkdtempSync(path.join(os.tmpdir(), 'lj-'));
  try {
    fs.mkdirSync(path.join(k, 'unikernel'));
    fs.copyFileSync(path.join(GUESTS, 'hello.elf'), path.join(k, 'unikernel', 'hello.elf'));
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    fs.writeFileSync(path.join(j, 'urunc.json'), JSON.stringify({
      'com.urunc.unikernel.unikernelType': b64('unikraft'),
      'com.urunc.unikernel.hypervisor': b64('qemu'),
      'com.urunc.unikernel.binary': b64('/unikernel/hello.elf'),
    }));
    writeOciImage({ name: HELLO_LAYERED, layers: [k, j], config: { Cmd: ['exit=3'] } }, `${out}.tmp`);
    fs.renameSync(`${out}.tmp`, out);
    return out;
  } finally {
    fs.rmSync(k, { recursive: true, force: true });
    fs.rmSync(j, { recursive: true, force: true });
  }
}

/** Loop devices and the files behind them. */
function loopBackingFiles(): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync('/sys/block').filter((n) => n.startsWith('loop'))) {
    try {
      out.push(fs.readFileSync(`/sys/block/${d}/loop/backing_file`, 'utf8').trim());
    } catch {
      // not attached
    }
  }
  return out;
}

/** Running virtiofsd processes (any, not only ours): pid and argv. */
function virtiofsds(): Array<{ pid: number; argv: string[] }> {
  const argvs: string[][] = [];
  const pids = pidsMatching((argv) => (argv[0] ?? '').endsWith('/virtiofsd') && argvs.push(argv) > 0);
  return pids.map((pid, i) => ({ pid, argv: argvs[i] as string[] }));
}

/** The guest's console log (a --log-uri file) once it has printed its root device. */
const guestReportedRoot = (logFile: string, timeoutMs: number): Promise<string> => waitFor('the guest to report its root', () => {
  const s = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
  // The whole line: the serial console reaches the log a few bytes at a time (slowly under tcg).
  return /rootdev:[^\n]*\n/.test(s) ? s : undefined;
}, timeoutMs);

const nsOf = (pid: number, ns: string) => fs.readlinkSync(`/proc/${pid}/ns/${ns}`);
const statusField = (pid: number, field: string) => new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => { throw new Error('timeout'); })]);
}

describe.each(versionsUnderTest())('rootfs plans and snapshot views on containerd %s', (version: Version) => {
  let c: Containerd;
  let cfgDir: string;
  let kvmConfig: string;
  let tcgViewConfig: string;
  let tcgSeedConfig: string;
  let vfsConfig: string;
  let vfsSeedConfig: string;
  let failFile: string;
  const used: string[] = [];
  const id = (name: string): string => {
    used.push(name);
    return name;
  };
  const hasBlockfile = version !== '1.6';

  const views = async (snapshotter = 'overlayfs'): Promise<{ snapshots: string[]; leases: string[] }> => {
    const s = await c.ctr(['snapshots', '--snapshotter', snapshotter, 'ls']);
    const l = await c.ctr(['leases', 'ls']);
    return {
      snapshots: s.stdout.split('\n').filter((x) => x.includes('urunc-rootfs-view-')).map((x) => x.split(/\s+/)[0] as string),
      leases: l.stdout.split('\n').filter((x) => x.includes('urunc-rootfs-view-lease-')).map((x) => x.split(/\s+/)[0] as string),
    };
  };

  /** Nothing of the container is left: no view, lease, mount, loop device, hypervisor or shim. */
  const expectClean = async (snapshotter = 'overlayfs'): Promise<void> => {
    await waitFor('no shim, qemu or virtiofsd', () => (c.shimPids().length === 0 && qemuPids().length === 0 && virtiofsds().length === 0) || undefined, 20_000);
    expect(await views(snapshotter)).toEqual({ snapshots: [], leases: [] });
    expect(c.mounts()).toEqual([]);
    expect(loopBackingFiles().filter((f) => f.startsWith(c.dir))).toEqual([]);
  };

  const bundleOf = (t: string) => path.join(c.state, 'io.containerd.runtime.v2.task', 'default', t);
  /** The plan Create persisted in the bundle's config.json. */
  const paramsOf = (t: string) => JSON.parse(JSON.parse(fs.readFileSync(path.join(bundleOf(t), 'config.json'), 'utf8')).annotations['com.urunc.internal.rootfs.params']);
  /** Kill, wait for STOPPED, task rm and c rm (each must succeed). */
  const stopAndRemove = async (t: string): Promise<void> => {
    await c.ctr(['task', 'kill', '-s', 'KILL', t]);
    await waitFor('stopped', async () => ((await c.ctr(['task', 'ls'])).stdout.match(new RegExp(`${t}\\s+\\d+\\s+STOPPED`)) ? true : undefined), 20_000);
    expect((await c.ctr(['task', 'rm', t])).code).toBe(0);
    expect((await c.ctr(['c', 'rm', t])).code).toBe(0);
    used.splice(used.indexOf(t), 1);
  };

  beforeAll(async () => {
    buildGuests();
    cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rfcfg-'));
    kvmConfig = path.join(cfgDir, 'kvm.toml');
    fs.writeFileSync(kvmConfig, QEMU_KVM);
    tcgViewConfig = path.join(cfgDir, 'tcg-view.toml');
    fs.writeFileSync(tcgViewConfig, `${QEMU_TCG}[rootfs_view]\nenabled = true\n[watchdog]\nboot_timeout_ms = 60000\n`);
    tcgSeedConfig = path.join(cfgDir, 'tcg-seed.toml');
    fs.writeFileSync(tcgSeedConfig, `${QEMU_TCG}[shared_fs]\nreadonly = true\n[watchdog]\nboot_timeout_ms = 60000\n`);
    const vfsd = `[extra_binaries.virtiofsd]\npath = "${VIRTIOFSD}"\noptions = "--cache always --sandbox none"\n[rootfs_view]\nenabled = true\n[watchdog]\nboot_timeout_ms = 60000\n`;
    vfsConfig = path.join(cfgDir, 'vfs.toml');
    fs.writeFileSync(vfsConfig, `${QEMU_TCG}${vfsd}`);
    vfsSeedConfig = path.join(cfgDir, 'vfs-seed.toml');
    fs.writeFileSync(vfsSeedConfig, `${QEMU_TCG}${vfsd}[shared_fs]\nreadonly = true\n`);
    failFile = path.join(cfgDir, 'failpoints');
    fs.writeFileSync(failFile, '');
    c = await Containerd.start(version, { URUNC_CONFIG_PATH: kvmConfig, URUNC_FAILPOINTS_FILE: failFile }, hasBlockfile ? { blockfileMb: 192 } : {});
    const blockImage = unikernelImage({
        name: LINUX_BLOCK, type: 'linux', hypervisor: 'qemu', kernel: path.join(GUESTS, 'vmlinux'), initrd: path.join(GUESTS, 'initramfs.gz'),
        describe: 'annotations', extra: { mountRootfs: 'true', rootfsType: 'block' }, layers: [linuxRootLayer()],
        cmd: ['/bin/app', 'block-root'], env: ['PATH=/bin', 'GREETING=from-the-disk', 'READ_FILE=/secret.txt', 'SHOW_ROOT=1', 'EXIT_CODE=5'],
    });
    const images = [
      layeredHelloImage(),
      unikernelImage({
        name: LINUX_9P_WRITE, type: 'linux', hypervisor: 'qemu', kernel: path.join(GUESTS, 'vmlinux'), initrd: path.join(GUESTS, 'initramfs.gz'),
        // The test kernel needs its initrd for the 9p modules, and an initrd annotation alone would make the
        // initrd the root (urunc's priority): rootfsType (ours) asks for the 9p root beside it.
        describe: 'annotations', extra: { mountRootfs: 'true', rootfsType: '9pfs' }, layers: [linuxRootLayer()],
        cmd: ['/bin/app', 'overlay'], env: ['PATH=/bin', 'GREETING=nine-p', 'WRITE_FILE=/guest-wrote.txt', 'SHOW_ROOT=1'],
      }),
      unikernelImage({
        name: LINUX_VFS_WRITE, type: 'linux', hypervisor: 'qemu', kernel: path.join(GUESTS, 'vmlinux'), initrd: path.join(GUESTS, 'initramfs.gz'),
        // As for 9p: the kernel's modules are in the initrd, and rootfsType (ours) asks for the virtio-fs root beside it.
        describe: 'annotations', extra: { mountRootfs: 'true', rootfsType: 'virtiofs' }, layers: [linuxRootLayer()],
        cmd: ['/bin/app', 'shared'], env: ['PATH=/bin', 'GREETING=virtio-fs', 'WRITE_FILE=/guest-wrote.txt', 'SHOW_ROOT=1', 'READ_FILE=/secret.txt'],
      }),
    ];
    for (const tar of images) {
      const r = await c.ctr(['images', 'import', tar]);
      expect(r.code, r.stderr).toBe(0);
    }
    if (hasBlockfile) {
      // A Unikraft image asking for the container rootfs (the hello kernel prints the command line it got).
      const ukMount = unikernelImage({ name: UK_MOUNT_ROOTFS, type: 'unikraft', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'annotations', extra: { mountRootfs: 'true' } });
      for (const tar of [blockImage, ukMount]) {
        const r = await c.ctr(['images', 'import', '--local', '--snapshotter', 'blockfile', tar]);
        expect(r.code, r.stderr).toBe(0);
      }
    }
  }, 180_000);

  afterEach(async (ctx) => {
    // A failure (a timeout included) leaves what containerd and the shim said, for the next reader.
    if (ctx.task.result?.state === 'fail') {
      console.log(`containerd log at the failure of "${ctx.task.name}":\n${c.logTail()}\ntasks:\n${(await c.ctr(['task', 'ls'])).stdout}`);
    }
    fs.writeFileSync(failFile, '');
    for (const t of used.splice(0)) {
      await c.ctr(['task', 'kill', '-s', 'KILL', t]);
      await c.ctr(['task', 'rm', '-f', t]);
      await c.ctr(['c', 'rm', t]);
    }
  });

  afterAll(async () => {
    await c?.destroy();
    if (cfgDir) fs.rmSync(cfgDir, { recursive: true, force: true });
  });

  it.skipIf(!hasBlockfile)('blockfile: a Linux guest boots from the container block rootfs, never mounted on the host; boot artifacts come from the view', async () => {
    const t = id('rf-block');
    const logFile = path.join(c.dir, `${t}.log`);
    const r = await c.ctr(['run', '-d', '--snapshotter', 'blockfile', '--runtime', RUNTIME, '--runtime-config-path', tcgViewConfig,
      '--log-uri', `file://${logFile}`, '--env', 'SLEEP=60', LINUX_BLOCK, t]);
    expect(r.code, r.stderr).toBe(0);
    const out = await guestReportedRoot(logFile, 60_000);
    expect(out).toContain('URUNC_LINUX_MARKER greeting=from-the-disk arg=block-root');
    expect(out).toContain('file: only-in-the-image-7f3a');
    expect(out).toMatch(/rootdev: \/dev\/vda \/ ext4 rw/);

    const bundle = bundleOf(t);
    const params = paramsOf(t);
    expect(params).toMatchObject({ type: 'block', blockSource: 'container', blockKind: 'file', fstype: 'ext4', mountedPath: '', artifacts: 'view', artifactRoot: path.join(bundle, 'rootfs-view') });
    // The disk qemu has open is the container's snapshot file, and no loop device (so no mount) uses it.
    const [qemu] = qemuPids();
    expect(qemu).toBeGreaterThan(0);
    const snapDir = path.join(c.root, 'io.containerd.snapshotter.v1.blockfile', 'snapshots');
    const disk = fs.statSync(`/proc/${qemu}/root/guest/block`);
    const diskFile = fs.readdirSync(snapDir).map((n) => path.join(snapDir, n)).find((f) => {
      const s = fs.statSync(f);
      return s.ino === disk.ino && s.dev === disk.dev;
    });
    expect(diskFile).toBe(params.blockPath);
    expect(loopBackingFiles()).not.toContain(diskFile);
    expect(fs.readFileSync('/proc/mounts', 'utf8')).not.toContain(path.join(bundle, 'rootfs '));
    // The kernel the monitor booted is the file in the view's (read-only, loop) mount.
    const k = fs.statSync(`/proc/${qemu}/root/guest/kernel`);
    const inView = fs.statSync(path.join(bundle, 'rootfs-view', 'unikernel', 'vmlinux'));
    expect([k.dev, k.ino]).toEqual([inView.dev, inView.ino]);
    expect((await views('blockfile')).snapshots).toEqual([`urunc-rootfs-view-${t}`]);

    await stopAndRemove(t);
    await expectClean('blockfile');
  }, 120_000);

  // urunc rootfs.go tryContainerBlockRootfs asks Unikraft.SupportsBlock (false): the blockfile rootfs
  // is not given to a guest that cannot read a disk; try9pfs gives it the same files over 9p.
  it.skipIf(!hasBlockfile)('blockfile: a Unikraft guest with mountRootfs gets the container rootfs over 9p, not as a disk it cannot read', async () => {
    const t = id('rf-uk-9p');
    const r = await c.ctr(['run', '--rm', '--snapshotter', 'blockfile', '--runtime', RUNTIME, UK_MOUNT_ROOTFS, t], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('vfs.fstab=[ "fs0:/:9pfs:::" ]');
    await expectClean('blockfile');
  }, 90_000);

  // urunc block.go getBlockVolumes: a volume that is a whole ext4 filesystem on a block device reaches
  // a guest with a block root as disk vol<i> (its virtio serial); the host gets its mount back after.
  it.skipIf(!hasBlockfile)('blockfile: a block-device volume is lent to the VM as disk vol<i> and mounted back on the host at removal', async () => {
    const t = id('rf-blockvol');
    const img = path.join(cfgDir, 'vol.img');
    const mnt = path.join(cfgDir, 'vol-mnt');
    fs.mkdirSync(mnt);
    let loop = '';
    try {
      expect(spawnSync('mkfs.ext4', ['-q', '-F', img, '8M']).status).toBe(0);
      loop = spawnSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).stdout.trim();
      expect(loop).toMatch(/^\/dev\/loop\d+$/);
      expect(spawnSync('mount', [loop, mnt]).status).toBe(0);
      fs.writeFileSync(path.join(mnt, 'kept.txt'), 'host data\n');
      const logFile = path.join(c.dir, `${t}.log`);
      const r = await c.ctr(['run', '-d', '--snapshotter', 'blockfile', '--runtime', RUNTIME, '--runtime-config-path', tcgViewConfig,
        '--mount', `type=bind,src=${mnt},dst=/data,options=rbind:rw`, '--log-uri', `file://${logFile}`, '--env', 'SLEEP=60', '--env', 'SHOW_DISKS=1', LINUX_BLOCK, t]);
      expect(r.code, r.stderr).toBe(0);
      const out = await waitFor('the guest to list its disks', () => {
        const s = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
        return /disk: vdb/.test(s) ? s : undefined;
      }, 60_000);
      expect(out).toMatch(/disk: vda serial=rootfs/);
      expect(out).toMatch(/disk: vdb serial=vol\d+/);
      expect(paramsOf(t).blockVolumes).toEqual([{ id: expect.stringMatching(/^vol\d+$/), device: loop, mountPoint: '/data' }]);
      // Lent: the host no longer has it mounted while the VM runs.
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(` ${mnt} `);
      await stopAndRemove(t);
      // Given back, with its data.
      expect(fs.readFileSync(path.join(mnt, 'kept.txt'), 'utf8')).toBe('host data\n');
      await expectClean('blockfile');
    } finally {
      spawnSync('umount', [mnt]);
      if (loop) spawnSync('losetup', ['-d', loop]);
    }
  }, 120_000);

  it('overlayfs, multi-layer image, views on: the view and its lease exist while the task runs, and are gone after task rm and c rm', async () => {
    const t = id('rf-view');
    const r = await c.ctr(['run', '-d', '--runtime', RUNTIME, ...VIEW_ON, HELLO_LAYERED, t, 'wait']);
    expect(r.code, r.stderr).toBe(0);
    expect(await views()).toEqual({ snapshots: [`urunc-rootfs-view-${t}`], leases: [`urunc-rootfs-view-lease-${t}`] });
    const bundle = bundleOf(t);
    const [qemu] = qemuPids();
    const k = fs.statSync(`/proc/${qemu}/root/guest/kernel`);
    const inView = fs.statSync(path.join(bundle, 'rootfs-view', 'unikernel', 'hello.elf'));
    expect([k.dev, k.ino]).toEqual([inView.dev, inView.ino]);
    // The view is read-only on the host.
    expect(() => fs.writeFileSync(path.join(bundle, 'rootfs-view', 'x'), 'x')).toThrow(/EROFS|read-only/);
    const state = JSON.parse(fs.readFileSync(path.join(bundle, 'urunc-rootfs.json'), 'utf8'));
    expect(state.view).toMatchObject({ snapshotter: 'overlayfs', key: `urunc-rootfs-view-${t}`, lease: `urunc-rootfs-view-lease-${t}` });

    await stopAndRemove(t);
    await expectClean();
  }, 60_000);

  it('views on, ctr run --rm: the boot works and leaves nothing', async () => {
    const t = id('rf-view-rm');
    const r = await c.ctr(['run', '--rm', '--runtime', RUNTIME, ...VIEW_ON, HELLO_LAYERED, t]);
    expect(r.stdout).toContain('Hello from a urunc-ts unikernel!');
    // Unikraft has no exit device (urunc unikraft.go MonitorCli): the guest's power-off is status 0.
    expect(r.code).toBe(0);
    await expectClean();
  }, 60_000);

  it.skipIf(!hasBlockfile)('blockfile, views off: the boot artifacts are copied out of a transient read-only mount, released before the guest starts', async () => {
    const t = id('rf-block-copy');
    const logFile = path.join(c.dir, `${t}.log`);
    const r = await c.ctr(['run', '-d', '--snapshotter', 'blockfile', '--runtime', RUNTIME, '--runtime-config-path', tcgViewConfig,
      '--annotation', 'com.urunc.unikernel.snapshotView=false', '--log-uri', `file://${logFile}`, '--env', 'SLEEP=60', LINUX_BLOCK, t]);
    expect(r.code, r.stderr).toBe(0);
    const bundle = bundleOf(t);
    const params = paramsOf(t);
    // The copies are on disk in containerd's work dir, never in the bundle (its state dir, RAM on real hosts).
    const copies = path.join(fs.realpathSync(path.join(bundle, 'work')), 'urunc-artifacts');
    expect(params).toMatchObject({ type: 'block', blockSource: 'container', mountedPath: '', artifacts: 'copy', artifactRoot: copies });
    expect(fs.readdirSync(path.join(copies, 'unikernel')).sort()).toEqual(['initramfs.gz', 'vmlinux']);
    expect(fs.existsSync(path.join(bundle, 'artifacts'))).toBe(false);
    expect(c.mounts()).toEqual([]);
    expect(loopBackingFiles().filter((f) => f.startsWith(c.dir))).toEqual([]);
    expect(await views('blockfile')).toEqual({ snapshots: [], leases: [] });
    const out = await guestReportedRoot(logFile, 60_000);
    expect(out).toMatch(/rootdev: \/dev\/vda \/ ext4 rw/);
    await stopAndRemove(t);
    expect(fs.existsSync(bundleOf(t))).toBe(false);
    expect(fs.existsSync(copies)).toBe(false);
    await expectClean('blockfile');
  }, 120_000);

  it('Shutdown with now=true while a task runs: the daemon kills it and releases view, lease and mounts before it exits', async () => {
    const t = id('rf-shutdown');
    expect((await c.ctr(['run', '-d', '--runtime', RUNTIME, ...VIEW_ON, HELLO_LAYERED, t, 'wait'])).code).toBe(0);
    expect((await views()).leases).toEqual([`urunc-rootfs-view-lease-${t}`]);
    const client = await TtrpcClient.connect(c.shimAddress(t));
    try {
      await client.call('containerd.task.v2.Task', 'Shutdown', pb.ShutdownRequest.encode({ id: t, now: true }).finish(), { metadata: { [NAMESPACE_KEY]: 'default' }, timeoutMs: 5000 });
    } finally {
      client.close();
    }
    await waitFor('the shim to exit', () => (c.shimPids().length === 0 ? true : undefined), 20_000);
    expect(fs.readFileSync(c.logFile, 'utf8')).toMatch(new RegExp(`"task":"${t}".*shutdown: container killed and its resources released`));
    await expectClean();
  }, 60_000);

  for (const order of ['shim killed', 'container record removed, then shim killed'] as const) {
    it(`SIGKILL of the shim mid-run (${order}): containerd's cleanup leaves no view, lease or mount`, async () => {
      const t = id(order === 'shim killed' ? 'rf-crash' : 'rf-crash-norecord');
      const r = await c.ctr(['run', '-d', '--runtime', RUNTIME, ...VIEW_ON, HELLO_LAYERED, t, 'wait']);
      expect(r.code, r.stderr).toBe(0);
      expect((await views()).leases).toEqual([`urunc-rootfs-view-lease-${t}`]);
      if (order !== 'shim killed') {
        // The API deletes the record even with a live task (ctr refuses; other clients may not).
        const grpc = new ContainerdGrpc(c.address);
        const idField = Buffer.concat([Buffer.from([0x0a, t.length]), Buffer.from(t)]);
        await withTimeout(grpc.call('default', '/containerd.services.containers.v1.Containers/Delete', t,
          { encode: () => ({ finish: () => idField }), decode: () => t }, { encode: () => ({ finish: () => new Uint8Array() }), decode: () => ({}) }), 10_000);
        grpc.close();
        expect((await c.ctr(['c', 'info', t])).code).not.toBe(0);
      }
      const daemons = c.shimDaemonPids();
      expect(daemons).toHaveLength(1);
      process.kill(daemons[0] as number, 'SIGKILL');
      await waitFor('the view and lease released by delete', async () => {
        const v = await views();
        return v.leases.length === 0 && v.snapshots.length === 0 && c.mounts().length === 0 ? true : undefined;
      }, 30_000).catch((err: unknown) => { throw new Error(`${String(err)}\ncontainerd's log of the cleanup:\n${c.cleanupLog()}`); });
      await expectClean();
    }, 60_000);
  }

  const fallbackSteps = ['rootfs.lease', 'rootfs.view', 'rootfs.mount'] as const;
  for (const step of fallbackSteps) {
    it(`failure injected at ${step}: the view is dropped, the boot falls back to the rootfs and nothing is left`, async () => {
      fs.writeFileSync(failFile, step);
      const t = id(`rf-fail-${step.split('.')[1]}`);
      const r = await c.ctr(['run', '-d', '--runtime', RUNTIME, ...VIEW_ON, HELLO_LAYERED, t, 'wait']);
      expect(r.code, r.stderr).toBe(0);
      // Running, without any view resource.
      expect(await views()).toEqual({ snapshots: [], leases: [] });
      const bundle = bundleOf(t);
      const params = paramsOf(t);
      expect(params.artifacts).toBe('rootfs');
      expect(fs.existsSync(path.join(bundle, 'rootfs-view'))).toBe(false);
      expect(fs.readFileSync(c.logFile, 'utf8')).toContain(`failpoint ${step}: injected failure`);
      await stopAndRemove(t);
      await expectClean();
    }, 60_000);
  }

  for (const step of ['rootfs.persist', 'task.runc-create'] as const) {
    it(`failure injected at ${step} (after the view exists): Create fails and every step is rolled back`, async () => {
      fs.writeFileSync(failFile, step);
      const t = id(`rf-fail-${step.split('.')[1]}`);
      const r = await c.ctr(['run', '--rm', '--runtime', RUNTIME, ...VIEW_ON, HELLO_LAYERED, t]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`failpoint ${step}: injected failure`);
      // The view had been made (containerd logs it at debug level) before the failing step.
      expect(fs.readFileSync(c.logFile, 'utf8')).toMatch(new RegExp(`prepare view snapshot.*key=urunc-rootfs-view-${t} `));
      await c.ctr(['c', 'rm', t]);
      await expectClean();
      const bundle = bundleOf(t);
      expect(fs.existsSync(bundle)).toBe(false);
    }, 60_000);
  }

  it('a snapshotView annotation that is not a boolean fails Create with a clear error and leaves nothing', async () => {
    const t = id('rf-bad-annotation');
    const r = await c.ctr(['run', '--rm', '--runtime', RUNTIME, '--annotation', 'com.urunc.unikernel.snapshotView=maybe', HELLO_LAYERED, t]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('com.urunc.unikernel.snapshotView: must be true or false, got "maybe"');
    await c.ctr(['c', 'rm', t]);
    await expectClean();
  }, 60_000);

  /** The container's writable layer (overlayfs upper dir). */
  const upperOf = async (t: string): Promise<string> => {
    const upper = /upperdir=([^,\s]+)/.exec((await c.ctr(['snapshots', 'mounts', '/x', t])).stdout)?.[1];
    expect(upper).toBeTruthy();
    return upper as string;
  };

  // urunc qemu.go's 9p fsdev (no readonly) and shared_fs.go (the rootfs bound read-write at /cntrRootfs):
  // the guest mounts its root read-write and its writes land in the container's writable snapshot.
  it('9p root of a Linux guest: read-write export, the guest\'s writes land in the container snapshot', async () => {
    const t = id('rf-9p');
    const r = await c.ctr(['run', '--runtime', RUNTIME, '--runtime-config-path', tcgViewConfig, LINUX_9P_WRITE, t], { timeoutMs: 90_000 });
    expect(r.stdout).toContain('URUNC_LINUX_MARKER greeting=nine-p arg=overlay');
    expect(r.stdout).toContain('wrote: written-by-guest');
    expect(r.stdout).toMatch(/rootdev: fs0 \/ 9p rw/);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(await upperOf(t), 'guest-wrote.txt'), 'utf8')).toBe('written-by-guest\n');
    expect((await c.ctr(['c', 'rm', t])).code).toBe(0);
    used.splice(used.indexOf(t), 1);
    await expectClean();
  }, 120_000);

  // Ours: [shared_fs] readonly = true serves the image read-only; the guest keeps its writes in a tmpfs overlay.
  it('9p root, read-only seed mode: the export is read-only, the guest writes into its own tmpfs overlay, the container rootfs is untouched', async () => {
    const t = id('rf-9p-ro');
    const r = await c.ctr(['run', '--runtime', RUNTIME, '--runtime-config-path', tcgSeedConfig, LINUX_9P_WRITE, t], { timeoutMs: 90_000 });
    expect(r.stdout).toContain('URUNC_LINUX_MARKER greeting=nine-p arg=overlay');
    expect(r.stdout).toContain('wrote: written-by-guest');
    expect(r.stdout).toMatch(/rootdev: overlay \/ overlay/);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(await upperOf(t))).not.toContain('guest-wrote.txt');
    expect((await c.ctr(['c', 'rm', t])).code).toBe(0);
    used.splice(used.indexOf(t), 1);
    await expectClean();
  }, 120_000);

  /** Starts a detached virtio-fs container and waits until its guest reports its root. */
  const runShared = async (t: string, config: string, extra: string[] = []): Promise<{ log: string; out: string }> => {
    const log = path.join(c.dir, `${t}.log`);
    const r = await c.ctr(['run', '-d', '--runtime', RUNTIME, '--runtime-config-path', config, '--log-uri', `file://${log}`, ...extra, LINUX_VFS_WRITE, t]);
    expect(r.code, r.stderr).toBe(0);
    const out = await guestReportedRoot(log, 90_000);
    return { log, out };
  };
  const taskPid = async (t: string): Promise<number> => Number(new RegExp(`${t}\\s+(\\d+)`).exec((await c.ctr(['task', 'ls'])).stdout)?.[1]);

  // urunc shared_fs.go/utils.go spawnVirtiofsd: the rootfs bound read-write at /cntrRootfs of the monitor
  // root and served by virtiofsd on a socket qemu connects to (qemu.go's vhost-user-fs-pci, tag fs0).
  it('virtio-fs root of a Linux guest: read-write, writes land in the snapshot, a volume is seen live; virtiofsd runs in the monitor\'s namespaces, cgroup and root, chrooted, without CAP_SYS_ADMIN', async () => {
    const t = id('rf-vfs');
    // A volume, bound live under the export as urunc binds it over /cntrRootfs (read-only honoured).
    const vol = fs.mkdtempSync(path.join(c.dir, 'vfs-vol-'));
    fs.writeFileSync(path.join(vol, 'vol.txt'), 'from-the-volume\n');
    const { log, out } = await runShared(t, vfsConfig, ['--env', 'SLEEP=8', '--env', 'READ_FILES=/data/vol.txt',
      '--mount', `type=bind,src=${vol},dst=/data,options=rbind:ro`]);
    expect(out).toContain('URUNC_LINUX_MARKER greeting=virtio-fs arg=shared');
    expect(out).toContain('file /data/vol.txt: from-the-volume;');
    expect(out).toContain('file: only-in-the-image-7f3a');
    expect(out).toContain('wrote: written-by-guest');
    expect(out).toMatch(/rootdev: fs0 \/ virtiofs rw/);

    const qemu = await taskPid(t);
    const vfs = virtiofsds();
    expect(vfs.map((v) => v.argv)).toEqual([[fs.realpathSync(VIRTIOFSD), '--socket-path=/run/urunc/virtiofs.sock', '--shared-dir', '/cntrRootfs', '--cache', 'always', '--sandbox', 'chroot']]);
    const v = (vfs[0] as { pid: number }).pid;
    // The container's namespaces and cgroup (the hypervisor's), never the host's mount namespace.
    for (const ns of ['mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup']) expect(nsOf(v, ns), ns).toBe(nsOf(qemu, ns));
    expect(nsOf(v, 'mnt')).not.toBe(fs.readlinkSync('/proc/self/ns/mnt'));
    expect(nsOf(v, 'pid')).not.toBe(fs.readlinkSync('/proc/self/ns/pid'));
    expect(fs.readFileSync(`/proc/${v}/cgroup`, 'utf8')).toBe(fs.readFileSync(`/proc/${qemu}/cgroup`, 'utf8'));
    // Its own sandbox: chrooted into the shared dir (its root is no longer the monitor root's /), no_new_privs,
    // its own seccomp filter, and no capability beyond the container's (CAP_SYS_ADMIN is bit 21).
    expect(fs.existsSync(`/proc/${v}/root/cntrRootfs`)).toBe(false);
    expect(fs.existsSync(`/proc/${v}/root/bin/app`)).toBe(true);
    expect(fs.existsSync(`/proc/${qemu}/root/cntrRootfs/bin/app`)).toBe(true);
    expect(statusField(v, 'NoNewPrivs')).toBe('1');
    expect(statusField(v, 'Seccomp')).toBe('2');
    expect(BigInt(`0x${statusField(v, 'CapBnd')}`) & (1n << 21n)).toBe(0n);
    expect(BigInt(`0x${statusField(v, 'CapBnd')}`) & ~BigInt(`0x${statusField(qemu, 'CapBnd')}`)).toBe(0n);

    await waitFor('stopped', async () => ((await c.ctr(['task', 'ls'])).stdout.match(new RegExp(`${t}\\s+\\d+\\s+STOPPED`)) ? true : undefined), 90_000);
    expect(fs.readFileSync(log, 'utf8')).toContain('guest-exit: status 0');
    expect(fs.readFileSync(path.join(await upperOf(t), 'guest-wrote.txt'), 'utf8')).toBe('written-by-guest\n');
    await stopAndRemove(t);
    await expectClean();
  }, 180_000);

  // Ours: [shared_fs] readonly = true serves the image's read-only view (virtiofsd --readonly); the guest keeps its writes in a tmpfs overlay.
  it('virtio-fs root, read-only seed mode: the snapshot view is served read-only, the guest writes into its own tmpfs overlay, nothing reaches the snapshot', async () => {
    const t = id('rf-vfs-ro');
    const { out } = await runShared(t, vfsSeedConfig, ['--env', 'SLEEP=20']);
    expect(out).toContain('URUNC_LINUX_MARKER greeting=virtio-fs arg=shared');
    expect(out).toContain('file: only-in-the-image-7f3a');
    expect(out).toContain('wrote: written-by-guest');
    expect(out).toMatch(/rootdev: overlay \/ overlay/);
    const vfs = virtiofsds();
    expect(vfs.length).toBe(1);
    expect(vfs[0]?.argv.slice(-3)).toEqual(['--sandbox', 'chroot', '--readonly']);
    // The export is the view (mounted read-only on the host), bound read-only at /cntrRootfs.
    const params = paramsOf(t);
    expect(params.artifacts).toBe('view');
    const derived = JSON.parse(fs.readFileSync(path.join(bundleOf(t), 'monitor', 'config.json'), 'utf8')) as { mounts: Array<{ destination: string; source: string; options: string[] }> };
    const shared = derived.mounts.find((m) => m.destination === '/cntrRootfs');
    expect(shared?.source).toBe(params.artifactRoot);
    expect(shared?.options).toContain('ro');
    expect(fs.readdirSync(await upperOf(t))).not.toContain('guest-wrote.txt');
    await stopAndRemove(t);
    await expectClean();
  }, 180_000);

  it('virtio-fs root: after a SIGKILL of the shim, containerd\'s cleanup leaves no virtiofsd, qemu, view or mount', async () => {
    const t = id('rf-vfs-crash');
    await runShared(t, vfsConfig, ['--env', 'SLEEP=120']);
    expect(virtiofsds().length).toBe(1);
    const shims = c.shimPids();
    expect(shims.length).toBe(1);
    process.kill(shims[0] as number, 'SIGKILL');
    await waitFor('the view and mounts released by delete', async () => {
      const v = await views();
      return v.leases.length === 0 && c.mounts().length === 0 && virtiofsds().length === 0 ? true : undefined;
    }, 30_000);
    await expectClean();
  }, 180_000);

  it('virtio-fs root from a rootfs directory (no snapshot mounts), container user 1000: virtiofsd runs as that user with no capabilities, and the guest boots', async () => {
    const t = id('rf-vfs-user');
    const root = linuxRootLayer();
    fs.chmodSync(root, 0o755);
    fs.mkdirSync(path.join(root, 'boot'));
    for (const f of ['vmlinux', 'initramfs.gz']) fs.copyFileSync(path.join(GUESTS, f), path.join(root, 'boot', f));
    const spec = JSON.parse((await c.ctr(['oci', 'spec'])).stdout) as Record<string, any>;
    spec.root = { path: root, readonly: false };
    spec.linux.cgroupsPath = `/default/${t}`;
    spec.process = { ...spec.process, terminal: false, user: { uid: 1000, gid: 1000 }, args: ['/bin/app', 'as-user'], env: ['PATH=/bin', 'GREETING=virtio-fs-user', 'SHOW_ROOT=1', 'READ_FILE=/secret.txt', 'SLEEP=8'] };
    spec.annotations = {
      'com.urunc.unikernel.unikernelType': 'linux', 'com.urunc.unikernel.hypervisor': 'qemu', 'com.urunc.unikernel.binary': '/boot/vmlinux',
      'com.urunc.unikernel.initrd': '/boot/initramfs.gz', 'com.urunc.unikernel.mountRootfs': 'true', 'com.urunc.unikernel.rootfsType': 'virtiofs',
    };
    const file = path.join(c.dir, `spec-${t}.json`);
    fs.writeFileSync(file, JSON.stringify(spec));
    const log = path.join(c.dir, `${t}.log`);
    const r = await c.ctr(['run', '-d', '--config', file, '--runtime', RUNTIME, '--runtime-config-path', vfsConfig, '--log-uri', `file://${log}`, t]);
    expect(r.code, r.stderr).toBe(0);
    const out = await guestReportedRoot(log, 90_000);
    expect(out).toContain('URUNC_LINUX_MARKER greeting=virtio-fs-user arg=as-user');
    expect(out).toContain('file: only-in-the-image-7f3a');
    const vfs = virtiofsds();
    expect(vfs.length).toBe(1);
    const v = (vfs[0] as { pid: number }).pid;
    expect(vfs[0]?.argv.slice(-2)).toEqual(['--sandbox', 'none']);
    expect(statusField(v, 'Uid')?.split(/\s+/)).toEqual(['1000', '1000', '1000', '1000']);
    expect(statusField(v, 'CapEff')).toBe('0000000000000000');
    expect(statusField(v, 'NoNewPrivs')).toBe('1');
    expect(statusField(v, 'Seccomp')).toBe('2');
    expect(nsOf(v, 'mnt')).toBe(nsOf(await taskPid(t), 'mnt'));
    await stopAndRemove(t);
    expect(fs.readdirSync(root).sort()).toEqual(['bin', 'boot', 'dev', 'proc', 'secret.txt', 'sys', 'tmp']);
    fs.rmSync(root, { recursive: true, force: true });
    await expectClean();
  }, 180_000);
});
