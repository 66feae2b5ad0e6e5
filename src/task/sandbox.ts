// Pod sandboxes this shim owns (containerd 2.x, a CRI runtime with `sandboxer = "shim"`): no pause
// container; a holder process (src/task/sandbox-holder.ts) keeps the pod's network namespace with
// IPC and UTS namespaces of its own, and its pid is the sandbox pid CRI joins every container of the
// pod to. Each sandbox's state is in its bundle (containerd's sandbox state dir), so `delete` from a
// fresh process stops a holder whose daemon died.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { Code, ShimError, messageOf } from '../errors.js';
import { readSpecText } from './spec.js';
import { SANDBOX_STATE, holderAlive, killIfSame, startHolder, validateHolderOptions, type HolderOptions, type SandboxState } from './sandbox-holder.js';

/** A file of the pod's that each of its containers gets bind-mounted (what CRI's pause sandbox makes). */
export interface PodFile {
  destination: string;
  source: string;
}

interface Sandbox {
  bundle: string;
  files: PodFile[];
  state: SandboxState;
  options: HolderOptions;
  /** Resolves when the holder's exit is recorded. */
  exited: Promise<void>;
  markExited: (status: number, at: Date) => void;
}

/** CRI's NamespaceMode values (runtime.v1). */
export const NamespaceMode = { POD: 0, CONTAINER: 1, NODE: 2, TARGET: 3 } as const;

/** What this shim uses of the pod's PodSandboxConfig (CreateSandbox's options), decoded by the RPC layer. */
export interface PodConfig {
  hostname: string;
  dns: { servers: string[]; searches: string[]; options: string[] } | undefined;
  sysctls: Record<string, string>;
  /** NamespaceMode of each; undefined: not given (POD). */
  network?: number;
  pid?: number;
  ipc?: number;
  userns?: number;
}

export interface SandboxRequest {
  id: string;
  bundle: string;
  netnsPath: string;
  config: PodConfig | undefined;
}

const notFound = (id: string) => new ShimError(Code.NotFound, `sandbox ${id}: not found`);

/** What the pod's config asks of the holder; refuses what it cannot give. */
export function holderOptionsFor(netnsPath: string, config: PodConfig | undefined): HolderOptions {
  if (config?.userns === NamespaceMode.POD) {
    throw new ShimError(Code.FailedPrecondition, 'a pod user namespace (hostUsers: false) is not supported by the urunc sandboxer; use a runtime class with the pause sandboxer');
  }
  const hostNetwork = config?.network === NamespaceMode.NODE;
  if (!hostNetwork && netnsPath === '') throw new ShimError(Code.InvalidArgument, 'sandbox without host networking has no netns_path');
  return {
    netnsPath: hostNetwork ? undefined : netnsPath,
    ipc: config?.ipc !== NamespaceMode.NODE,
    // CRI gives a pod on the host network the host's UTS namespace too.
    uts: !hostNetwork,
    pid: config?.pid === NamespaceMode.POD,
    hostname: hostNetwork ? undefined : config?.hostname || undefined,
    sysctls: config?.sysctls ?? {},
  };
}

/**
 * /etc/hostname, /etc/hosts and /etc/resolv.conf for the pod's containers, in the sandbox bundle, as
 * containerd's pause sandbox writes them (CRI mounts them only from its own pause sandbox's dir): the
 * pod hostname (else the node's), the node's hosts file, and a resolv.conf from the
 * pod's DNS config, else the node's.
 */
function writePodFiles(bundle: string, config: PodConfig | undefined): PodFile[] {
  const dir = path.join(bundle, 'etc');
  fs.mkdirSync(dir, { recursive: true });
  const file = (name: string, content: string | undefined, hostCopy: string): PodFile => {
    const source = path.join(dir, name);
    if (content !== undefined) fs.writeFileSync(source, content, { mode: 0o644 });
    else if (fs.existsSync(hostCopy)) fs.copyFileSync(hostCopy, source);
    else fs.writeFileSync(source, '', { mode: 0o644 });
    return { destination: `/etc/${name}`, source };
  };
  const dns = config?.dns;
  const resolv = dns ? [
    dns.searches.length > 0 ? `search ${dns.searches.join(' ')}\n` : '',
    ...dns.servers.map((s) => `nameserver ${s}\n`),
    dns.options.length > 0 ? `options ${dns.options.join(' ')}\n` : '',
  ].join('') : undefined;
  return [
    file('hostname', `${config?.hostname || os.hostname()}\n`, ''),
    file('hosts', undefined, '/etc/hosts'),
    file('resolv.conf', resolv, '/etc/resolv.conf'),
  ];
}

