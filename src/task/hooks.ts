// OCI hooks of unikernel containers, run by the shim as runc runs them for ordinary containers:
// each hook's path with its args (args[0] is argv[0]) and env, the OCI state JSON on stdin, its
// timeout in seconds (prestart, deprecated in OCI but Docker 26's network hook, runs with createRuntime,
// as runc runs it). runc cannot run them for a unikernel: its bundle is the derived monitor
// bundle, and createContainer/startContainer would be looked up inside the monitor root. Here every
// hook runs in the runtime's namespaces with the container's own bundle in the state (VM runtimes
// such as kata do the same for the hooks they run on the host). A failing prestart, createRuntime,
// createContainer or startContainer hook fails the operation; poststart and poststop only warn.
import { run } from '../sys/spawn.js';

export type HookKind = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface OciState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped';
  pid: number;
  bundle: string;
  annotations: Record<string, string>;
}

export function hooksOf(spec: object, kind: HookKind): OciHook[] {
  const list = ((spec as { hooks?: Record<string, unknown> }).hooks)?.[kind];
  return Array.isArray(list) ? (list as OciHook[]).filter((h) => typeof h?.path === 'string' && h.path.startsWith('/')) : [];
}

/** Runs the hooks of one kind in order; the first failure throws (the caller decides whether that is fatal). */
export async function runHooks(hooks: OciHook[], kind: HookKind, state: OciState): Promise<void> {
  const input = JSON.stringify(state);
  for (const h of hooks) {
    const [argv0, ...args] = h.args?.length ? h.args : [h.path];
    const env = Object.fromEntries((h.env ?? []).filter((e) => e.indexOf('=') > 0).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const r = await run(h.path, args, { input, env, argv0, cwd: state.bundle, timeoutMs: h.timeout && h.timeout > 0 ? h.timeout * 1000 : undefined });
    if (r.code !== 0) throw new Error(`${kind} hook ${h.path} failed with status ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`);
  }
}
