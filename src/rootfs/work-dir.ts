// Where a container's image-sized files go. The bundle is under containerd's state dir, which is RAM
// (a tmpfs /run) on real hosts; containerd also gives every task a work directory on disk
// (<root>/io.containerd.runtime.v2.task/<namespace>/<id>, 1.6 through 2.x), linked from the bundle
// as `work` and removed by containerd with the bundle. Copies of an initrd or of boot artifacts and a
// VM state to restore live there. A bundle without that link (made by hand) keeps them in itself.
import fs from 'node:fs';
import path from 'node:path';

/** The directory on disk for the container whose bundle this is (the bundle itself when it has no `work` link). */
export function workDir(bundle: string): string {
  const link = path.join(bundle, 'work');
  try {
    if (fs.lstatSync(link).isSymbolicLink() && fs.statSync(link).isDirectory()) return fs.realpathSync(link);
  } catch {
    // no link, or a dangling one
  }
  return bundle;
}
