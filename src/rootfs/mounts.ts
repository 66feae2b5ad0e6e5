// The mounts containerd hands to Create (a snapshot's rootfs, or a view of the image), through one
// table of handlers keyed by mount type: how to mount it on the host, and whether it is a block
// filesystem (a device, or an image file with `loop`) that a VM can take as a disk without the host
// ever mounting it. Mounts are unmounted by path alone (Delete, rollback, and the `delete` command).
import fs from 'node:fs';
import path from 'node:path';
import { invalidArgument, messageOf } from '../errors.js';
import { runChecked } from '../sys/spawn.js';
import { EBUSY, EINVAL, ENOENT, Errno, MNT_DETACH, mount, umount } from '../sys/libc.js';
import { resolveInRoot } from './resolve-in-root.js';
import { bounded } from '../sys/off-loop.js';

export interface Mount {
  type: string;
  source: string;
  /** containerd 2.x: where the mount goes relative to the root ("" = the root itself). */
  target: string;
  options: string[];
}

/** A block filesystem the guest can take as its root disk: never mounted on the host. */
export interface BlockSource {
  /** A block device node, or a regular image file (containerd's blockfile snapshotter). */
  path: string;
  kind: 'device' | 'file';
  fstype: string;
  readonly: boolean;
}

const FLAGS: Record<string, [set: boolean, flag: number]> = {
  ro: [true, 0x1], rw: [false, 0x1],
  nosuid: [true, 0x2], suid: [false, 0x2],
  nodev: [true, 0x4], dev: [false, 0x4],
  noexec: [true, 0x8], exec: [false, 0x8],
  sync: [true, 0x10], async: [false, 0x10],
  remount: [true, 0x20],
  dirsync: [true, 0x80],
  noatime: [true, 0x400], atime: [false, 0x400],
  nodiratime: [true, 0x800], diratime: [false, 0x800],
  bind: [true, 0x1000],
  rbind: [true, 0x1000 | 0x4000],
  relatime: [true, 0x200000], norelatime: [false, 0x200000],
  strictatime: [true, 0x1000000],
};
const MS_RDONLY = 0x1;
const MS_REMOUNT = 0x20;
const MS_BIND = 0x1000;

export function parseMountOptions(options: readonly string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAGS[o];
    if (!f) data.push(o);
    else if (f[0]) flags |= f[1];
    else flags &= ~f[1];
  }
  return { flags, data: data.join(',') };
}

interface MountHandler {
  /** The block filesystem behind this mount, when a VM could take it as a disk. */
  block(m: Mount): BlockSource | undefined;
  mount(m: Mount, target: string): Promise<void>;
}

/** mount(2) with the options split into flags and data; a read-only bind needs a remount to take effect. */
async function syscallMount(m: Mount, target: string, type = m.type): Promise<void> {
  const { flags, data } = parseMountOptions(m.options);
  try {
    await mount(m.source, target, type, flags, data);
  } catch (err: unknown) {
    throw new Error(`mount ${type} ${m.source} on ${target}: ${errnoText(err)}`);
  }
  if (flags & MS_BIND && flags & MS_RDONLY) await mount('', target, '', flags | MS_REMOUNT, '');
}

/** The kernel copies mount data into one page; containerd keeps 512 bytes of it spare, as here. */
const MOUNT_DATA_MAX = 4096 - 512;

/**
 * An overlay's lowerdir list with the longest common parent directory taken out (containerd's
 * compactLowerdirOption): the relative paths are resolved from the mounting process's working
 * directory, that parent. Unchanged (dir undefined) when there is nothing to shorten.
 */
export function compactLowerdirs(options: readonly string[]): { dir: string | undefined; options: string[] } {
  const i = options.findIndex((o) => o.startsWith('lowerdir='));
  const lowers = i < 0 ? [] : (options[i] as string).slice('lowerdir='.length).split(':');
  if (lowers.length < 2 || !lowers.every((d) => path.isAbsolute(d))) return { dir: undefined, options: [...options] };
  let common = (lowers[0] as string).split('/').slice(0, -1);
  for (const d of lowers) {
    const parts = d.split('/');
    let n = 0;
    while (n < common.length && n < parts.length - 1 && common[n] === parts[n]) n++;
    common = common.slice(0, n);
  }
  const dir = common.join('/');
  if (dir === '' || dir === '/') return { dir: undefined, options: [...options] };
  const out = [...options];
  out[i] = `lowerdir=${lowers.map((d) => d.slice(dir.length + 1)).join(':')}`;
  return { dir, options: out };
}

/**
 * overlay: as mount(2) when its data fits in a page; else with the lower dirs relative to their
 * common parent, mounted by mount(8) started in that directory (a working directory of its own,
 * where the daemon's is shared by every container it serves), as containerd's runc shim does.
 */
async function overlayMount(m: Mount, target: string): Promise<void> {
  const { data } = parseMountOptions(m.options);
  if (Buffer.byteLength(data) < MOUNT_DATA_MAX) return syscallMount(m, target);
  const c = compactLowerdirs(m.options);
  const size = Buffer.byteLength(parseMountOptions(c.options).data);
  const layers = m.options.find((o) => o.startsWith('lowerdir='))?.split(':').length ?? 0;
  if (!c.dir || size >= MOUNT_DATA_MAX) {
    throw invalidArgument(`mount overlay on ${target}: its options are ${size} bytes for ${layers} lower dirs${c.dir ? ` even relative to ${c.dir}` : ''}, more than the kernel's one-page limit (${MOUNT_DATA_MAX} usable)`);
  }
  await runChecked(`mount overlay (${layers} lower dirs, relative to ${c.dir}) on ${target}`, 'mount',
    ['-t', 'overlay', '-o', c.options.join(','), '--', m.source || 'overlay', target], { cwd: c.dir, timeoutMs: 30_000 });
}

