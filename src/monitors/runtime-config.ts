// /etc/urunc/config.toml: urunc's knobs (same names, same defaults) plus ours (qemu accelerator,
// machine and cpu model; the watchdog). Read at Create; the path may come from the runtime options
// (ConfigPath). Read as urunc reads it (urunc_config.go, BurntSushi/toml): a missing file means the
// defaults; a file that does not decode (bad TOML, a wrong type or value anywhere) is dropped whole
// for the defaults, with a loud warning; unknown sections and keys (e.g. [monitors.hyperlight]) are
// ignored with a warning; 0 for default_memory_mb or default_vcpus means the default; [log] level
// takes logrus's names (panic and fatal included; anything else is info).
import fs from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import * as z from 'zod/mini';
import { invalidArgument, messageOf } from '../errors.js';
import { HYPERVISORS, type HypervisorName } from './unikernel-config.js';
import { DEFAULT_CONFIG_PATH, SHIM_DEFAULTS } from './runtime-config-path.js';

export { DEFAULT_CONFIG_PATH, configPathFor } from './runtime-config-path.js';

/** A non-negative count where 0 (or absence) means the default, as urunc's uint fields. */
const countOr = (dflt: number) => z._default(z.pipe(z.int().check(z.gte(0)), z.transform((n: number) => n || dflt)), dflt);

const Monitor = z.object({
  default_memory_mb: countOr(256),
  default_vcpus: countOr(1),
  path: z._default(z.string(), ''),
  data_path: z._default(z.string(), ''),
  vhost: z._default(z.boolean(), false),
  /** Ours (qemu): "kvm", "tcg", or "auto" (kvm when /dev/kvm can create a VM, else tcg). */
  accelerator: z._default(z.enum(['auto', 'kvm', 'tcg']), 'auto'),
  /** Ours (qemu): machine type, "pc" as urunc, or "microvm". */
  machine: z._default(z.enum(['pc', 'microvm']), 'pc'),
  /** Ours (qemu): -cpu model under kvm ("host" as urunc); tcg always uses "max". */
  cpu: z._default(z.string().check(z.regex(/^[A-Za-z0-9_,+=.-]+$/)), 'host'),
  /**
   * Ours: a terminating signal first asks the guest to power off (qemu: ACPI power button through
   * QMP, for guests that handle it) and kills the monitor only after graceful_shutdown_timeout_ms.
   * Off by default: urunc's kill ends the monitor at once. A container's
   * com.urunc.unikernel.gracefulShutdown annotation overrides both.
   */
  graceful_shutdown: z._default(z.boolean(), false),
  graceful_shutdown_timeout_ms: z._default(z.int().check(z.gte(0)), 10_000),
  /**
   * Ours: memory (MiB) the monitor process may use beside its guest's RAM. With a container memory
   * limit the guest gets the limit and the container's cgroup gets the limit plus this (declare the
   * same as the RuntimeClass's overhead so the scheduler and the pod cgroup count it).
   */
  vmm_overhead_mb: z._default(z.int().check(z.gte(0)), 64),
});
export type MonitorConfig = z.infer<typeof Monitor>;

const monitorDefaults = (): MonitorConfig => Monitor.parse({});

/** logrus's level names (urunc's [log] level); anything else is info, as logrus.ParseLevel's fallback in urunc. */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'warning', 'error', 'fatal', 'panic'];
const LogLevel = z._default(z.pipe(z.string(), z.transform((s: string) => (LOG_LEVELS.includes(s.toLowerCase()) ? s.toLowerCase() : 'info'))), 'info');

