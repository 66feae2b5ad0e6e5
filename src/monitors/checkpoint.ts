// What a unikernel checkpoint holds besides the VM's state (vm-state.ts): urunc-checkpoint.json, the
// facts a restore checks before it starts anything: the hypervisor and its version (qemu loads only
// streams it understands, and a different build may lay devices out differently) and the machine's
// shape (the argv without what is per container), so a restore into another machine is refused with
// the difference instead of failing inside qemu. The file comes back from a checkpoint image, so it
// is read with a size cap and validated.
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { invalidArgument, messageOf } from '../errors.js';
import { readCappedSync } from '../sys/read-capped.js';
import { run } from '../sys/spawn.js';

export const CHECKPOINT_FILE = 'urunc-checkpoint.json';

const Manifest = z.object({
  version: z.literal(1),
  hypervisor: z.string(),
  hypervisorVersion: z.string(),
  unikernelType: z.string(),
  /** vmShape() of the saved VM's argv. */
  shape: z.array(z.string()),
  stateBytes: z.number(),
  savedAt: z.string(),
});
export type CheckpointManifest = z.infer<typeof Manifest>;

/**
 * The argv with what differs between two containers of the same VM taken out: the VM's name, the
 * incoming socket of a restore, the tap (its name) and the NIC's MAC (the new pod's).
 */
export function vmShape(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-name' || a === '-incoming') {
      i++;
      continue;
    }
    out.push(a.replace(/ifname=[^,]*/g, 'ifname=*').replace(/mac=[^,]*/g, 'mac=*'));
  }
  return out;
}

/** "7.2.22" from `<qemu> --version` ("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)"). */
export async function qemuVersion(binary: string): Promise<string> {
  const r = await run(binary, ['--version'], { timeoutMs: 10_000 });
  const v = /version (\d+\.\d+\.\d+)/.exec(r.stdout)?.[1];
  if (r.code !== 0 || !v) throw new Error(`${binary} --version: ${r.stderr.trim() || r.stdout.trim() || `status ${r.code}`}`);
  return v;
}

export function writeManifest(dir: string, m: CheckpointManifest): void {
  fs.writeFileSync(path.join(dir, CHECKPOINT_FILE), JSON.stringify(m, null, 1), { mode: 0o600 });
}

export function readManifest(dir: string): CheckpointManifest {
  const file = path.join(dir, CHECKPOINT_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readCappedSync(file, 1 << 20, file));
  } catch (err: unknown) {
    throw invalidArgument(`restoring a checkpoint: ${file}: ${messageOf(err)} (not a unikernel checkpoint of this runtime?)`);
  }
  const m = Manifest.safeParse(raw);
  if (!m.success) throw invalidArgument(`restoring a checkpoint: invalid ${CHECKPOINT_FILE}: ${m.error.issues[0]?.path.join('.') ?? ''} ${m.error.issues[0]?.message ?? ''}`);
  return m.data;
}

/**
 * Refuses a restore that the VM about to start cannot take, naming the first difference. At Create
 * (no argv yet: the network is found at Start) the hypervisor and its version; at Start, with the
 * command line about to run, its shape too.
 */
export function checkRestorable(m: CheckpointManifest, now: { hypervisor: string; hypervisorVersion: string; argv?: readonly string[] }): void {
  if (m.hypervisor !== now.hypervisor) throw invalidArgument(`restoring a checkpoint: it holds a ${m.hypervisor} VM, this container runs ${now.hypervisor}`);
  if (m.hypervisorVersion !== now.hypervisorVersion) {
    throw invalidArgument(`restoring a checkpoint: it was saved by ${m.hypervisor} ${m.hypervisorVersion}, this node has ${now.hypervisorVersion}`);
  }
  if (now.argv) checkRestoreShape(m.shape, now.argv);
}

export function checkRestoreShape(saved: readonly string[], argv: readonly string[]): void {
  const shape = vmShape(argv);
  const n = Math.max(shape.length, saved.length);
  for (let i = 0; i < n; i++) {
    if (shape[i] !== saved[i]) {
      throw invalidArgument(`restoring a checkpoint: the VM differs from the saved one at argument ${i}: saved ${JSON.stringify(saved[i] ?? null)}, now ${JSON.stringify(shape[i] ?? null)} (same image, config and resources needed)`);
    }
  }
}
