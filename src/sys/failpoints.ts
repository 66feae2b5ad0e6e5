// Failure injection for the tests of rollback and cleanup. A failpoint is a named step that throws
// when named in the file $URUNC_FAILPOINTS_FILE (comma or newline separated), re-read at every
// check, so a test can arm and disarm steps of a running daemon. Without the variable every
// failpoint is a no-op costing one env lookup.
import fs from 'node:fs';

export const FAILPOINTS = ['rootfs.lease', 'rootfs.view', 'rootfs.mount', 'rootfs.persist', 'task.runc-create', 'task.uncaught', 'io.slow-output', 'task.block-loop'] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

export function failpoint(name: Failpoint): void {
  if (armed(name)) throw new Error(`failpoint ${name}: injected failure`);
}

export function armed(name: Failpoint): boolean {
  const file = process.env.URUNC_FAILPOINTS_FILE;
  if (!file) return false;
  try {
    return fs.readFileSync(file, 'utf8').split(/[\s,]+/).includes(name);
  } catch {
    return false;
  }
}

/** task.block-loop: blocks the event loop for `ms` in one call (the tests of the event-loop watchdog and of containment). */
export function blockLoopIfArmed(ms: number): void {
  if (armed('task.block-loop')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
