// The unikernel description of a container: urunc's `com.urunc.unikernel.*` keys gathered from
// the spec annotations, the image (manifest annotations and container labels, read by the caller
// through containerd), and urunc.json at the image root (base64 values). Earlier sources win key
// by key: spec, then image, then urunc.json. No key at all means an ordinary container.
import * as z from 'zod/mini';
import { invalidArgument } from '../errors.js';
import { PREFIX } from './unikernel-keys.js';

export { PREFIX, decodeUruncJson, pickUnikernelKeys } from './unikernel-keys.js';

export const UNIKERNEL_TYPES = ['linux', 'unikraft', 'rumprun', 'mirage', 'mewz', 'hermit', 'includeos', 'freebsd'] as const;
export const HYPERVISORS = ['qemu', 'firecracker', 'cloud-hypervisor', 'hvt', 'spt', 'hyperlight-unikraft'] as const;
export type UnikernelType = (typeof UNIKERNEL_TYPES)[number];
export type HypervisorName = (typeof HYPERVISORS)[number];

/**
 * Image paths as urunc v0.8.0 validates them (annotations.go validateValues): its alphabet, at most
 * 4096 bytes, a clean path (what Go's filepath.Clean leaves unchanged), not ".", no leading ".." or
 * "-", and not "/" (except blkMntPoint); in-root resolution (symlinks) follows at use.
 */
const imagePath = (allowRoot: boolean) => z.string().check(
  z.minLength(1), z.maxLength(4096),
  z.regex(/^[A-Za-z0-9._/-]+$/, 'only A-Z a-z 0-9 . _ / - are allowed'),
  z.refine((v: string) => !v.startsWith('..') && !v.startsWith('-'), 'must not start with ".." or "-"'),
  z.refine((v: string) => v !== '.' && cleanPath(v) === v, 'must be a clean path (no ".." or "." parts, no "//", no trailing "/")'),
  z.refine((v: string) => allowRoot || v !== '/', 'must not be "/"'),
);
const pathValue = imagePath(false);
/** Go's strconv.ParseBool, which urunc uses for mountRootfs. */
const GO_TRUE = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const GO_FALSE = ['0', 'f', 'F', 'FALSE', 'false', 'False'];
const boolValue = z.pipe(
  z.string().check(z.refine((s: string) => GO_TRUE.includes(s) || GO_FALSE.includes(s), 'must be true or false (1, t, T, TRUE, true, True, or their false forms)')),
  z.transform((s: string) => GO_TRUE.includes(s)),
);
/** urunc's validateSolo5DevName. */
const solo5Name = z.string().check(z.regex(/^[A-Za-z0-9]{1,67}$/, 'a solo5 device name (A-Z a-z 0-9, at most 67)'));

/** Go's filepath.Clean for the absolute and relative paths urunc accepts. */
function cleanPath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (part === '..' && abs) continue;
    else out.push(part);
  }
  const joined = out.join('/');
  return abs ? `/${joined}` : joined || '.';
}

const ConfigSchema = z.object({
  unikernelType: z.enum(UNIKERNEL_TYPES),
  hypervisor: z.enum(HYPERVISORS),
  binary: pathValue,
  cmdline: z.optional(z.string().check(z.maxLength(4096))),
  initrd: z.optional(pathValue),
  block: z.optional(pathValue),
  blkMntPoint: z.optional(imagePath(true)),
  mountRootfs: z.optional(boolValue),
  unikernelVersion: z.optional(z.string().check(z.maxLength(64), z.regex(/^[A-Za-z0-9._+-]*$/))),
  /** solo5 device names the guest was built with (urunc: mirage's --net:<name>, --block:<name>). */
  solo5NetDev: z.optional(solo5Name),
  solo5BlkDev: z.optional(solo5Name),
  /** Ours: forces the guest root ("initrd", "block", "9pfs", "none"); an initrd then only loads drivers. */
  rootfsType: z.optional(z.enum(['initrd', 'block', '9pfs', 'virtiofs', 'none'])),
});

export type UnikernelConfig = z.infer<typeof ConfigSchema>;
/** The schema's keys, which src/monitors/unikernel-keys.ts lists for the light first look (a unit test keeps them equal). */
export const SCHEMA_KEYS = Object.keys(ConfigSchema.def.shape) as Array<keyof UnikernelConfig>;

/**
 * The guest/monitor pairs urunc v0.8.0 accepts (annotations.go supportedGuestMonitorPairs), plus
 * includeos and freebsd on the monitors their urunc sources build command lines for.
 */
const PAIRS: Record<HypervisorName, readonly UnikernelType[]> = {
  qemu: ['mewz', 'mirage', 'unikraft', 'linux', 'hermit', 'includeos', 'freebsd'],
  firecracker: ['linux', 'unikraft', 'freebsd'],
  'cloud-hypervisor': ['linux'],
  hvt: ['rumprun', 'mirage', 'includeos'],
  spt: ['rumprun', 'mirage', 'includeos'],
  'hyperlight-unikraft': ['unikraft'],
};

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
  const set = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== ''));
  const merged = { ...set(src.uruncJson), ...set(src.image), ...set(src.spec) };
  if (merged.unikernelType === undefined) return undefined;
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => {
      const key = i.path.join('.');
      return `${PREFIX}${key || '?'}: ${(merged as Record<string, string>)[key] === undefined ? 'required' : i.message}`;
    });
    throw invalidArgument(`invalid unikernel config: ${msgs.join('; ')}`);
  }
  const { hypervisor, unikernelType } = parsed.data;
  if (!PAIRS[hypervisor].includes(unikernelType)) throw invalidArgument(`invalid unikernel config: unsupported guest monitor pair ${hypervisor} ${unikernelType}`);
  return parsed.data;
}