function errnoText(err: unknown): string {
  if (!(err instanceof Errno)) return err instanceof Error ? err.message : String(err);
  return `${err.code}${err.errno === ENOENT ? ' (the source, a lower/upper/work dir or the target does not exist)' : ''}`;
}

const plain: MountHandler = { block: () => undefined, mount: (m, t) => syscallMount(m, t) };
const bind: MountHandler = { block: () => undefined, mount: (m, t) => syscallMount(m, t, 'none') };

/** ext4/xfs/erofs/...: on a device node, or on an image file when the options say `loop`. */
const blockFs: MountHandler = {
  block(m) {
    let st: fs.Stats;
    try {
      // Synchronous: the source is a /dev node or the blockfile snapshotter's file in containerd's root, on the node's own disk.
      st = fs.statSync(m.source);
    } catch {
      return undefined;
    }
    const readonly = m.options.includes('ro');
    if (st.isBlockDevice()) return { path: m.source, kind: 'device', fstype: m.type, readonly };
    if (st.isFile() && m.options.includes('loop')) return { path: m.source, kind: 'file', fstype: m.type, readonly };
    return undefined;
  },
  async mount(m, target) {
    if (!m.options.includes('loop')) return syscallMount(m, target);
    // A loop device needs attaching first; mount(8) does it with autoclear, so the unmount frees it.
    await runChecked(`mount ${m.source} on ${target}`, 'mount', ['-t', m.type, '-o', m.options.join(','), '--', m.source, target], { timeoutMs: 30_000 });
  },
};

const HANDLERS: Record<string, MountHandler> = {
  overlay: { block: () => undefined, mount: overlayMount }, tmpfs: plain,
  bind, rbind: bind,
  ext2: blockFs, ext3: blockFs, ext4: blockFs, xfs: blockFs, btrfs: blockFs, erofs: blockFs, squashfs: blockFs,
};
const handlerFor = (m: Mount): MountHandler => HANDLERS[m.type] ?? plain;

/** The container's root as one block filesystem a VM can boot from, or undefined when it must be mounted. */
export function blockRootfs(mounts: readonly Mount[]): BlockSource | undefined {
  if (mounts.length !== 1) return undefined;
  const m = mounts[0] as Mount;
  // A device mounted at a directory inside the root (containerd 2.x target) is not the root itself.
  if (m.target && m.target !== '/' && m.target !== '.') return undefined;
  return handlerFor(m).block(m);
}

/** Mounts each entry at `root` (or at its 2.x target inside root), in order. */
export async function mountAll(mounts: readonly Mount[], root: string): Promise<void> {
  fs.mkdirSync(root, { recursive: true });
  for (const m of mounts) {
    let target = root;
    if (m.target && m.target !== '/') {
      target = await resolveInRoot(root, m.target, 'mount target');
      if (!(await bounded(`stat ${target}`, fs.promises.stat(target))).isDirectory()) throw invalidArgument(`mount target ${m.target} is not a directory`);
    }
    await handlerFor(m).mount(m, target);
  }
}

/** Unmounts everything stacked on target; idempotent (a missing or unmounted path is fine). */
export async function unmountAll(target: string): Promise<void> {
  for (let i = 0; i < 64; i++) {
    const e = await umount(target);
    if (e === 0) continue;
    if (e === EINVAL || e === ENOENT) return;
    if (e === EBUSY && (await umount(target, MNT_DETACH)) === 0) continue;
    return;
  }
}

/** One line of /proc/self/mountinfo, octal escapes decoded. */
export interface MountInfo { root: string; mountPoint: string; options: string; fstype: string; source: string }

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const [fstype, source] = post.split(' ');
    if (f.length < 6 || !fstype || !source) continue;
    out.push({ root: unescape(f[3] as string), mountPoint: unescape(f[4] as string), options: f[5] as string, fstype, source: unescape(source) });
  }
  return out;
}

/**
 * A mount table (this process's by default), read off the event loop and bounded: the kernel takes
 * the namespace's mount lock to list it, which a mount or umount stuck in a filesystem can hold.
 */
export async function readMountInfo(file = '/proc/self/mountinfo'): Promise<MountInfo[]> {
  return parseMountInfo(await bounded(`read ${file}`, fs.promises.readFile(file, 'utf8')));
}

/**
 * Unmounts everything stacked on `dir` (unmountAll), then looks for what is still mounted at or
 * below it: undefined when nothing is, else what is left or why it could not be done (a call past
 * its bound included), for a release that reports every step.
 */
export async function unmountLeftover(dir: string): Promise<string | undefined> {
  try {
    await unmountAll(dir);
    return (await hasMountsUnder(dir)) ? `${dir} is still mounted` : undefined;
  } catch (err: unknown) {
    return messageOf(err);
  }
}

/** True when some mount sits at or below `dir`. */
export async function hasMountsUnder(dir: string): Promise<boolean> {
  const d = path.resolve(dir);
  return (await readMountInfo()).some((m) => m.mountPoint === d || m.mountPoint.startsWith(`${d}/`));
}
