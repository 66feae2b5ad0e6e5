// The daemon's event-loop watchdog. One daemon serves every container of a namespace, so a blocked
// loop (a kernel call that does not return, a runaway computation) stalls them all, and a timer on
// that loop cannot see it while it happens. bin/urunc-loopwatch (native/loopwatch.c), a small
// process of its own, can: the loop writes it a byte every 100 ms and a line naming each operation
// it starts; when the bytes stop for longer than the setting, it writes into containerd's log how
// long and what the loop last started (and again when it runs). A Node worker thread would do the
// same for about 7.5 MiB of the daemon's memory; the process costs a fraction of one.
// Back on its feet, the loop sees the gap itself and turns new containers away for RECOVERY_MS (the
// front gives them a daemon of their own group). Running guests are never touched.
import path from 'node:path';
import { installedBinary } from '../sys/bin-path.js';
import { spawnOwned } from '../sys/spawn.js';

const BEAT_MS = 100;
/** How long the loop must have run unblocked before the daemon takes new containers again. */
export const RECOVERY_MS = 10_000;
/** The default setting: a loop blocked this long is reported (URUNC_SHIM_LOOP_BLOCK_MS, `[shim] loop_block_ms`; 0 turns it off). */
export const DEFAULT_LOOP_BLOCK_MS = 2_000;

export interface LoopWatchdog {
  /** Records what the loop is starting (a task call, a forwarded start), for the report of a block. */
  doing(what: string): void;
  /** Whether the loop was blocked less than RECOVERY_MS ago: new containers then go elsewhere. */
  unhealthy(now?: number): boolean;
  stop(): void;
}

const NONE: LoopWatchdog = { doing: () => undefined, unhealthy: () => false, stop: () => undefined };

/** `blockedMs` 0 (or no binary) is no watchdog. `logFile` names where its report goes now (a live task's log fifo). */
export function startLoopWatchdog(blockedMs: number, logFile: () => string | undefined, onBlocked: (ms: number) => void): LoopWatchdog {
  const binary = blockedMs > 0 ? installedBinary('urunc-loopwatch') : undefined;
  if (!binary) return NONE;
  const child = spawnOwned(binary, [String(blockedMs)], { stdio: ['pipe', 'ignore', 'ignore'] });
  const pipe = child.stdin;
  pipe?.on('error', () => undefined); // the watchdog gone: the daemon goes on without it
  child.on('error', () => undefined);
  const send = (s: string) => {
    if (pipe && !pipe.destroyed && pipe.writableLength < 65_536) pipe.write(s);
  };
  let lastBeat = Date.now();
  let unhealthyUntil = 0;
  let logged: string | undefined;
  // Where the report goes, sent whenever it changes (and before the first call: a daemon's first
  // Create may block its loop before the first beat).
  const refreshLog = () => {
    const file = logFile();
    if (file !== logged && file !== undefined && !/[\n\0]/.test(file)) {
      send(`L${file}\n`);
      logged = file;
    }
  };
  refreshLog();
  const beat = setInterval(() => {
    const now = Date.now();
    const gap = now - lastBeat;
    if (gap > blockedMs) {
      unhealthyUntil = now + RECOVERY_MS;
      onBlocked(gap);
    }
    lastBeat = now;
    refreshLog();
    send('B');
  }, BEAT_MS);
  beat.unref();
  child.unref();
  (pipe as unknown as { unref?: () => void } | null)?.unref?.();
  return {
    doing(what) {
      refreshLog();
      send(`D${what.replace(/[\n\0]/g, ' ').slice(0, 400)}\n`);
    },
    unhealthy(now = Date.now()) {
      // (Past the recovery time, or the beat late right now: a loop that is running this is not blocked.)
      return now < unhealthyUntil || Date.now() - lastBeat > blockedMs;
    },
    stop() {
      clearInterval(beat);
      pipe?.end();
    },
  };
}

export const logFifoOf = (bundle: string | undefined): string | undefined => (bundle ? path.join(bundle, 'log') : undefined);