const ConfigSchema = z.object({
  log: z._default(z.object({ level: LogLevel, syslog: z._default(z.boolean(), false) }), { level: 'info', syslog: false }),
  timestamps: z._default(z.object({ enabled: z._default(z.boolean(), false), destination: z._default(z.string(), '/var/log/urunc/timestamps.log') }), { enabled: false, destination: '/var/log/urunc/timestamps.log' }),
  monitors: z._default(z.record(z.string(), z.unknown()), {}),
  extra_binaries: z._default(z.object({
    virtiofsd: z._default(z.object({ path: z._default(z.string(), '/usr/libexec/virtiofsd'), options: z._default(z.string(), '--cache always --sandbox none') }), { path: '/usr/libexec/virtiofsd', options: '--cache always --sandbox none' }),
  }), { virtiofsd: { path: '/usr/libexec/virtiofsd', options: '--cache always --sandbox none' } }),
  /** urunc's [runtime]: vAccel = true lets containers ask for vAccel (com.urunc.unikernel.vAccel); off, such a container is refused. */
  runtime: z._default(z.object({ vAccel: z._default(z.boolean(), false) }), { vAccel: false }),
  rootfs_view: z._default(z.object({ enabled: z._default(z.boolean(), false) }), { enabled: false }),
  /** Ours, for Linux guests: kernel parameters added to every command line (e.g. clock settings under tcg). */
  guests: z._default(z.object({ linux: z._default(z.object({
    extra_cmdline: z._default(z.string().check(z.maxLength(1024)), ''),
  }), { extra_cmdline: '' }) }), { linux: { extra_cmdline: '' } }),
  /**
   * Ours: the shared-filesystem root (9p, virtio-fs) is exported read-write, as urunc does (the
   * container's writable snapshot takes the guest's writes). readonly = true serves it read-only:
   * the guest must keep its writes itself (an overlay with a tmpfs upper in its init).
   */
  shared_fs: z._default(z.object({ readonly: z._default(z.boolean(), false) }), { readonly: false }),
  /**
   * Ours: how containers share shim daemons (src/shim/start.ts), how long an idle daemon stays warm,
   * which protocol containerd is told to speak to it (grpc: containerd 1.7 and later), and the
   * event-loop watchdog's setting (src/shim/loop-watchdog.ts).
   */
  shim: z._default(z.object({
    grouping: z._default(z.enum(['node', 'pod']), SHIM_DEFAULTS.grouping),
    linger_ms: z._default(z.int().check(z.gte(0)), SHIM_DEFAULTS.linger_ms),
    protocol: z._default(z.enum(['ttrpc', 'grpc']), SHIM_DEFAULTS.protocol),
    /** A daemon whose event loop is blocked this long is reported, and turns new containers away for a while (0: no watchdog). */
    loop_block_ms: z._default(z.int().check(z.gte(0)), SHIM_DEFAULTS.loop_block_ms),
  }), { ...SHIM_DEFAULTS }),
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

/**
 * Parses config text; `warn` receives one message per unknown key or monitor, and the reason a file
 * that does not decode was dropped for the defaults (urunc's LoadUruncConfig falls back the same way).
 */
export function parseRuntimeConfig(text: string, source: string, warn: (msg: string) => void = () => undefined): RuntimeConfig {
  const dropped = (why: string): RuntimeConfig => {
    warn(`${source} does not decode (${why}): the whole file is ignored and the defaults are used, as urunc does`);
    return parseRuntimeConfig('', `${source} (defaults)`);
  };
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err: unknown) {
    return dropped(messageOf(err).split('\n')[0] ?? 'TOML');
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) return dropped(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  // The monitors table compares raw to raw here; each known monitor's keys are checked below.
  const unknown: string[] = [];
  unknownKeys(raw, parsed.data, '', unknown);
  const monitors: Partial<Record<HypervisorName, MonitorConfig>> = {};
  for (const [name, value] of Object.entries(parsed.data.monitors)) {
    if (!(HYPERVISORS as readonly string[]).includes(name)) {
      warn(`${source}: unknown monitor [monitors.${name}] ignored`);
      continue;
    }
    const m = Monitor.safeParse(value);
    if (!m.success) return dropped(m.error.issues.map((i) => `monitors.${name}.${i.path.join('.')}: ${i.message}`).join('; '));
    monitors[name as HypervisorName] = m.data;
    unknownKeys(value, m.data, `monitors.${name}`, unknown);
  }
  for (const k of unknown) warn(`${source}: unknown key ${k} ignored`);
  const { monitors: _raw, ...rest } = parsed.data;
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
