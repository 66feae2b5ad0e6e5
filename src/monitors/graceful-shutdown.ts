// How a terminating signal ends a unikernel: at once (SIGKILL to the monitor, as urunc's kill), or
// first through the guest's own power-off (opt-in). The per-monitor setting in config.toml is the
// default; a container's com.urunc.unikernel.gracefulShutdown annotation overrides it with
// "true"/"false" or a timeout ("30s", "1500ms": on, with that bound).
import { invalidArgument } from '../errors.js';
import type { MonitorConfig } from './runtime-config.js';

export const GRACEFUL_SHUTDOWN_ANNOTATION = 'com.urunc.unikernel.gracefulShutdown';

/** The longest power-down a container may ask for: kubelet's grace period still bounds the stop. */
const MAX_TIMEOUT_MS = 3_600_000;

/**
 * Milliseconds a guest gets to power off after the power button before its monitor is killed; 0
 * when the stop is immediate (the default, or a guest/monitor pair without a power button).
 */
export function gracefulShutdownMs(annotations: Record<string, string> | undefined, config: MonitorConfig, guestCanPowerOff: boolean): number {
  const raw = annotations?.[GRACEFUL_SHUTDOWN_ANNOTATION];
  let ms = config.graceful_shutdown ? config.graceful_shutdown_timeout_ms : 0;
  if (raw !== undefined) {
    const v = raw.trim().toLowerCase();
    const m = /^(\d{1,10})(ms|s)$/.exec(v);
    if (v === 'true' || v === '1') ms = config.graceful_shutdown_timeout_ms;
    else if (v === 'false' || v === '0') ms = 0;
    else if (m) ms = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
    else throw invalidArgument(`${GRACEFUL_SHUTDOWN_ANNOTATION}: expected true, false or a timeout such as 30s or 1500ms, got ${JSON.stringify(raw)}`);
    if (ms > MAX_TIMEOUT_MS) throw invalidArgument(`${GRACEFUL_SHUTDOWN_ANNOTATION}: ${raw} is longer than ${MAX_TIMEOUT_MS / 1000}s`);
  }
  return guestCanPowerOff ? ms : 0;
}
