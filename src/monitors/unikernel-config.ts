// The unikernel description of a container: urunc's `com.urunc.unikernel.*` keys gathered from
// the spec annotations, the image (manifest annotations and container labels, read by the caller
// through containerd), and urunc.json at the image root (base64 values). Earlier sources win key
// by key: spec, then image, then urunc.json. No key at all means an ordinary container.
import * as z from 'zod/mini';
import { invalidArgument } from '../errors.js';

export const PREFIX = 'com.urunc.unikernel.';

export const UNIKERNEL_TYPES = ['linux', 'unikraft', 'rumprun', 'mirage', 'mewz', 'hermit', 'includeos', 'freebsd'] as const;
export const HYPERVISORS = ['qemu', 'firecracker', 'cloud-hypervisor', 'hvt', 'spt'] as const;
export type UnikernelType = (typeof UNIKERNEL_TYPES)[number];
export type HypervisorName = (typeof HYPERVISORS)[number];

/** Image-relative paths and command-line fragments: urunc's strict value alphabet, at most 4096 chars. */
const pathValue = z.string().check(z.minLength(1), z.maxLength(4096), z.regex(/^[A-Za-z0-9._/-]+$/, 'only A-Z a-z 0-9 . _ / - are allowed'));
const boolValue = z.pipe(
  z.string().check(z.regex(/^(true|false|1|0)$/i, 'must be true or false')),
  z.transform((s: string) => /^(true|1)$/i.test(s)),
);

const ConfigSchema = z.object({
  unikernelType: z.enum(UNIKERNEL_TYPES),
  hypervisor: z.enum(HYPERVISORS),
  binary: pathValue,
  cmdline: z.optional(z.string().check(z.maxLength(4096))),
  initrd: z.optional(pathValue),
  block: z.optional(pathValue),
  blkMntPoint: z.optional(pathValue),
  mountRootfs: z.optional(boolValue),
  unikernelVersion: z.optional(z.string().check(z.maxLength(64), z.regex(/^[A-Za-z0-9._+-]*$/))),
  /** solo5 device names the guest was built with (urunc: mirage's --net:<name>, --block:<name>). */
  solo5NetDev: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_]{1,64}$/, 'a solo5 device name (A-Z a-z 0-9 _)'))),
  solo5BlkDev: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_]{1,64}$/, 'a solo5 device name (A-Z a-z 0-9 _)'))),
  /** Ours: forces the guest root ("initrd", "block", "9pfs", "none"); an initrd then only loads drivers. */
  rootfsType: z.optional(z.enum(['initrd', 'block', '9pfs', 'none'])),
});

export type UnikernelConfig = z.infer<typeof ConfigSchema>;
const KEYS = Object.keys(ConfigSchema.def.shape) as Array<keyof UnikernelConfig>;

/** The `com.urunc.unikernel.*` entries of a string map, keyed by their short name. */
export function pickUnikernelKeys(map: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(map ?? {})) {
    if (!k.startsWith(PREFIX)) continue;
    const short = k.slice(PREFIX.length);
    if ((KEYS as string[]).includes(short)) out[short] = v;
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

export interface ConfigSources {
  spec: Record<string, string>;
  image: Record<string, string>;
  uruncJson: Record<string, string>;
}

/**
 * Merges the sources (spec > image > urunc.json) and validates. Undefined (an ordinary container,
 * as in urunc) when no source names a unikernelType; once one does, every value must be valid.
 */
export function resolveUnikernelConfig(src: ConfigSources): UnikernelConfig | undefined {
  const merged = { ...src.uruncJson, ...src.image, ...src.spec };
  if (merged.unikernelType === undefined) return undefined;
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => {
      const key = i.path.join('.');
      return `${PREFIX}${key || '?'}: ${(merged as Record<string, string>)[key] === undefined ? 'required' : i.message}`;
    });
    throw invalidArgument(`invalid unikernel config: ${msgs.join('; ')}`);
  }
  return parsed.data;
}
