// containerd.runtime.sandbox.v1.Sandbox on ttrpc (the connection containerd 2.x already has to the
// shim started for a `sandboxer = "shim"` pod): decodes, calls the sandbox service, encodes.
import * as pb from '../gen/containerd/runtime/sandbox/v1/sandbox.js';
import type { PodConfig, SandboxService } from '../task/sandbox.js';
import { PodSandboxConfig } from '../gen/cri/runtime/v1/api.js';
import { Code, ShimError, messageOf } from '../errors.js';
import { method, type CallContext, type Handler } from './ttrpc/server.js';
import { toTimestamp } from './timestamp.js';

/** OCI's architecture names for Node's. */
const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** CreateSandbox's options: an Any of CRI's runtime.v1.PodSandboxConfig, or nothing (not from CRI). */
export function podConfigOf(options: { typeUrl: string; value: Uint8Array } | undefined): PodConfig | undefined {
  if (!options || options.value.length === 0) return undefined;
  if (!options.typeUrl.endsWith('runtime.v1.PodSandboxConfig')) throw new ShimError(Code.InvalidArgument, `sandbox options of type ${options.typeUrl}: expected runtime.v1.PodSandboxConfig`);
  let c: PodSandboxConfig;
  try {
    c = PodSandboxConfig.decode(options.value);
  } catch (err: unknown) {
    throw new ShimError(Code.InvalidArgument, `sandbox options: ${messageOf(err)}`);
  }
  const ns = c.linux?.securityContext?.namespaceOptions;
  return {
    hostname: c.hostname, dns: c.dnsConfig, sysctls: c.linux?.sysctls ?? {},
    network: ns?.network, pid: ns?.pid, ipc: ns?.ipc, userns: ns?.usernsOptions?.mode,
  };
}

export function sandboxHandlers(svc: SandboxService, defaultNamespace: string): Record<string, Handler> {
  const ns = (ctx: CallContext) => ctx.namespace ?? defaultNamespace;
  return {
    CreateSandbox: method(pb.CreateSandboxRequest, pb.CreateSandboxResponse, async (ctx, r) => {
      await svc.create(ns(ctx), { id: r.sandboxId, bundle: r.bundlePath, netnsPath: r.netnsPath, config: podConfigOf(r.options) });
      return {};
    }),
    StartSandbox: method(pb.StartSandboxRequest, pb.StartSandboxResponse, async (ctx, r) => {
      const s = await svc.start(ns(ctx), r.sandboxId);
      return { pid: s.pid, createdAt: toTimestamp(s.createdAt) };
    }),
    Platform: method(pb.PlatformRequest, pb.PlatformResponse, async () => ({
      platform: { os: 'linux', architecture: ARCH[process.arch] ?? process.arch, variant: process.arch === 'arm64' ? 'v8' : '', osVersion: '' },
    })),
    StopSandbox: method(pb.StopSandboxRequest, pb.StopSandboxResponse, async (ctx, r) => (await svc.stop(ns(ctx), r.sandboxId), {})),
    WaitSandbox: method(pb.WaitSandboxRequest, pb.WaitSandboxResponse, async (ctx, r) => {
      const e = await svc.wait(ns(ctx), r.sandboxId);
      return { exitStatus: e.exitStatus, exitedAt: toTimestamp(e.exitedAt) };
    }),
    SandboxStatus: method(pb.SandboxStatusRequest, pb.SandboxStatusResponse, async (ctx, r) => {
      const s = svc.status(ns(ctx), r.sandboxId, r.verbose);
      return {
        sandboxId: r.sandboxId, pid: s.pid, state: s.state, info: s.info, createdAt: toTimestamp(s.createdAt),
        exitedAt: s.exitedAt ? toTimestamp(s.exitedAt) : undefined, extra: undefined,
      };
    }),
    PingSandbox: method(pb.PingRequest, pb.PingResponse, async (ctx, r) => (svc.ping(ns(ctx), r.sandboxId), {})),
    ShutdownSandbox: method(pb.ShutdownSandboxRequest, pb.ShutdownSandboxResponse, async (ctx, r) => (await svc.shutdown(ns(ctx), r.sandboxId), {})),
    // A holder has no cgroup of its own to report (the pod's containers have theirs, through the
    // task service's Stats); the sample says when and for which sandbox, with no data.
    SandboxMetrics: method(pb.SandboxMetricsRequest, pb.SandboxMetricsResponse, async (ctx, r) => {
      svc.ping(ns(ctx), r.sandboxId);
      return { metrics: { timestamp: toTimestamp(new Date()), id: r.sandboxId, data: undefined } };
    }),
  };
}
