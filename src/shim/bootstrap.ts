// What containerd writes to `start`'s stdin: a bare Any (<= 2.2; TaskOptions or CRI's
// runtimeoptions.v1.Options) or, from 2.3, BootstrapParams. Both begin with tag 0x0A; like
// containerd's compat code we accept BootstrapParams only when its id and namespace match ours.
import { Any } from '../gen/google/protobuf/any.js';
import { BootstrapParams } from '../gen/containerd/bootstrap/bootstrap.js';
import { Options as RuntimeOptions } from '../gen/runtimeoptions/api.js';

export interface StartInput {
  /** CRI's ConfigPath (runtimeoptions.v1.Options.config_path), if any. */
  configPath: string | undefined;
  ttrpcAddress: string | undefined;
  grpcAddress: string | undefined;
  socketDir: string | undefined;
  /** containerd's version, from 2.3+'s BootstrapParams. */
  containerdVersion: string | undefined;
}

export function decodeStartInput(raw: Uint8Array, id: string, namespace: string): StartInput {
  const out: StartInput = { configPath: undefined, ttrpcAddress: undefined, grpcAddress: undefined, socketDir: undefined, containerdVersion: undefined };
  if (raw.length === 0) return out;
  let options: Any | undefined;
  try {
    const p = BootstrapParams.decode(raw);
    if (p.instanceId === id && p.namespace === namespace) {
      out.ttrpcAddress = p.containerdTtrpcAddress || undefined;
      out.grpcAddress = p.containerdGrpcAddress || undefined;
      out.socketDir = p.socketDir || undefined;
      out.containerdVersion = p.containerdVersion || undefined;
      options = p.extensions.find((e) => e.value?.typeUrl.endsWith('runtimeoptions.v1.Options'))?.value;
    }
  } catch {
    // not BootstrapParams
  }
  if (!out.ttrpcAddress && !options) {
    try {
      options = Any.decode(raw);
    } catch {
      options = undefined;
    }
  }
  out.configPath = configPathOf(options);
  return out;
}

/** CRI's runtimeoptions.v1.Options.config_path (ctr --runtime-config-path sends the same), if any. */
export function configPathOf(options: { typeUrl: string; value: Uint8Array } | undefined): string | undefined {
  if (!options?.typeUrl.endsWith('runtimeoptions.v1.Options')) return undefined;
  try {
    return RuntimeOptions.decode(options.value).configPath || undefined;
  } catch {
    // unknown payload: ignore, as runc does with options it does not know
    return undefined;
  }
}
