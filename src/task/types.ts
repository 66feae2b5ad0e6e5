// Plain domain types the task service speaks; src/shim translates them to and from protobuf.
export type Status = 'unknown' | 'created' | 'running' | 'stopped' | 'paused' | 'pausing';

export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface CreateRequest {
  id: string;
  bundle: string;
  rootfs: Mount[];
  terminal: boolean;
  stdin: string;
  stdout: string;
  stderr: string;
  checkpoint: string;
  options: { typeUrl: string; value: Uint8Array } | undefined;
  /** runtimeoptions ConfigPath from the Create options: the runtime config file to use. */
  configPath?: string;
}

export interface ExecRequest {
  id: string;
  execId: string;
  terminal: boolean;
  stdin: string;
  stdout: string;
  stderr: string;
  /** The OCI Process, JSON. */
  spec: Uint8Array;
}

export interface ProcessState {
  id: string;
  execId: string;
  bundle: string;
  pid: number;
  status: Status;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  exitStatus: number;
  exitedAt: Date | undefined;
}

export interface ExitInfo {
  pid: number;
  exitStatus: number;
  exitedAt: Date;
}

/** Events in containerd's vocabulary; the publisher encodes them. */
export type TaskEvent =
  | { topic: '/tasks/create'; containerId: string; bundle: string; rootfs: Mount[]; io: { stdin: string; stdout: string; stderr: string; terminal: boolean }; checkpoint: string; pid: number }
  | { topic: '/tasks/start'; containerId: string; pid: number }
  | { topic: '/tasks/exit'; containerId: string; id: string; pid: number; exitStatus: number; exitedAt: Date }
  | { topic: '/tasks/delete'; containerId: string; id: string; pid: number; exitStatus: number; exitedAt: Date }
  | { topic: '/tasks/exec-added'; containerId: string; execId: string }
  | { topic: '/tasks/exec-started'; containerId: string; execId: string; pid: number }
  | { topic: '/tasks/paused'; containerId: string }
  | { topic: '/tasks/resumed'; containerId: string }
  | { topic: '/tasks/oom'; containerId: string };

export interface EventSink {
  publish(namespace: string, event: TaskEvent): void;
}

/** A checkpoint's options (containerd.runc.v1.CheckpointOptions): runc's for an ordinary container, exit and imagePath for a VM. */
export interface CheckpointOpts {
  exit: boolean;
  imagePath: string;
  workPath: string;
  openTcp?: boolean;
  externalUnixSockets?: boolean;
  terminal?: boolean;
  fileLocks?: boolean;
  emptyNamespaces?: string[];
  cgroupsMode?: string;
}
