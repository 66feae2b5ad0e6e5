// What issue 24 changed around a VM's limits: the container's memory limit under a monitor, how a
// terminating signal ends a guest, and where image-sized copies go.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { withVmmOverhead } from '../../src/monitors/vmm-overhead.js';
import { GRACEFUL_SHUTDOWN_ANNOTATION, gracefulShutdownMs } from '../../src/monitors/graceful-shutdown.js';
import { parseRuntimeConfig } from '../../src/monitors/runtime-config.js';
import { guestMemory } from '../../src/monitors/launcher.js';
import { HYPERVISOR_PLUGINS } from '../../src/monitors/hypervisors/index.js';
import { workDir } from '../../src/rootfs/work-dir.js';

const MiB = 2 ** 20;

describe('memory limit of a VM\'s container', () => {
  // urunc unikontainers.go Exec sizes the guest from the limit (qemu: 268 MiB for 256 MiB); the
  // cgroup then holds that guest plus vmm_overhead_mb.
  it('a limit becomes the guest\'s RAM plus the monitor\'s overhead; memory+swap keeps its distance; no limit stays none', () => {
    const guestBytes = guestMemory(256 * MiB, 256, HYPERVISOR_PLUGINS.qemu.memoryUnit) * MiB;
    expect(guestBytes).toBe(268 * MiB);
    const vm = { guestBytes, overheadBytes: 64 * MiB };
    expect(withVmmOverhead({ memory: { limit: 256 * MiB } }, vm)).toEqual({ memory: { limit: 332 * MiB } });
    // CRI without swap sets memory+swap equal to the limit: it stays equal.
    expect(withVmmOverhead({ memory: { limit: 256 * MiB, swap: 256 * MiB, reservation: 1 }, cpu: { shares: 2 } }, vm))
      .toEqual({ memory: { limit: 332 * MiB, swap: 332 * MiB, reservation: 1 }, cpu: { shares: 2 } });
    // Unlimited swap (-1), no limit, a zero limit: unchanged.
    expect(withVmmOverhead({ memory: { limit: 256 * MiB, swap: -1 } }, vm)).toEqual({ memory: { limit: 332 * MiB, swap: -1 } });
    const none: { memory?: { limit?: number }; cpu: { shares: number } } = { cpu: { shares: 2 } };
    expect(withVmmOverhead(none, vm)).toBe(none);
    expect(withVmmOverhead({ memory: { limit: 0 } }, vm)).toEqual({ memory: { limit: 0 } });
    // Update with a limit above the guest's RAM (the guest cannot grow): that limit plus the overhead.
    expect(withVmmOverhead({ memory: { limit: 512 * MiB } }, vm)).toEqual({ memory: { limit: 576 * MiB } });
  });

  it('config: vmm_overhead_mb per monitor (64 by default, 0 allowed)', () => {
    expect(parseRuntimeConfig('', 't').monitor('qemu').vmm_overhead_mb).toBe(64);
    expect(parseRuntimeConfig('[monitors.qemu]\nvmm_overhead_mb = 0\n', 't').monitor('qemu').vmm_overhead_mb).toBe(0);
    expect(parseRuntimeConfig('[monitors.firecracker]\nvmm_overhead_mb = 16\n', 't').monitor('firecracker').vmm_overhead_mb).toBe(16);
  });

  it('qemu under tcg bounds its translation cache', () => {
    const a = HYPERVISOR_PLUGINS.qemu.command('q', {
      id: 'c', arch: 'x86_64', kernel: '/k', initrd: undefined, memoryMb: 268, vcpus: 1, blocks: [], sharedFs: undefined, net: undefined, vsock: undefined,
      urunitInitrd: undefined, seccomp: false, scratch: '/run/urunc', accel: 'tcg', config: parseRuntimeConfig('', 't').monitor('qemu'),
      guest: { cmdline: '', monitorArgs: [], netArgs: undefined, blockArgs: undefined, solo5Net: 'service', solo5Block: 'storage', urunit: undefined, acpiPowerdown: false },
    }).argv.join(' ');
    expect(a).toContain('-accel tcg,tb-size=32 -cpu max');
  });
});

describe('stopping a guest', () => {
  const monitor = (toml: string) => parseRuntimeConfig(toml, 't').monitor('qemu');

  // urunc cmd/urunc/kill.go: the monitor is killed at once; a graceful power-down is opt-in.
  it('at once by default; graceful_shutdown in config.toml turns the power-down on with its timeout', () => {
    expect(gracefulShutdownMs(undefined, monitor(''), true)).toBe(0);
    expect(gracefulShutdownMs(undefined, monitor('[monitors.qemu]\ngraceful_shutdown = true\n'), true)).toBe(10_000);
    expect(gracefulShutdownMs(undefined, monitor('[monitors.qemu]\ngraceful_shutdown = true\ngraceful_shutdown_timeout_ms = 2500\n'), true)).toBe(2500);
    // A guest or monitor without a power button (no ACPI, no QMP): always at once.
    expect(gracefulShutdownMs({ [GRACEFUL_SHUTDOWN_ANNOTATION]: 'true' }, monitor('[monitors.qemu]\ngraceful_shutdown = true\n'), false)).toBe(0);
  });

  it('the container\'s annotation overrides the config: true, false, or a timeout', () => {
    const on = monitor('[monitors.qemu]\ngraceful_shutdown = true\ngraceful_shutdown_timeout_ms = 4000\n');
    const at = (v: string, m = monitor('')) => gracefulShutdownMs({ [GRACEFUL_SHUTDOWN_ANNOTATION]: v }, m, true);
    expect(at('true')).toBe(10_000);
    expect(at('TRUE', on)).toBe(4000);
    expect(at('false', on)).toBe(0);
    expect(at('30s')).toBe(30_000);
    expect(at('1500ms', on)).toBe(1500);
    expect(at('0s', on)).toBe(0);
    for (const bad of ['yes', '10', '-1s', '1.5s', '2m', '', '99999999999s']) {
      expect(() => at(bad), bad).toThrow(expect.objectContaining({ code: Code.InvalidArgument }));
    }
    expect(() => at('7200s')).toThrow(/longer than 3600s/);
  });

  it('the old [guests.linux] powerdown_timeout_ms is an unknown key now (warned, ignored)', () => {
    const warnings: string[] = [];
    parseRuntimeConfig('[guests.linux]\npowerdown_timeout_ms = 2000\n', 't', (w) => warnings.push(w));
    expect(warnings).toEqual(['t: unknown key guests.linux.powerdown_timeout_ms ignored']);
  });
});

describe('work dir', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'workdir-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('containerd\'s work link leads to its directory on disk; without it (or dangling) the bundle itself', () => {
    const disk = fs.mkdirSync(path.join(tmp, 'root', 'io.containerd.runtime.v2.task', 'default', 'c1'), { recursive: true }) as string;
    const bundle = fs.mkdirSync(path.join(tmp, 'state', 'c1'), { recursive: true }) as string;
    expect(workDir(bundle)).toBe(bundle);
    fs.symlinkSync(disk, path.join(bundle, 'work'));
    expect(workDir(bundle)).toBe(disk);
    fs.rmSync(disk, { recursive: true });
    expect(workDir(bundle)).toBe(bundle);
    // A regular directory named work is the bundle's own (not containerd's link): not used.
    const other = fs.mkdirSync(path.join(tmp, 'state', 'c2', 'work'), { recursive: true }) as string;
    expect(workDir(path.dirname(other))).toBe(path.dirname(other));
  });
});
