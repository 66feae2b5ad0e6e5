// What a unikernel container's rootfs set-up made, persisted in its bundle so that any process (the
// daemon at Delete or Shutdown, a rollback, or `delete` after a crash) can undo it from disk alone:
//  - <bundle>/urunc-rootfs.json: the state file. Each resource is recorded *before* it is acquired,
//    so a crash between the two leaves a record whose undo is a harmless NotFound.
//  - config.json annotation com.urunc.internal.rootfs.params: the chosen plan, which the launcher
//    reads back from disk. The spec may not carry it (or any com.urunc.internal.* key) itself.
// Every write is atomic (temp file, fsync, rename).
import fs from 'node:fs';
import path from 'node:path';
import { invalidArgument, messageOf } from '../errors.js';
import type { RootfsParams } from './planner.js';
import { readSpecText } from '../sys/spec-file.js';

export const PARAMS_ANNOTATION = 'com.urunc.internal.rootfs.params';
const INTERNAL_PREFIX = 'com.urunc.internal.';
export const STATE_FILE = 'urunc-rootfs.json';

export interface ViewRecord {
  snapshotter: string;
  /** The view's snapshot key, and the lease that holds it (and, through it, the image's layers). */
  key: string;
  lease: string;
  parent: string;
  mountpoint: string;
}

export interface RootfsState {
  version: 1;
  namespace: string;
  id: string;
  /** containerd's gRPC socket: where the view and lease are released. */
  address: string;
  params?: RootfsParams;
  view?: ViewRecord;
  /** Host mount points this container owns (besides <bundle>/rootfs), unmounted in reverse order. */
  mounts: string[];
  /** Directories this container owns, removed after the unmounts. */
  dirs: string[];
  /** Host mounts of volumes taken away for the VM (device, path, options): mounted back at release. */
  lentVolumes?: Array<{ device: string; fstype: string; hostPath: string; hostOptions: string }>;
  /** A virtiofsd this container started: killed only if the pid still has the recorded start time. */
  virtiofsd?: { pid: number; startTime: string };
}

export const statePath = (bundle: string) => path.join(bundle, STATE_FILE);

export function writeAtomic(file: string, data: string, mode = 0o600): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function readState(bundle: string): RootfsState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(statePath(bundle), 'utf8');
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const s = JSON.parse(text) as RootfsState;
    if (s.version !== 1 || !Array.isArray(s.mounts) || !Array.isArray(s.dirs)) throw new Error('unknown layout');
    return s;
  } catch (err: unknown) {
    throw new Error(`${statePath(bundle)}: ${messageOf(err)}`);
  }
}

/** The state file of one Create: every change is written through before the caller goes on. */
export class StateFile {
  readonly state: RootfsState;

  constructor(readonly bundle: string, init: Pick<RootfsState, 'namespace' | 'id' | 'address'>) {
    this.state = { version: 1, ...init, mounts: [], dirs: [] };
  }

  update(change: (s: RootfsState) => void): void {
    change(this.state);
    writeAtomic(statePath(this.bundle), JSON.stringify(this.state));
  }
}

/** Refuses a spec that tries to hand the runtime its own internal annotations. */
export function assertNoInternalAnnotations(annotations: Record<string, string> | undefined): void {
  const bad = Object.keys(annotations ?? {}).filter((k) => k.startsWith(INTERNAL_PREFIX));
  if (bad.length > 0) throw invalidArgument(`annotation ${bad.join(', ')} is reserved for the runtime`);
}

/** Writes the plan into config.json's annotations (atomically, keeping the file's mode). */
export function persistParams(bundle: string, params: RootfsParams): void {
  const file = path.join(bundle, 'config.json');
  const spec = JSON.parse(readSpecText(bundle)) as { annotations?: Record<string, string> };
  spec.annotations = { ...(spec.annotations ?? {}), [PARAMS_ANNOTATION]: JSON.stringify(params) };
  writeAtomic(file, JSON.stringify(spec), fs.statSync(file).mode & 0o777);
}

/** The plan as persisted in config.json. */
export function readParams(bundle: string): RootfsParams {
  const spec = JSON.parse(readSpecText(bundle)) as { annotations?: Record<string, string> };
  const raw = spec.annotations?.[PARAMS_ANNOTATION];
  if (!raw) throw new Error(`config.json has no ${PARAMS_ANNOTATION}`);
  return JSON.parse(raw) as RootfsParams;
}
