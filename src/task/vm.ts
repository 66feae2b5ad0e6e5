// What the task service needs for unikernel containers only, loaded with the first of them or the
// first checkpoint (src/sys/lazy.ts): a daemon serving ordinary containers never loads the
// monitors, QMP, the rootfs release of views and networks, or the VM checkpoint code.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { failedPrecondition, invalidArgument } from '../errors.js';
import { checkRestorable, qemuVersion, vmShape, writeManifest, type CheckpointManifest } from '../monitors/checkpoint.js';
import { STATE_FILE, loadVmState, saveVmState } from '../monitors/vm-state.js';
import type { Watchdog } from '../monitors/watchdog.js';
import { monitorFilesDir } from '../monitors/launcher.js';
import type { UnikernelTask } from './setup-types.js';

export { Watchdog } from '../monitors/watchdog.js';
export { removeMonitorBundle } from '../monitors/launcher.js';
export { releaseUnikernel } from '../monitors/release.js';
export { readManifest } from '../monitors/checkpoint.js';
export { snapshotsFor, startVirtiofsd } from './prepare.js';
export { launchAtStart } from './launch.js';

/**
 * Saves a qemu VM's state through QMP into `target`, with urunc-checkpoint.json (what a restore
 * checks). A running VM is stopped for the save; on failure it is continued again.
 */
export async function saveVm(wd: Watchdog | undefined, pid: number, uk: UnikernelTask, target: string, running: boolean, log: Logger): Promise<void> {
  if (!wd || !(await wd.whenConnected(3_000))) throw failedPrecondition('checkpoint: the VM\'s QMP connection is not up');
  if (running) await wd.command('stop');
  const t0 = Date.now();
  try {
    const bytes = await saveVmState(wd, pid, uk.plan.scratchInMonitor, path.join(target, STATE_FILE));
    const v = (await wd.command('query-version')) as { qemu?: { major: number; minor: number; micro: number } } | undefined;
    writeManifest(target, {
      version: 1, hypervisor: 'qemu', hypervisorVersion: v?.qemu ? `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}` : 'unknown',
      unikernelType: uk.config.unikernelType, shape: vmShape(uk.plan.argv), stateBytes: bytes, savedAt: new Date().toISOString(),
    });
    log.info({ bytes, ms: Date.now() - t0 }, 'VM state saved');
  } catch (err: unknown) {
    if (running) await wd.command('cont').catch(() => undefined);
    throw err;
  }
}

/** Streams the staged state into the qemu that Start just ran (waiting on -incoming) and runs the VM. */
export async function loadVm(wd: Watchdog | undefined, pid: number, uk: UnikernelTask, file: string, log: Logger): Promise<void> {
  if (!wd || !(await wd.whenConnected(10_000))) throw new Error('the VM\'s QMP connection did not come up');
  const t0 = Date.now();
  await loadVmState(wd, pid, uk.plan.scratchInMonitor, file);
  await wd.command('cont');
  log.info({ ms: Date.now() - t0 }, 'VM state restored');
}

/**
 * Checks a checkpoint against the VM about to start and copies its state into the bundle (off the
 * event loop; the checkpoint directory is containerd's and may go), bounded by the guest's memory.
 */
export async function stageRestore(dir: string, m: CheckpointManifest, uk: UnikernelTask, bundle: string): Promise<string> {
  // The command line's shape is checked at Start, once the network is known (src/task/launch.ts).
  checkRestorable(m, { hypervisor: uk.config.hypervisor, hypervisorVersion: uk.config.hypervisor === 'qemu' ? await qemuVersion(uk.plan.argv[0] as string) : '' });
  uk.restoreShape = m.shape;
  const from = path.join(dir, STATE_FILE);
  const st = await fs.promises.stat(from).catch(() => undefined);
  if (!st?.isFile()) throw invalidArgument(`restoring a checkpoint: ${from} is missing`);
  const memMb = Number(uk.plan.argv[uk.plan.argv.indexOf('-m') + 1]?.replace(/M$/, '')) || 0;
  const cap = (memMb + 64) * 1024 * 1024 * 2;
  if (st.size !== m.stateBytes || st.size > cap) throw invalidArgument(`restoring a checkpoint: ${STATE_FILE} is ${st.size} bytes (recorded ${m.stateBytes}, at most ${cap} for this VM)`);
  // On disk beside the container's other image-sized files, removed with the monitor bundle.
  const to = path.join(monitorFilesDir(bundle), 'restore.state');
  await fs.promises.mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
  await fs.promises.copyFile(from, to);
  return to;
}
