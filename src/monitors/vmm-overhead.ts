// A container's memory limit when its process is a VM monitor. The guest is sized from the limit (as
// urunc sizes it: 268 MiB for 256 MiB on qemu) and the monitor needs memory of its own beside the
// guest's RAM (its code and heap, device emulation, tcg's translation cache, virtiofsd in the same
// cgroup). Charged against the bare limit, a guest using most of its memory got the monitor
// OOM-killed by the host. So the cgroup's limit becomes max(limit, guest RAM) + vmm_overhead_mb:
// a guest can use all of its RAM and meets only its own OOM killer, and the node accounts a known
// amount per container. A leaf module: Update applies it without loading the launcher.

export interface VmMemory {
  /** The guest's RAM as the monitor maps it. */
  guestBytes: number;
  /** The monitor's own share (vmm_overhead_mb). */
  overheadBytes: number;
}

export interface MemoryResources {
  limit?: number;
  swap?: number;
  [k: string]: unknown;
}

/**
 * OCI resources with a positive memory limit raised to cover the VM (a positive memory+swap limit
 * keeps its distance above it); resources without a limit are returned as they are.
 */
export function withVmmOverhead<T extends { memory?: MemoryResources }>(resources: T, vm: VmMemory): T {
  const m = resources.memory;
  if (!m || !(typeof m.limit === 'number' && m.limit > 0)) return resources;
  const limit = Math.max(m.limit, vm.guestBytes) + vm.overheadBytes;
  const memory: MemoryResources = { ...m, limit };
  if (typeof m.swap === 'number' && m.swap > 0) memory.swap = m.swap + (limit - m.limit);
  return { ...resources, memory };
}
