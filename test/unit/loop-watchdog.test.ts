// The daemon's event-loop watchdog (src/shim/loop-watchdog.ts with bin/urunc-loopwatch): a loop
// blocked past the setting is reported from outside it, with what it last started, and the daemon
// turns new containers away until it has run unblocked for RECOVERY_MS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { RECOVERY_MS, startLoopWatchdog } from '../../src/shim/loop-watchdog.js';
import { sleep } from '../e2e/containerd.js';

it('a blocked loop is reported while it is blocked (how long, what it was doing), and again when it runs; meanwhile the daemon is unhealthy', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loopwatch-'));
  const log = path.join(dir, 'log');
  fs.writeFileSync(log, '');
  const gaps: number[] = [];
  const wd = startLoopWatchdog(300, () => log, (ms) => gaps.push(ms));
  try {
    await sleep(400);
    expect(wd.unhealthy()).toBe(false);
    wd.doing('containerd.task.v2.Task/Create (namespace k8s.io)');
    await sleep(200);
    const t0 = Date.now();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 900); // the loop blocked
    // Reported from outside while the loop was blocked, before it ran again.
    const during = fs.readFileSync(log, 'utf8');
    expect(during).toMatch(/"msg":"event loop blocked[^"]*","blockedMs":\d+,"doing":"containerd\.task\.v2\.Task\/Create \(namespace k8s\.io\)"/);
    expect(wd.unhealthy()).toBe(true);
    await sleep(300);
    expect(fs.readFileSync(log, 'utf8')).toMatch(/"msg":"event loop running again","blockedMs":(\d+)/);
    // The loop saw the gap itself, and stays unhealthy for RECOVERY_MS.
    expect(gaps.length).toBe(1);
    expect(gaps[0]).toBeGreaterThanOrEqual(800);
    expect(wd.unhealthy()).toBe(true);
    expect(wd.unhealthy(t0 + 900 + RECOVERY_MS + 1_000)).toBe(false);
  } finally {
    wd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('0 is no watchdog: nothing spawned, never unhealthy', () => {
  const wd = startLoopWatchdog(0, () => undefined, () => undefined);
  expect(wd.unhealthy()).toBe(false);
  wd.stop();
});
