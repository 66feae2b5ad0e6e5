// The daemon's C heap trim after a burst of container work (src/shim/trim.ts).
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { trimWhenSettled } from '../../src/shim/trim.js';
import { limitMallocArenas, mallocTrim } from '../../src/sys/libc.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

it('trims once the event count has stood still for the settle time, and again only after new events', () => {
  let events = 0;
  const trim = vi.fn();
  const timer = trimWhenSettled(() => events, trim, 10_000);
  try {
    // Nothing happened yet: nothing to give back.
    vi.advanceTimersByTime(60_000);
    expect(trim).not.toHaveBeenCalled();
    // A burst: an event every second for 30 s keeps it waiting.
    for (let i = 0; i < 30; i++) {
      events++;
      vi.advanceTimersByTime(1_000);
    }
    expect(trim).not.toHaveBeenCalled();
    vi.advanceTimersByTime(8_000);
    expect(trim).not.toHaveBeenCalled();
    vi.advanceTimersByTime(4_000);
    expect(trim).toHaveBeenCalledTimes(1);
    // Quiet (polling publishes nothing): no second trim.
    vi.advanceTimersByTime(120_000);
    expect(trim).toHaveBeenCalledTimes(1);
    events += 3;
    vi.advanceTimersByTime(13_000);
    expect(trim).toHaveBeenCalledTimes(2);
  } finally {
    clearInterval(timer);
  }
});

it('malloc_trim is reachable in this libc and reports whether it released memory', () => {
  expect(typeof mallocTrim()).toBe('boolean');
});

it('mallopt(M_ARENA_MAX) is accepted by this libc', () => {
  expect(() => limitMallocArenas(1)).not.toThrow();
});
