// Undoes everything a unikernel container's rootfs set-up recorded in its state file: virtiofsd, the
// snapshot view and its lease, lent volumes, host mounts, owned directories (the guest's network has
// its own record and release: src/monitors/network.ts; src/monitors/release.ts runs both). Works from the bundle alone (the
// daemon at Delete, Shutdown and rollback; `delete` after a crash, even when containerd's container
// record is gone). Idempotent: the state file is removed only once every step succeeded, so a failed
// step is retried by the next caller.
import fs from 'node:fs';
import { messageOf } from '../errors.js';
import { parseMountOptions, readMountInfo, unmountLeftover } from './mounts.js';
import { mount } from '../sys/libc.js';
import { bounded } from '../sys/off-loop.js';
import { readState, statePath, writeAtomic } from './state.js';
import { releaseView, type SnapshotApi } from './view.js';

/** The start time (field 22 of /proc/PID/stat) that identifies one process across pid reuse. */
export function processStartTime(pid: number): string | undefined {
  try {
    // Synchronous: /proc/<pid>/stat is made from the task's own fields, without the mm or any filesystem lock.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Mounts a lent volume back, unless something is mounted there already (idempotent). */
async function remountVolume(v: { device: string; fstype: string; hostPath: string; hostOptions: string }): Promise<void> {
  if (!(await bounded(`stat ${v.hostPath}`, fs.promises.access(v.hostPath).then(() => true, () => false)))) return;
  if ((await readMountInfo()).some((m) => m.mountPoint === v.hostPath)) return;
  const { flags } = parseMountOptions(v.hostOptions.split(','));
  await mount(v.device, v.hostPath, v.fstype, flags, '');
}

export async function releaseRootfs(bundle: string, apiFor: (address: string) => SnapshotApi | undefined): Promise<void> {
  const st = readState(bundle);
  if (!st) return;
  const errors: string[] = [];
  const vf = st.virtiofsd;
  if (vf && processStartTime(vf.pid) === vf.startTime) {
    try {
      process.kill(vf.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  if (st.view) {
    try {
      await releaseView(apiFor(st.address), st.namespace, st.view);
      delete st.view;
    } catch (err: unknown) {
      errors.push(messageOf(err));
    }
  }
  // Volumes lent to the VM as disks go back where the host had them (the VM has exited).
  for (const v of [...(st.lentVolumes ?? [])]) {
    try {
      await remountVolume(v);
      st.lentVolumes = st.lentVolumes?.filter((x) => x !== v);
    } catch (err: unknown) {
      errors.push(`volume ${v.device} at ${v.hostPath}: ${messageOf(err)}`);
    }
  }
  for (const m of [...st.mounts].reverse()) {
    const left = await unmountLeftover(m);
    if (left) errors.push(left);
  }
  if (errors.length === 0) {
    for (const d of st.dirs) fs.rmSync(d, { recursive: true, force: true });
    fs.rmSync(statePath(bundle), { force: true });
    return;
  }
  writeAtomic(statePath(bundle), JSON.stringify(st));
  throw new Error(`rootfs cleanup of ${st.id}: ${errors.join('; ')}`);
}
