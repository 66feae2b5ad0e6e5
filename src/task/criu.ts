// Checkpoint and restore of ordinary containers: criu through runc, the way containerd's runc shim
// drives it (pkg/process: Init.checkpoint and createdCheckpointState). The images go into the
// directory containerd gives (or the caller's image_path); a restore runs `runc restore --detach`
// at Start, with the new process's stdio handed to criu in place of the dumped pipes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Code, ShimError, failedPrecondition, invalidArgument, messageOf } from '../errors.js';
import type { CheckpointOpts } from './types.js';
import type { Runc, RuncStdio } from './runc.js';

type CriuRunc = Pick<Runc, 'checkpoint' | 'restore'>;

/** criu's inventory, the one image every dump writes (images/inventory.proto). */
const INVENTORY = 'inventory.img';

/**
 * Whether dir holds criu images (an ordinary container's checkpoint) rather than a VM's state.
 * Synchronous: at restore, dir is the copy containerd extracted into its own root, on the node.
 */
export function isCriuCheckpoint(dir: string): boolean {
  return fs.statSync(path.join(dir, INVENTORY), { throwIfNoEntry: false })?.isFile() === true;
}

/**
 * Dumps the container into `imagePath`. Without opts.workPath criu works in a directory of the
 * bundle, removed after; on failure its dump.log is kept as <bundle>/criu-dump.log and named.
 */
export async function criuCheckpoint(runc: CriuRunc, id: string, bundle: string, imagePath: string, opts: CheckpointOpts): Promise<void> {
  const work = opts.workPath || fs.mkdtempSync(path.join(bundle, 'criu-work-'));
  try {
    await runc.checkpoint(id, bundle, { ...opts, imagePath, workPath: work });
  } catch (err: unknown) {
    const kept = path.join(bundle, 'criu-dump.log');
    const log = copyLog(path.join(work, 'dump.log'), kept);
    throw criuError('checkpoint', err, log);
  } finally {
    if (!opts.workPath) fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Restores the container from `imagePath` (a criu checkpoint); returns the restored init's pid. */
export async function criuRestore(
  runc: CriuRunc, id: string, bundle: string, imagePath: string, io: { stdio: RuncStdio; consoleSocket?: string },
): Promise<number> {
  if (!isCriuCheckpoint(imagePath)) throw invalidArgument(`restoring a checkpoint: ${imagePath} holds no criu images (${INVENTORY})`);
  const work = path.join(bundle, 'criu-work');
  fs.mkdirSync(work, { recursive: true });
  try {
    return await runc.restore(id, bundle, { imagePath, workPath: work, pidFile: path.join(bundle, 'init.pid'), consoleSocket: io.consoleSocket, stdio: io.stdio });
  } catch (err: unknown) {
    throw criuError('restore', err, fs.existsSync(path.join(work, 'restore.log')) ? path.join(work, 'restore.log') : undefined);
  }
}

function copyLog(from: string, to: string): string | undefined {
  try {
    fs.copyFileSync(from, to);
    return to;
  } catch {
    return undefined;
  }
}

/** runc's error, with criu's log named; a node without criu is told so. */
function criuError(what: 'checkpoint' | 'restore', err: unknown, log: string | undefined): ShimError {
  const msg = messageOf(err);
  if (/executable file not found|criu.*no such file|exec: "criu"/i.test(msg)) {
    return failedPrecondition(`${what} of an ordinary container needs criu on the node (runc runs it from containerd's PATH): ${msg}`);
  }
  const code = err instanceof ShimError ? err.code : Code.Unknown;
  return new ShimError(code, `${what} of an ordinary container (criu through runc): ${msg}${log ? ` (criu log: ${log})` : ''}`, { cause: err });
}

/**
 * Removes the directory containerd extracted a checkpoint image into for this Create, once its
 * content is consumed: containerd never removes it (containerd#10166, still so in 2.x), and each
 * restore leaves a copy of the whole checkpoint in its temporary directory. Only that directory
 * (`ctrd-checkpoint<digits>` in containerd's XDG_RUNTIME_DIR or temporary directory, which this
 * process shares) is removed: never a caller's image path or CRI's checkpoint directory.
 */
export async function removeExtractedCheckpoint(dir: string | undefined): Promise<void> {
  if (!dir) return;
  const parent = path.resolve(process.env.XDG_RUNTIME_DIR || os.tmpdir());
  if (path.dirname(dir) !== parent || !/^ctrd-checkpoint\d+$/.test(path.basename(dir))) return;
  await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
