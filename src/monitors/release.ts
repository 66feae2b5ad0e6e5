// Everything a unikernel container holds, released from its bundle alone: the guest's network
// (made at Start, src/monitors/network.ts), then what the rootfs set-up made (src/rootfs/release.ts:
// virtiofsd, the view and its lease, lent volumes, mounts, directories). Run by the daemon at Delete,
// Shutdown and rollback, and by `delete` after a crash. Idempotent; each part keeps its record when a
// step fails, so the next caller retries it.
import { messageOf } from '../errors.js';
import { releaseRootfs } from '../rootfs/release.js';
import type { SnapshotApi } from '../rootfs/view.js';
import { releaseNetworkOf } from './network.js';

export async function releaseUnikernel(bundle: string, apiFor: (address: string) => SnapshotApi | undefined): Promise<void> {
  const errors: string[] = [];
  await releaseNetworkOf(bundle).catch((err: unknown) => errors.push(`network: ${messageOf(err)}`));
  await releaseRootfs(bundle, apiFor).catch((err: unknown) => errors.push(messageOf(err)));
  if (errors.length > 0) throw new Error(errors.join('; '));
}
