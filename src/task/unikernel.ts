// The unikernel branch of Create: decides whether a container is a unikernel (spec annotations,
// image annotations through containerd, urunc.json in the image) and, if so, has the launcher write
// the monitor bundle runc will run instead of the container's own. Ordinary containers go to runc
// unchanged.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { prepareLaunch, type LaunchPlan, type OciSpec } from '../monitors/launcher.js';
import { DEFAULT_CONFIG_PATH, loadRuntimeConfig, type RuntimeConfig } from '../monitors/runtime-config.js';
import { decodeUruncJson, pickUnikernelKeys, resolveUnikernelConfig, type UnikernelConfig } from '../monitors/unikernel-config.js';
import { resolveInRoot } from '../rootfs/resolve-in-root.js';

const REQUIRED = ['unikernelType', 'hypervisor', 'binary'];

export interface UnikernelHost {
  /** com.urunc.unikernel.* from the container's labels and image manifest (containerd API). */
  imageAnnotations?: (namespace: string, id: string) => Promise<Record<string, string>>;
  kvmUsable: () => boolean;
}

export interface UnikernelTask {
  config: UnikernelConfig;
  runtime: RuntimeConfig;
  plan: LaunchPlan;
}

/** The config file: the Create options' ConfigPath, else $URUNC_CONFIG_PATH, else /etc/urunc/config.toml. */
export function configPathFor(optionPath: string | undefined): string {
  return optionPath || process.env.URUNC_CONFIG_PATH || DEFAULT_CONFIG_PATH;
}

export async function planUnikernel(o: {
  host: UnikernelHost;
  log: Logger;
  namespace: string;
  id: string;
  bundle: string;
  rootfs: string;
  spec: OciSpec;
  configPath: string | undefined;
}): Promise<UnikernelTask | undefined> {
  const specKeys = pickUnikernelKeys(o.spec.annotations);
  let imageKeys: Record<string, string> = {};
  if (o.host.imageAnnotations && REQUIRED.some((k) => specKeys[k] === undefined)) {
    try {
      imageKeys = await o.host.imageAnnotations(o.namespace, o.id);
    } catch (err: unknown) {
      // A container without an image record (or an unreachable containerd) is judged on the rest.
      o.log.debug({ err: messageOf(err) }, 'image annotations unavailable');
    }
  }
  let uruncJson: Record<string, string> = {};
  const jsonPath = (() => {
    try {
      return resolveInRoot(o.rootfs, '/urunc.json', 'urunc.json');
    } catch {
      return undefined;
    }
  })();
  if (jsonPath && fs.statSync(jsonPath).isFile()) uruncJson = decodeUruncJson(fs.readFileSync(jsonPath, 'utf8'));
  const config = resolveUnikernelConfig({ spec: specKeys, image: pickUnikernelKeys(imageKeys), uruncJson });
  if (!config) return undefined;
  const runtime = loadRuntimeConfig(configPathFor(o.configPath), (msg) => o.log.warn(msg));
  const plan = prepareLaunch({ id: o.id, bundle: o.bundle, rootfs: o.rootfs, spec: o.spec, unikernel: config, config: runtime, kvmUsable: o.host.kvmUsable });
  o.log.info({ hypervisor: config.hypervisor, type: config.unikernelType, rootfs: plan.rootfsType, accel: plan.accel }, 'unikernel container');
  return { config, runtime, plan };
}

/** The container's root as the spec names it (relative paths are relative to the bundle). */
export function specRootfs(bundle: string, spec: OciSpec): string {
  const root = (spec.root as { path?: string } | undefined)?.path ?? 'rootfs';
  return path.resolve(bundle, root);
}
