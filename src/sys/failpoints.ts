// Failure injection for the tests of rollback and cleanup. A failpoint is a named step that throws
// when named in the file $URUNC_FAILPOINTS_FILE (comma or newline separated), re-read at every
// check, so a test can arm and disarm steps of a running daemon. Without the variable every
// failpoint is a no-op costing one env lookup.
import fs from 'node:fs';

export const FAILPOINTS = ['rootfs.lease', 'rootfs.view', 'rootfs.mount', 'rootfs.persist', 'task.runc-create'] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

export function failpoint(name: Failpoint): void {
  const file = process.env.URUNC_FAILPOINTS_FILE;
  if (!file) return;
  let armed: string[];
  try {
    armed = fs.readFileSync(file, 'utf8').split(/[\s,]+/);
  } catch {
    return;
  }
  if (armed.includes(name)) throw new Error(`failpoint ${name}: injected failure`);
}
