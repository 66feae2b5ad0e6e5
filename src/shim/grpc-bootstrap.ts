// The `start` answer for a daemon that containerd should reach over gRPC ([shim] protocol = "grpc").
// containerd 1.7 dials gRPC for {"version":2,"protocol":"grpc"} (it rejects any version above 2),
// calls containerd.task.v3.Task, and dials the address as a plain socket path (it prefixes unix://
// itself). 1.6 has no gRPC shims, and 2.x (which would need version 3) drops them (below), so both
// are refused with the reason. MAX_SHIM_VERSION says 2 on every version: the version comes from
// containerd 2.3+'s BootstrapParams, or else from containerd's own Version service.
import { Empty } from '../gen/google/protobuf/empty.js';
import { VersionResponse } from '../gen/containerd/services/version/v1/version.js';
import { containerdGrpc } from './containerd-grpc.js';

export interface GrpcBootstrap {
  version: 2;
  address: string;
  protocol: 'grpc';
}

/** Major and minor of a containerd version string ("v1.7.24", "1.6.20~ds1", "2.1.9+unknown"). */
export function parseContainerdVersion(v: string): { major: number; minor: number } | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** The bootstrap answer for containerd `containerdVersion`, or an error naming why gRPC cannot be used. */
export function grpcBootstrapFor(containerdVersion: string, sockPath: string): GrpcBootstrap {
  const v = parseContainerdVersion(containerdVersion);
  if (!v) throw new Error(`start: [shim] protocol = "grpc": cannot tell the version of containerd from ${JSON.stringify(containerdVersion)}`);
  if (v.major < 1 || (v.major === 1 && v.minor < 7)) {
    throw new Error(`start: [shim] protocol = "grpc" needs containerd 1.7 or later; this is containerd ${containerdVersion}, which connects to shims over ttrpc only (set protocol = "ttrpc")`);
  }
  if (v.major >= 2) {
    // Measured on 2.1.9, and the code is unchanged through 2.4.0-beta.0: core/runtime/v2/shim.go
    // grpcDialContext makes a lazy client (grpc.NewClient, state Idle) and at once takes Idle for a
    // closed connection, so containerd runs `delete` on the shim right after connecting and every
    // Create fails (its bundle is gone).
    throw new Error(`start: [shim] protocol = "grpc" cannot work with containerd ${containerdVersion}: it treats a gRPC shim as disconnected as soon as it connects (grpcDialContext in core/runtime/v2/shim.go) and deletes it; set protocol = "ttrpc"`);
  }
  return { version: 2, address: sockPath, protocol: 'grpc' };
}

/** Asks containerd at `address` (its main gRPC socket) for its version. */
export async function askContainerdVersion(address: string, namespace: string): Promise<string> {
  const [r] = await containerdGrpc(address).call(namespace, '/containerd.services.version.v1.Version/Version', {}, Empty, VersionResponse);
  if (!r?.version) throw new Error(`start: containerd at ${address} did not say its version`);
  return r.version;
}