/** Adds the pod files a container's spec does not mount already to its config.json; returns how many. */
export function addPodFiles(bundle: string, files: PodFile[]): number {
  const specFile = path.join(bundle, 'config.json');
  const spec = JSON.parse(readSpecText(bundle)) as { mounts?: Array<{ destination?: string }>; root?: { readonly?: boolean } };
  const mounts = Array.isArray(spec.mounts) ? spec.mounts : [];
  const have = new Set(mounts.map((m) => path.posix.normalize(m.destination ?? '')));
  const missing = files.filter((f) => !have.has(f.destination));
  if (missing.length === 0) return 0;
  const mode = spec.root?.readonly ? 'ro' : 'rw';
  spec.mounts = [...mounts, ...missing.map((f) => ({ destination: f.destination, type: 'bind', source: f.source, options: ['rbind', 'rprivate', mode] }))];
  fs.writeFileSync(`${specFile}.tmp`, JSON.stringify(spec));
  fs.renameSync(`${specFile}.tmp`, specFile);
  return missing.length;
}

function writeState(bundle: string, s: SandboxState): void {
  const file = path.join(bundle, SANDBOX_STATE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(s));
  fs.renameSync(`${file}.tmp`, file);
}

export class SandboxService {
  private readonly sandboxes = new Map<string, Sandbox>();

  constructor(private readonly log: Logger, private readonly onEmpty: () => void = () => undefined) {}

  get size(): number {
    return this.sandboxes.size;
  }

  private key = (ns: string, id: string) => `${ns}/${id}`;

  private get(ns: string, id: string): Sandbox {
    const sb = this.sandboxes.get(this.key(ns, id));
    if (!sb) throw notFound(id);
    return sb;
  }

  async create(ns: string, r: SandboxRequest): Promise<void> {
    if (!r.id) throw new ShimError(Code.InvalidArgument, 'sandbox_id is required');
    if (this.sandboxes.has(this.key(ns, r.id))) throw new ShimError(Code.AlreadyExists, `sandbox ${r.id}: already exists`);
    // containerd made the bundle (its sandbox state dir); the record goes in it, nowhere else.
    if (!path.isAbsolute(r.bundle) || !fs.lstatSync(r.bundle, { throwIfNoEntry: false })?.isDirectory()) {
      throw new ShimError(Code.InvalidArgument, `sandbox bundle ${JSON.stringify(r.bundle)} is not an existing directory`);
    }
    const options = holderOptionsFor(r.netnsPath, r.config);
    try {
      validateHolderOptions(options);
    } catch (err: unknown) {
      throw new ShimError(Code.InvalidArgument, messageOf(err));
    }
    const state: SandboxState = { id: r.id, namespace: ns, netnsPath: r.netnsPath, holder: null, createdAt: new Date().toISOString() };
    const files = writePodFiles(r.bundle, r.config);
    writeState(r.bundle, state);
    let markExited: Sandbox['markExited'] = () => undefined;
    const exited = new Promise<void>((resolve) => {
      markExited = (status, at) => {
        if (state.exitedAt) return;
        state.exitStatus = status;
        state.exitedAt = at.toISOString();
        try {
          writeState(r.bundle, state);
        } catch (err: unknown) {
          this.log.warn({ err: messageOf(err), id: r.id }, 'sandbox state not written');
        }
        resolve();
      };
    });
    this.sandboxes.set(this.key(ns, r.id), { bundle: r.bundle, files, state, options, exited, markExited });
    this.log.info({ id: r.id, netns: r.netnsPath, pidNamespace: options.pid, hostNetwork: options.netnsPath === undefined }, 'sandbox created');
  }

