// The mounts containerd hands to Create (a snapshot's rootfs, or a view of the image), through one
// table of handlers keyed by mount type: how to mount it on the host, and whether it is a block
// filesystem (a device, or an image file with `loop`) that a VM can take as a disk without the host
// ever mounting it. Mounts are unmounted by path alone (Delete, rollback, and the `delete` command).
import fs from 'node:fs';
import path from 'node:path';
import { invalidArgument } from '../errors.js';
import { runChecked } from '../sys/spawn.js';
import { EBUSY, EINVAL, ENOENT, MNT_DETACH, mount, umount } from '../sys/libc.js';
import { resolveInRoot } from './resolve-in-root.js';

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
  mount(m.source, target, type, flags, data);
  if (flags & MS_BIND && flags & MS_RDONLY) mount('', target, '', flags | MS_REMOUNT, '');
}

const plain: MountHandler = { block: () => undefined, mount: (m, t) => syscallMount(m, t) };
const bind: MountHandler = { block: () => undefined, mount: (m, t) => syscallMount(m, t, 'none') };

/** ext4/xfs/erofs/...: on a device node, or on an image file when the options say `loop`. */
const blockFs: MountHandler = {
  block(m) {
    let st: fs.Stats;
    try {
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
  overlay: plain, tmpfs: plain,
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
      target = resolveInRoot(root, m.target, 'mount target');
      if (!fs.statSync(target).isDirectory()) throw invalidArgument(`mount target ${m.target} is not a directory`);
    }
    await handlerFor(m).mount(m, target);
  }
}

/** Unmounts everything stacked on target; idempotent (a missing or unmounted path is fine). */
export function unmountAll(target: string): void {
  for (let i = 0; i < 64; i++) {
    const e = umount(target);
    if (e === 0) continue;
    if (e === EINVAL || e === ENOENT) return;
    if (e === EBUSY && umount(target, MNT_DETACH) === 0) continue;
    return;
  }
}

/** One line of /proc/self/mountinfo, octal escapes decoded. */
export interface MountInfo { root: string; mountPoint: string; options: string; fstype: string; source: string }

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export function parseMountInfo(text: string = fs.readFileSync('/proc/self/mountinfo', 'utf8')): MountInfo[] {
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

/** True when some mount sits at or below `dir`. */
export function hasMountsUnder(dir: string): boolean {
  const d = path.resolve(dir);
  return parseMountInfo().some((m) => m.mountPoint === d || m.mountPoint.startsWith(`${d}/`));
}
