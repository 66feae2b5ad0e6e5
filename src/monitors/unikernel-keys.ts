// The `com.urunc.unikernel.*` keys, found without validating them: what every Create asks first
// (is this container a unikernel?), so it stays free of the schema (src/monitors/unikernel-config.ts
// validates once a key is there).
import { invalidArgument } from '../errors.js';

export const PREFIX = 'com.urunc.unikernel.';

/** The keys urunc v0.8.0 knows, plus ours (solo5 device names, rootfsType); the schema has the same set. */
export const UNIKERNEL_KEYS = [
  'unikernelType', 'hypervisor', 'binary', 'cmdline', 'initrd', 'block', 'blkMntPoint', 'mountRootfs',
  'unikernelVersion', 'solo5NetDev', 'solo5BlkDev', 'rootfsType',
] as const;

/** The `com.urunc.unikernel.*` entries of a string map, keyed by their short name; empty values count as absent (bunix writes every key). */
export function pickUnikernelKeys(map: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map ?? {})) {
    if (!k.startsWith(PREFIX) || v === '') continue;
    const short = k.slice(PREFIX.length);
    if ((UNIKERNEL_KEYS as readonly string[]).includes(short)) out[short] = v;
  }
  return out;
}

/**
 * urunc.json: a flat object of annotation names to base64 values. Returns the decoded
 * `com.urunc.unikernel.*` entries; anything else in the file is ignored, malformed files are errors.
 */
export function decodeUruncJson(text: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidArgument('urunc.json is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidArgument('urunc.json must be a JSON object');
  const decoded: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (!k.startsWith(PREFIX)) continue;
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw invalidArgument(`urunc.json: ${k} is not a base64 string`);
    decoded[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  return pickUnikernelKeys(decoded);
}