  async start(ns: string, id: string): Promise<{ pid: number; createdAt: Date }> {
    const sb = this.get(ns, id);
    const s = sb.state;
    if (s.holder && !s.exitedAt) return { pid: s.holder.pid, createdAt: new Date(s.createdAt) };
    if (s.exitedAt) throw new ShimError(Code.FailedPrecondition, `sandbox ${id}: already stopped`);
    let h;
    try {
      h = await startHolder(sb.options);
    } catch (err: unknown) {
      throw new ShimError(Code.Internal, `sandbox ${id}: ${messageOf(err)}`, { cause: err });
    }
    s.holder = { pid: h.pid, startTime: h.startTime };
    writeState(sb.bundle, s);
    void h.exited.then((e) => sb.markExited(e.status, e.at));
    this.log.info({ id, pid: h.pid }, 'sandbox started');
    return { pid: h.pid, createdAt: new Date(s.createdAt) };
  }

  /** Stops the holder (a SIGKILL: it does nothing to wind down); the exit is recorded once seen. */
  async stop(ns: string, id: string): Promise<void> {
    const sb = this.get(ns, id);
    const h = sb.state.holder;
    if (!h) {
      sb.markExited(0, new Date());
      return;
    }
    killIfSame(h);
    // The exit is seen through the child's status; a holder this process is not the parent of
    // (never the case today) is polled.
    const deadline = Date.now() + 5_000;
    while (!sb.state.exitedAt && Date.now() < deadline) {
      if (!holderAlive(h)) {
        await Promise.race([sb.exited, new Promise((r) => setTimeout(r, 200))]);
        sb.markExited(128 + 9, new Date());
        break;
      }
      await Promise.race([sb.exited, new Promise((r) => setTimeout(r, 20))]);
    }
    if (!sb.state.exitedAt) throw new ShimError(Code.DeadlineExceeded, `sandbox ${id}: holder ${h.pid} did not exit`);
  }

  async wait(ns: string, id: string): Promise<{ exitStatus: number; exitedAt: Date }> {
    const sb = this.get(ns, id);
    await sb.exited;
    return { exitStatus: sb.state.exitStatus ?? 0, exitedAt: new Date(sb.state.exitedAt ?? Date.now()) };
  }

  status(ns: string, id: string, verbose: boolean): { pid: number; state: string; createdAt: Date; exitedAt: Date | undefined; info: Record<string, string> } {
    const sb = this.get(ns, id);
    const s = sb.state;
    const ready = s.holder !== null && !s.exitedAt && holderAlive(s.holder);
    const pid = s.holder?.pid ?? 0;
    const info: Record<string, string> = {};
    if (verbose) {
      // What `crictl inspectp` shows under "info": where the pod's namespaces are.
      const nsPath = (kind: string) => (pid && ready ? `/proc/${pid}/ns/${kind}` : '');
      const namespaces = [
        { type: 'network', path: sb.options.netnsPath ?? '' },
        ...(sb.options.ipc ? [{ type: 'ipc', path: nsPath('ipc') }] : []),
        ...(sb.options.uts ? [{ type: 'uts', path: nsPath('uts') }] : []),
        ...(sb.options.pid ? [{ type: 'pid', path: nsPath('pid') }] : []),
      ].filter((n) => n.path !== '' || n.type === 'network');
      info.info = JSON.stringify({
        pid, processStatus: ready ? 'running' : s.exitedAt ? 'stopped' : 'created', sandboxer: 'urunc', runtimeType: 'io.containerd.urunc.v2',
        hostNetwork: sb.options.netnsPath === undefined, namespaces,
      });
    }
    return { pid, state: ready ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY', createdAt: new Date(s.createdAt), exitedAt: s.exitedAt ? new Date(s.exitedAt) : undefined, info };
  }

  /** The pod files for a container of sandbox `id`, if this daemon owns that sandbox. */
  podFiles(ns: string, id: string): PodFile[] | undefined {
    return this.sandboxes.get(this.key(ns, id))?.files;
  }

  ping(ns: string, id: string): void {
    this.get(ns, id);
  }

  /** Stops what is left and forgets the sandbox; its bundle (and record) is containerd's to remove. */
  async shutdown(ns: string, id: string): Promise<void> {
    const sb = this.sandboxes.get(this.key(ns, id));
    if (!sb) return;
    if (!sb.state.exitedAt) await this.stop(ns, id);
    this.sandboxes.delete(this.key(ns, id));
    fs.rmSync(path.join(sb.bundle, SANDBOX_STATE), { force: true });
    this.log.info({ id }, 'sandbox shut down');
    if (this.sandboxes.size === 0) this.onEmpty();
  }
}
