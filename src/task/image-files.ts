// The image's files as Create's decide and prepare steps read them: urunc.json (capped, resolved
// inside the root, off the event loop), read-only looks at a rootfs, the spec's root path.
import path from 'node:path';
import { Code, ShimError } from '../errors.js';
import { decodeUruncJson } from '../monitors/unikernel-keys.js';
import type { OciSpec } from '../monitors/launcher.js';
import { blockRootfs, type Mount } from '../rootfs/mounts.js';
import { resolveInRoot } from '../rootfs/resolve-in-root.js';
import { MiB, readCapped } from '../sys/read-capped.js';
import type { SetupInput } from './setup-types.js';

/** urunc.json is small (urunc caps each value at 4096 bytes); anything bigger is refused unread. */
const URUNC_JSON_MAX = MiB;

/** The image's /urunc.json (resolved inside the root), or {} when it has none; read capped, off the event loop. */
export async function readUruncJson(root: string): Promise<Record<string, string>> {
  let p: string;
  try {
    p = await resolveInRoot(root, '/urunc.json', 'urunc.json');
  } catch (err: unknown) {
    if (err instanceof ShimError && err.code === Code.NotFound) return {};
    throw err;
  }
  return decodeUruncJson(await readCapped(p, URUNC_JSON_MAX, "the image's urunc.json"));
}

/** A rootfs mount made read-only for a look at the image's files. */
export function readOnly(m: Mount): Mount {
  const opts = m.options.filter((x) => x !== 'rw');
  // ext4 would replay its journal even on a read-only mount; noload keeps the device untouched.
  if (m.type === 'ext4' || m.type === 'ext3') opts.push('noload');
  return { ...m, options: [...opts, 'ro'] };
}

/** knative's queue-proxy runs through runc beside a unikernel user-container: it is pointed at the guest. */
export function isQueueProxy(spec: OciSpec): boolean {
  return spec.annotations?.['io.kubernetes.cri.container-name'] === 'queue-proxy';
}

/** The container's root as the spec names it (relative paths are relative to the bundle). */
export function specRootfs(bundle: string, spec: OciSpec): string {
  const root = (spec.root as { path?: string } | undefined)?.path ?? 'rootfs';
  return path.resolve(bundle, root);
}

/**
 * The image's urunc.json from the root the container runs on: the one this shim mounted, or, when
 * Create brought no rootfs mounts (Docker mounts the root itself; `ctr run --rootfs`), the spec's
 * root path as it is (urunc's GetUnikernelConfig reads spec.Root.Path).
 */
export async function uruncJsonOf(o: Pick<SetupInput, 'mounts' | 'rootfs'>, mounted: string | undefined): Promise<Record<string, string>> {
  if (mounted) return blockRootfs(o.mounts) ? {} : readUruncJson(mounted);
  return o.mounts.length === 0 ? readUruncJson(o.rootfs) : {};
}

