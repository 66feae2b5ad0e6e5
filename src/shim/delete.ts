// `delete`: short-lived cleanup containerd runs after a task is gone or its shim died. Works from
// the bundle alone: force-deletes the runc container (killing what is left), unmounts the rootfs,
// and prints a DeleteResponse. Idempotent: a second run finds nothing and still succeeds.
import fs from 'node:fs';
import path from 'node:path';
import { DeleteResponse } from '../gen/containerd/task/v2/shim.js';
import { Runc } from '../task/runc.js';
import { unmountAll } from '../rootfs/mounts.js';
import { removeMonitorBundle } from '../monitors/launcher.js';
import { releaseUnikernel } from '../monitors/release.js';
import { releaseNetworkOf } from '../monitors/network.js';
import { snapshotApiFor } from './containerd-snapshots.js';
import { messageOf } from '../errors.js';
import type { ShimFlags } from './flags.js';
import type { ActionIo } from './io.js';
import { addressFileSocket, canConnect, socketPath } from './address.js';
import { toTimestamp } from './timestamp.js';
import { SANDBOX_STATE, killIfSame, readSandboxState } from '../task/sandbox-holder.js';

/** A `delete` slower than this reports where its time went. */
const SLOW_DELETE_MS = 2000;

export async function runDelete(f: ShimFlags, io: ActionIo): Promise<void> {
  const bundle = f.bundle || io.cwd;
  if (!f.id || !f.namespace) throw new Error('delete: -id and -namespace are required');
  const runc = new Runc(Runc.rootFor(bundle, f.namespace));
  // containerd gives `delete` 5 s (io.containerd.timeout.shim.cleanup) and kills it after: a slow
  // step is reported on stderr, which containerd logs as "cleanup warnings".
  const t0 = Date.now();
  const steps: string[] = [];
  const step = (name: string, since: number): number => {
    const now = Date.now();
    steps.push(`${name} ${now - since} ms`);
    return now;
  };
  let pid = 0;
  // The guest's network first: it needs nothing else gone (a tap outlives its qemu's fd), and so it is
  // released even if a slow step below uses up containerd's budget.
  await releaseNetworkOf(bundle).catch((err: unknown) => io.stderr(`network cleanup: ${messageOf(err)}\n`));
  let t = step('network', t0);
  try {
    pid = Number.parseInt(fs.readFileSync(path.join(bundle, 'init.pid'), 'utf8'), 10) || 0;
  } catch {
    // never created
  }
  // After a normal Delete runc holds no state for the id; only then is there nothing to kill.
  if (fs.existsSync(path.join(runc.root, f.id))) {
    await runc.delete(f.id, bundle, true).catch((err: unknown) => {
      const msg = messageOf(err);
      if (!/not ?found|does not exist/i.test(msg)) io.stderr(`runc delete: ${msg}\n`);
    });
  }
  t = step('runc', t);
  try {
    await removeMonitorBundle(bundle);
  } catch (err: unknown) {
    io.stderr(`remove monitor bundle: ${messageOf(err)}\n`);
  }
  // The guest's network, the view, its lease and the task's mounts, from the bundle's state files
  // alone (the container record may be gone); containerd's address is the flag's, else the one recorded at Create.
  await releaseUnikernel(bundle, (recorded) => (f.address || recorded ? snapshotApiFor(f.address || recorded) : undefined))
    .catch((err: unknown) => io.stderr(`rootfs cleanup: ${messageOf(err)}\n`));
  t = step('rootfs', t);
  await unmountAll(path.join(bundle, 'rootfs')).catch((err: unknown) => io.stderr(`rootfs unmount: ${messageOf(err)}\n`));
  // A sandbox this shim owned (`sandboxer = "shim"`): its holder, if the daemon died before stopping it.
  const sandbox = readSandboxState(bundle);
  if (sandbox?.holder) {
    killIfSame(sandbox.holder);
    pid = sandbox.holder.pid;
  }
  fs.rmSync(path.join(bundle, SANDBOX_STATE), { force: true });
  await removeDeadSocket(bundle);
  step('rest', t);
  if (Date.now() - t0 >= SLOW_DELETE_MS) io.stderr(`delete took ${Date.now() - t0} ms (${steps.join(', ')})\n`);
  const out = DeleteResponse.encode({ pid, exitStatus: 128 + 9, exitedAt: toTimestamp(new Date()) }).finish();
  io.stdout(out);
}

/** The group socket is removed only when no daemon serves it any more (others of the pod may). */
async function removeDeadSocket(bundle: string): Promise<void> {
  let address: string | undefined;
  try {
    address = addressFileSocket(fs.readFileSync(path.join(bundle, 'address'), 'utf8'));
  } catch {
    return;
  }
  if (!address) return;
  if (!(await canConnect(address, 500))) fs.rmSync(socketPath(address), { force: true });
}
