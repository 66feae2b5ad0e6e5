// The container's volumes as the guest gets them (urunc: only `bind` mounts count; proc, sysfs,
// tmpfs, mqueue and the like are the monitor's business, never the guest's): bound live into a
// shared-filesystem root; for an initrd root, their regular files copied into the initrd; for a
// root on the container's block device, their regular files copied in and the volumes that are a
// whole block filesystem the guest can mount handed to the VM as disks (unmounted from the host
// while the VM has them, mounted back at release).
// Sources come from the runtime (kubelet, containerd), destinations are checked here.
import fs from 'node:fs';
import path from 'node:path';
import { invalidArgument } from '../errors.js';
import type { CpioEntry } from './cpio.js';
import type { MountInfo } from './mounts.js';
import { resolveInRoot } from './resolve-in-root.js';
import { bounded } from '../sys/off-loop.js';

export interface SpecMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface GuestVolume {
  /** The mount's index in the spec (urunc names a volume disk vol<index>). */
  index: number;
  source: string;
  /** Absolute, normalized, inside the guest's root. */
  destination: string;
  readonly: boolean;
}

/** A volume file copied into the guest's root larger than this is an error (an initrd lives in the guest's memory). */
export const MAX_VOLUME_FILE = 16 * 2 ** 20;

/** The spec's bind mounts (type "bind", or bind/rbind in the options), in spec order. */
export function guestVolumes(mounts: readonly SpecMount[] | undefined): GuestVolume[] {
  const out: GuestVolume[] = [];
  for (const [index, m] of (mounts ?? []).entries()) {
    const opts = m.options ?? [];
    if (m.type !== 'bind' && !opts.includes('bind') && !opts.includes('rbind')) continue;
    if (!m.source || !m.destination.startsWith('/')) throw invalidArgument(`mount ${JSON.stringify(m.destination)}: a bind mount needs a source and an absolute destination`);
    const destination = path.posix.normalize(m.destination).replace(/\/$/, '');
    if (destination === '' || m.destination.split('/').includes('..')) throw invalidArgument(`mount ${JSON.stringify(m.destination)}: not a path inside the guest's root`);
    out.push({ index, source: m.source, destination, readonly: opts.includes('ro') });
  }
  return out;
}

/** The volume's source when it is a regular file that may be copied into `into` (directories: undefined). */
async function regularFile(v: Pick<GuestVolume, 'source' | 'destination'>, into: string): Promise<fs.Stats | undefined> {
  // A volume's source can be on a network filesystem: bounded (src/sys/off-loop.ts).
  const st = await bounded(`stat ${v.source}`, fs.promises.stat(v.source));
  if (!st.isFile()) return undefined;
  if (st.size > MAX_VOLUME_FILE) throw invalidArgument(`mount ${v.destination}: ${st.size} bytes is too large to copy into ${into} (at most ${MAX_VOLUME_FILE})`);
  return st;
}

/**
 * The initrd records for the volumes' regular files (urunc's CopyFileMountsToInitrd: directories
 * are skipped), read off the event loop, each at most MAX_VOLUME_FILE bytes.
 */
export async function initrdVolumeFiles(volumes: ReadonlyArray<Pick<GuestVolume, 'source' | 'destination'>>): Promise<CpioEntry[]> {
  const out: CpioEntry[] = [];
  for (const v of volumes) {
    const st = await regularFile(v, 'the initrd');
    if (!st) continue;
    out.push({ name: v.destination, mode: 0o100000 | (st.mode & 0o7777), data: await fs.promises.readFile(v.source) });
  }
  return out;
}

/**
 * Copies the volumes' regular files into a mounted root at their destinations (urunc's
 * copyMountfiles for a block root: a snapshot taken at create time; directories are skipped).
 * Every path component is resolved inside the root, so the image's symlinks cannot redirect a copy
 * out of it; a symlink at the destination itself is replaced by the file.
 */
export async function copyVolumeFiles(root: string, volumes: ReadonlyArray<Pick<GuestVolume, 'source' | 'destination'>>): Promise<number> {
  let copied = 0;
  for (const v of volumes) {
    const st = await regularFile(v, "the guest's root");
    if (!st) continue;
    const parent = await mkdirInRoot(root, path.posix.dirname(v.destination));
    const target = path.join(parent, path.posix.basename(v.destination));
    const cur = await fs.promises.lstat(target).catch(() => undefined);
    if (cur?.isDirectory()) throw invalidArgument(`mount ${v.destination}: a directory in the image`);
    if (cur) await fs.promises.unlink(target);
    await fs.promises.copyFile(v.source, target);
    await fs.promises.chmod(target, st.mode & 0o7777);
    copied++;
  }
  return copied;
}

/** The host path of directory `dir` inside `root`, creating what is missing, never leaving the root. */
async function mkdirInRoot(root: string, dir: string): Promise<string> {
  let at = root;
  let rel = '';
  for (const part of dir.split('/').filter(Boolean)) {
    rel = `${rel}/${part}`;
    try {
      at = await resolveInRoot(root, rel, 'mount destination');
    } catch (err: unknown) {
      if (!(err instanceof Error) || !/does not exist/.test(err.message)) throw err;
      at = path.join(at, part);
      await bounded(`mkdir ${at}`, fs.promises.mkdir(at, { mode: 0o755 }));
    }
    if (!(await bounded(`stat ${at}`, fs.promises.stat(at))).isDirectory()) throw invalidArgument(`mount destination ${dir}: ${rel} is not a directory in the image`);
  }
  return at;
}

/** A volume the VM gets as a disk: its host mount is taken away while the VM runs and restored at release. */
export interface BlockVolume {
  /** urunc's disk id, vol<spec index>: the virtio serial the guest finds it by. */
  id: string;
  device: string;
  fstype: string;
  /** Where the host had it mounted, and with which mount options (restored at release). */
  hostPath: string;
  hostOptions: string;
  /** Where the guest mounts it. */
  mountPoint: string;
}

/**
 * The volumes whose source is the root of a block filesystem of a type the guest mounts (urunc's
 * getBlockVolumes): the topmost mount at the source path must be a /dev node's whole filesystem.
 */
export async function blockVolumes(volumes: readonly GuestVolume[], mountinfo: readonly MountInfo[], fsTypes: readonly string[]): Promise<BlockVolume[]> {
  const out: BlockVolume[] = [];
  for (const v of volumes) {
    let real: string;
    try {
      real = await bounded(`realpath ${v.source}`, fs.promises.realpath(v.source));
    } catch {
      continue;
    }
    const m = [...mountinfo].reverse().find((e) => e.mountPoint === real);
    if (!m || m.root !== '/' || !m.source.startsWith('/dev/') || !fsTypes.includes(m.fstype)) continue;
    out.push({ id: `vol${v.index}`, device: m.source, fstype: m.fstype, hostPath: real, hostOptions: m.options, mountPoint: v.destination });
  }
  return out;
}
