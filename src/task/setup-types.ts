// What flows between the three steps of a unikernel's Create and Start: decide
// (src/task/container-kind.ts), prepare (src/task/prepare.ts), launch (src/task/launch.ts). Types only.
import type { Logger } from 'pino';
import type { LaunchPlan, OciSpec } from '../monitors/launcher.js';
import type { RuntimeConfig } from '../monitors/runtime-config.js';
import type { UnikernelConfig } from '../monitors/unikernel-config.js';
import type { Mount } from '../rootfs/mounts.js';
import type { RootfsParams } from '../rootfs/planner.js';
import type { StateFile } from '../rootfs/state.js';
import type { SnapshotApi } from '../rootfs/view.js';

export interface UnikernelHost {
  /** com.urunc.unikernel.* from the container's labels and image manifest (containerd API). */
  imageAnnotations?: (namespace: string, id: string) => Promise<Record<string, string>>;
  /** containerd's gRPC socket (persisted so the crash path can release views) and its snapshot calls. */
  containerd?: { address: string; snapshots: (address: string) => SnapshotApi };
  kvmUsable: () => boolean;
  /**
   * For a container of a pod whose sandbox this daemon owns (src/task/sandbox.ts): adds the pod's
   * hostname, hosts and resolv.conf mounts to its config.json; returns how many it added.
   */
  podFiles?: (namespace: string, sandboxId: string, bundle: string) => number;
}

export interface SetupInput {
  host: UnikernelHost;
  log: Logger;
  namespace: string;
  id: string;
  bundle: string;
  /** The spec's root path, where the rootfs is mounted when the plan needs it on the host. */
  rootfs: string;
  mounts: readonly Mount[];
  spec: OciSpec;
  configPath: string | undefined;
  /** Registers an undo step, run in reverse order if a later step of Create fails. */
  undo: (step: () => Promise<void> | void) => void;
  /** Restoring a checkpoint: the monitor waits for the saved VM state instead of booting. */
  restore?: boolean;
}

export interface SetupResult {
  unikernel: UnikernelTask | undefined;
  /** Where the rootfs is mounted for the task's life (undefined when it is not). */
  mountedRootfs: string | undefined;
}

export interface UnikernelTask {
  config: UnikernelConfig;
  runtime: RuntimeConfig;
  plan: LaunchPlan;
  params: RootfsParams;
  /** The container's state file, for what is started after Create's set-up (virtiofsd, the network at Start). */
  state: StateFile;
  /** Restoring a checkpoint: the saved VM's command-line shape, which the one launched at Start must match. */
  restoreShape?: string[];
}

