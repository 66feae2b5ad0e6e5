// /etc/urunc/config.toml: urunc's knobs (same names, same defaults) plus ours (qemu accelerator,
// machine and cpu model; the watchdog). Read at Create; the path may come from the runtime options
// (ConfigPath). A missing file means defaults; unknown keys are warnings, wrong types are errors.
import fs from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import * as z from 'zod/mini';
import { invalidArgument, messageOf } from '../errors.js';
import { HYPERVISORS, type HypervisorName } from './unikernel-config.js';

export const DEFAULT_CONFIG_PATH = '/etc/urunc/config.toml';

/** The config file: the options' ConfigPath, else $URUNC_CONFIG_PATH, else /etc/urunc/config.toml. */
export function configPathFor(optionPath: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return optionPath || env.URUNC_CONFIG_PATH || DEFAULT_CONFIG_PATH;
}

const Monitor = z.object({
  default_memory_mb: z._default(z.int().check(z.positive()), 256),
  default_vcpus: z._default(z.int().check(z.positive()), 1),
  path: z._default(z.string(), ''),
  data_path: z._default(z.string(), ''),
  vhost: z._default(z.boolean(), false),
  /** Ours (qemu): "kvm", "tcg", or "auto" (kvm when /dev/kvm can create a VM, else tcg). */
  accelerator: z._default(z.enum(['auto', 'kvm', 'tcg']), 'auto'),
  /** Ours (qemu): machine type, "pc" as urunc, or "microvm". */
  machine: z._default(z.enum(['pc', 'microvm']), 'pc'),
  /** Ours (qemu): -cpu model under kvm ("host" as urunc); tcg always uses "max". */
  cpu: z._default(z.string().check(z.regex(/^[A-Za-z0-9_,+=.-]+$/)), 'host'),
});
export type MonitorConfig = z.infer<typeof Monitor>;

const monitorDefaults = (): MonitorConfig => Monitor.parse({});

const ConfigSchema = z.object({
  log: z._default(z.object({ level: z._default(z.enum(['trace', 'debug', 'info', 'warn', 'error']), 'info'), syslog: z._default(z.boolean(), false) }), { level: 'info', syslog: false }),
  timestamps: z._default(z.object({ enabled: z._default(z.boolean(), false), destination: z._default(z.string(), '/var/log/urunc/timestamps.log') }), { enabled: false, destination: '/var/log/urunc/timestamps.log' }),
  monitors: z._default(z.partialRecord(z.enum(HYPERVISORS), Monitor), {} as Partial<Record<HypervisorName, MonitorConfig>>),
  extra_binaries: z._default(z.object({
    virtiofsd: z._default(z.object({ path: z._default(z.string(), '/usr/libexec/virtiofsd'), options: z._default(z.string(), '--cache always --sandbox none') }), { path: '/usr/libexec/virtiofsd', options: '--cache always --sandbox none' }),
  }), { virtiofsd: { path: '/usr/libexec/virtiofsd', options: '--cache always --sandbox none' } }),
  rootfs_view: z._default(z.object({ enabled: z._default(z.boolean(), false) }), { enabled: false }),
  /**
   * Ours, for Linux guests: kernel parameters added to every command line (e.g. clock settings under
   * tcg); how long a guest may take to power off after an ACPI power-down before its hypervisor is
   * killed (0: kill at once, as urunc).
   */
  guests: z._default(z.object({ linux: z._default(z.object({
    extra_cmdline: z._default(z.string().check(z.maxLength(1024)), ''),
    powerdown_timeout_ms: z._default(z.int().check(z.gte(0)), 10_000),
  }), { extra_cmdline: '', powerdown_timeout_ms: 10_000 }) }), { linux: { extra_cmdline: '', powerdown_timeout_ms: 10_000 } }),
  /**
   * Ours: the shared-filesystem root (9p, virtio-fs) is exported read-write, as urunc does (the
   * container's writable snapshot takes the guest's writes). readonly = true serves it read-only:
   * the guest must keep its writes itself (an overlay with a tmpfs upper in its init).
   */
  shared_fs: z._default(z.object({ readonly: z._default(z.boolean(), false) }), { readonly: false }),
  /** Ours: how containers share shim daemons (src/shim/start.ts) and how long an idle daemon stays warm. */
  shim: z._default(z.object({
    grouping: z._default(z.enum(['node', 'pod']), 'node'),
    linger_ms: z._default(z.int().check(z.gte(0)), 600_000),
  }), { grouping: 'node', linger_ms: 600_000 }),
  /** Ours: a guest that shows no console output within boot_timeout_ms is killed (0: no limit). */
  watchdog: z._default(z.object({ boot_timeout_ms: z._default(z.int().check(z.gte(0)), 60_000) }), { boot_timeout_ms: 60_000 }),
});

export interface RuntimeConfig extends Omit<z.infer<typeof ConfigSchema>, 'monitors'> {
  monitor(name: HypervisorName): MonitorConfig;
  source: string;
}

/** Keys of the raw TOML that the schema dropped (the parsed value keeps every known key, defaults included). */
function unknownKeys(raw: unknown, parsed: unknown, at: string, out: string[]): void {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || typeof parsed !== 'object' || parsed === null) return;
  for (const [k, v] of Object.entries(raw)) {
    const key = at ? `${at}.${k}` : k;
    if (!(k in parsed)) out.push(key);
    else unknownKeys(v, (parsed as Record<string, unknown>)[k], key, out);
  }
}

/** Parses config text; `warn` receives one message per unknown key. */
export function parseRuntimeConfig(text: string, source: string, warn: (msg: string) => void = () => undefined): RuntimeConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err: unknown) {
    throw invalidArgument(`${source}: ${messageOf(err).split('\n')[0]}`);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw invalidArgument(`${source}: ${msgs.join('; ')}`);
  }
  const unknown: string[] = [];
  unknownKeys(raw, parsed.data, '', unknown);
  for (const k of unknown) warn(`${source}: unknown key ${k} ignored`);
  const { monitors, ...rest } = parsed.data;
  return { ...rest, source, monitor: (name) => monitors[name] ?? monitorDefaults() };
}

/** Reads the config file; a missing file gives the defaults. */
export function loadRuntimeConfig(file: string = DEFAULT_CONFIG_PATH, warn?: (msg: string) => void): RuntimeConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return parseRuntimeConfig('', `${file} (absent, defaults)`);
    throw invalidArgument(`read ${file}: ${messageOf(err)}`);
  }
  return parseRuntimeConfig(text, file, warn);
}
