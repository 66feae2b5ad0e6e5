// runc's stats JSON (libcontainer types.Stats) -> io.containerd.cgroups.v1.Metrics in an Any.
import * as z from 'zod/mini';
import { Metrics } from '../gen/cgroups/v1/metrics.js';

const n = z.optional(z.number().check(z.nonnegative()));
const entry = z.optional(z.looseObject({ limit: n, usage: n, max: n, failcnt: n }));
const RuncStats = z.looseObject({
  cpu: z.optional(z.looseObject({
    usage: z.optional(z.looseObject({ total: n, kernel: n, user: n, percpu: z.optional(z.array(z.number())) })),
    throttling: z.optional(z.looseObject({ periods: n, throttledPeriods: n, throttledTime: n })),
  })),
  memory: z.optional(z.looseObject({ cache: n, usage: entry, swap: entry, kernel: entry, kernelTCP: entry, raw: z.optional(z.record(z.string(), z.number())) })),
  pids: z.optional(z.looseObject({ current: n, limit: n })),
});

const big = (v: number | undefined): bigint => BigInt(Math.trunc(v ?? 0));
const mem = (e: z.infer<typeof entry>) =>
  e ? { limit: big(e.limit), usage: big(e.usage), max: big(e.max), failcnt: big(e.failcnt) } : undefined;

export function encodeStats(raw: unknown): { typeUrl: string; value: Uint8Array } {
  const s = RuncStats.parse(raw ?? {});
  const m = s.memory;
  const value = Metrics.encode({
    pids: s.pids ? { current: big(s.pids.current), limit: big(s.pids.limit) } : undefined,
    cpu: s.cpu ? {
      usage: s.cpu.usage ? { total: big(s.cpu.usage.total), kernel: big(s.cpu.usage.kernel), user: big(s.cpu.usage.user), perCpu: (s.cpu.usage.percpu ?? []).map(big) } : undefined,
      throttling: s.cpu.throttling ? { periods: big(s.cpu.throttling.periods), throttledPeriods: big(s.cpu.throttling.throttledPeriods), throttledTime: big(s.cpu.throttling.throttledTime) } : undefined,
    } : undefined,
    memory: m ? {
      cache: big(m.cache), rss: big(m.raw?.rss), totalCache: big(m.raw?.total_cache), totalRss: big(m.raw?.total_rss),
      usage: mem(m.usage), swap: mem(m.swap), kernel: mem(m.kernel), kernelTcp: mem(m.kernelTCP),
    } : undefined,
  }).finish();
  return { typeUrl: 'io.containerd.cgroups.v1.Metrics', value };
}
