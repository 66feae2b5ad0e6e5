// A bundle's config.json as text, for every layer that reads it (the task's spec validation, the
// rootfs plan persisted in its annotations, start's grouping): a regular file of at most 16 MiB.
// Synchronous: containerd writes it into the bundle, in its own state dir on the node (src/sys/off-loop.ts).
import path from 'node:path';
import { MiB, readCappedSync } from './read-capped.js';

/** containerd's default gRPC message limit, which bounds any spec it writes. */
const SPEC_MAX = 16 * MiB;

export function readSpecText(bundle: string): string {
  return readCappedSync(path.join(bundle, 'config.json'), SPEC_MAX, `${path.join(bundle, 'config.json')}`);
}
