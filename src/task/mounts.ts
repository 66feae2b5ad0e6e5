// Mounts containerd hands to Create (the snapshot's rootfs), mounted at <bundle>/rootfs and
// unmounted again by Delete and by the `delete` command (which finds them by path alone).
import fs from 'node:fs';
import { EBUSY, EINVAL, ENOENT, MNT_DETACH, mount, umount } from '../sys/libc.js';
import type { Mount } from './types.js';

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

export function mountAll(mounts: readonly Mount[], target: string): void {
  fs.mkdirSync(target, { recursive: true });
  for (const m of mounts) {
    const { flags, data } = parseMountOptions(m.options);
    const type = m.type === 'bind' ? 'none' : m.type;
    const BIND = 0x1000;
    const RDONLY = 0x1;
    mount(m.source, target, type, flags, data);
    // A read-only bind needs a remount to take effect.
    if (flags & BIND && flags & RDONLY) mount('', target, '', flags | 0x20, '');
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
