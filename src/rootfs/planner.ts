// The rootfs planner: how the guest gets its files, chosen once per container with urunc's
// priority (ChooseRootfs / rootfsSelector): an initrd; a block image from the image (blkMntPoint /)
// when the guest boots from a disk (tryExplicitBlock: SupportsBlock); with mountRootfs=true the
// container's own rootfs, as a block device on a block snapshotter when the guest boots from a disk
// and reads its filesystem (tryContainerBlockRootfs: SupportsBlock and SupportsFS), else as a shared
// filesystem (virtio-fs when the guest, the monitor and virtiofsd allow it, else 9p), else an
// error; none. Ours: rootfsType forces a choice.
// Pure: the caller describes the rootfs (mounts.ts) and persists the result (state.ts).
import { invalidArgument } from '../errors.js';
import type { BlockSource } from './mounts.js';

export type RootfsType = 'initrd' | 'block' | '9pfs' | 'virtiofs' | 'none';

/** The persisted plan: config.json annotation com.urunc.internal.rootfs.params. */
export interface RootfsParams {
  type: RootfsType;
  /** For type block: the image's block file (a path inside the image) or the container's own rootfs. */
  blockSource?: 'image' | 'container';
  /** The container rootfs's block device or file on the host (blockSource container). */
  blockPath?: string;
  blockKind?: BlockSource['kind'];
  fstype?: string;
  /** Where the container rootfs is on the host while the task lives: its mount, or the bundle's own directory when containerd gave no mounts ("" when it never is). */
  mountedPath: string;
  /** Where kernel, initrd and urunc.json are read from: a snapshot view, the rootfs, or copies in the bundle. */
  artifacts: 'view' | 'rootfs' | 'copy';
  artifactRoot: string;
  /** Volumes the VM gets as disks (block root only): urunc's vol<i>, the host device, the guest's mount point. */
  blockVolumes?: Array<{ id: string; device: string; mountPoint: string }>;
}

export interface PlanInput {
  keys: {
    initrd?: string | undefined;
    block?: string | undefined;
    blkMntPoint?: string | undefined;
    mountRootfs?: boolean | undefined;
    rootfsType?: 'initrd' | 'block' | '9pfs' | 'virtiofs' | 'none' | undefined;
  };
  /** The container rootfs when it is a single block filesystem. */
  containerBlock: BlockSource | undefined;
  /** Whether guest type and monitor can take a shared-filesystem root. */
  sharedFs: { ninep: boolean; virtiofs: boolean };
  /** The guest type's disk support (urunc's SupportsBlock, and SupportsFS for a disk's filesystem). */
  guestBlock: { root: boolean; fs: readonly string[] };
}

export type Choice = Pick<RootfsParams, 'type' | 'blockSource' | 'blockPath' | 'blockKind' | 'fstype'>;

export function chooseRootfs(inp: PlanInput): Choice {
  const k = inp.keys;
  const gb = inp.guestBlock;
  const imageBlock = k.block !== undefined && (k.blkMntPoint ?? '/') === '/' && gb.root;
  const container = inp.containerBlock;
  // tryContainerBlockRootfs: the container's block rootfs as the guest's root, or why it cannot be.
  const containerBlock = (): Choice | string => {
    if (!container) return 'the container rootfs is not a block device (com.urunc.unikernel.mountRootfs needs a block snapshotter such as blockfile or devmapper)';
    if (!gb.root) return 'this guest type does not boot from a disk';
    if (!gb.fs.includes(container.fstype)) return `this guest type reads ${gb.fs.length > 0 ? gb.fs.join(', ') : 'no filesystem'} from a disk, and the container rootfs is ${container.fstype}`;
    return { type: 'block', blockSource: 'container', blockPath: container.path, blockKind: container.kind, fstype: container.fstype };
  };
  const fromContainer = (): Choice => {
    const c = containerBlock();
    if (typeof c === 'string') throw invalidArgument(c);
    return c;
  };
  const shared = (): Choice | undefined => (inp.sharedFs.virtiofs ? { type: 'virtiofs' } : inp.sharedFs.ninep ? { type: '9pfs' } : undefined);
  switch (k.rootfsType) {
    case 'initrd':
      if (!k.initrd) throw invalidArgument('rootfsType initrd needs com.urunc.unikernel.initrd');
      return { type: 'initrd' };
    case 'block':
      if (k.block !== undefined) {
        if (!gb.root) throw invalidArgument('rootfsType block: this guest type does not boot from a disk');
        return { type: 'block', blockSource: 'image' };
      }
      return fromContainer();
    case '9pfs':
      if (!inp.sharedFs.ninep) throw invalidArgument('rootfsType 9pfs: this guest type or monitor has no 9p root');
      return { type: '9pfs' };
    case 'virtiofs':
      if (!inp.sharedFs.virtiofs) throw invalidArgument('rootfsType virtiofs: this guest type or monitor has no virtio-fs root, or the configured virtiofsd is missing');
      return { type: 'virtiofs' };
    case 'none':
      return { type: 'none' };
    case undefined:
      break;
  }
  if (k.initrd) return { type: 'initrd' };
  if (imageBlock) return { type: 'block', blockSource: 'image' };
  if (!k.mountRootfs) return { type: 'none' };
  // tryContainerBlockRootfs, then the shared filesystems (tryVirtiofs, try9pfs), each falling through.
  const block = containerBlock();
  if (typeof block !== 'string') return block;
  const s = shared();
  if (!s) {
    throw invalidArgument(`com.urunc.unikernel.mountRootfs: the container rootfs can reach this guest neither as a disk (${block}) nor as a shared filesystem (9p: linux or unikraft on qemu; virtio-fs: linux on qemu or cloud-hypervisor with virtiofsd)`);
  }
  return s;
}

/** Whether a plan needs the container rootfs mounted on the host while the task lives. */
export function needsHostRootfs(c: Choice): boolean {
  return !(c.type === 'block' && c.blockSource === 'container');
}
