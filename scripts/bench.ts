// npm run bench: this shim against the stock runc shim, interleaved in one run on one private
// containerd, reported as medians and ratios (never asserted).
//   1. `ctr run --rm` of a busybox echo, N times each, alternating runtimes.
//   2. (Memory: part 7, measured at rest and as the only node process.)
//   3. `ctr run --rm` of the hello unikernel through this shim against the same kernel booted by a
//      bare qemu command with the same machine arguments (the floor); the difference is what the
//      container machinery adds; then BENCH_CONCURRENT (50) hello containers started at once,
//      BENCH_CONCURRENT_ROUNDS (10) times (missing consoles counted), against as many bare boots at once. docs/latency.svg (shown in the README) plots every sample of both pairs.
//   4. Root filesystems on containerd 2.x with the blockfile snapshotter: a Linux unikernel whose
//      root is the container's block device, with its boot artifacts (66 MB kernel, initrd) read
//      from a snapshot view against copied out of a transient mount: Create-to-running time
//      (`ctr run -d`, which returns once the task is started) and the disk each container adds.
//   5. CRI pod start on containerd 2.x (RunPodSandbox + CreateContainer + StartContainer until the
//      first line is in the container's CRI log): a runc busybox pod (echo), against the hello
//      unikernel pod with containerd's pause sandbox and with this shim as the sandboxer, interleaved.
//   6. Checkpoint and restore of a counting guest on containerd 1.6, the hello kernel (kvm) and the
//      Linux guest (tcg): the state's size, the checkpoint's time (`ctr containers checkpoint
//      --task`: pause, save, resume), and restore to its next console line against a cold boot to
//      its first; and a busybox counter (criu through runc), checkpointed and restored by the stock
//      runc shim and by this one, interleaved.
//   7. Memory on containerd 1.6: the shim daemon against the runc shims with 1, 10, 30 and 100
//      busybox `sleep` containers running, measured at rest (after the daemon's settle-and-trim),
//      RSS and PSS with the daemon as the only node process (scripts/lib/memory.ts), the marginal
//      cost per container and the crossover.
//   8. The hypervisor's own memory beside its guest's RAM (what vmm_overhead_mb covers): qemu under
//      tcg with its default translation cache against the shim's tb-size=32, and under kvm where it works.
//   9. Docker as the client (Debian's Docker 28 on a private containerd 2.x, its own dockerd and
//      bridge): `docker run --rm` of a busybox echo through runc (Docker's default runtime) and
//      through this shim, and of the hello unikernel (described by its /urunc.json, launched at
//      Start) against the same bare qemu boot as part 3, interleaved.
// BENCH_N (default 20) and BENCH_CONTAINERD (default "1.6", comma list allowed) tune it;
// BENCH_ROOTFS=0 skips part 4; BENCH_TRANSPORT=0 skips ttrpc against gRPC on 1.7; BENCH_PODS=0 skips
// part 5; BENCH_CHECKPOINT=0 skips part 6; BENCH_MEMORY=0 skips part 7 (BENCH_MEMORY_COUNTS="1,10"
// measures other counts); BENCH_VMM=0 skips part 8; BENCH_DOCKER=0 skips part 9.
import fs from 'node:fs';
import path from 'node:path';
import { Containerd, REPO, RUNTIME, pidsMatching, sleep, type Version } from '../test/e2e/containerd.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../test/fixtures/oci-image.js';
import { GUESTS, buildGuests, linuxRootLayer, pauseImage, unikernelImage } from '../test/fixtures/unikernel-images.js';
import { CriClient } from '../test/e2e/cri.js';
import { ContainerState } from '../src/gen/cri/runtime/v1/api.js';
import { checkpointLayer, criuCannotDump, extractedCheckpoints, restoreTask } from '../test/e2e/checkpoint.js';
import { memoryOf, type Memory } from './lib/memory.js';
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import { kvmUsable } from '../src/sys/libc.js';
import { TCG_TB_MB } from '../src/monitors/hypervisors/qemu.js';
import { Dockerd } from '../test/e2e/docker.js';

const HELLO = 'docker.io/library/hello-uk:bench';
// kvm where /dev/kvm works, else tcg, for the shim (auto) and the bare qemu alike.
const ACCEL = kvmUsable() ? ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities'] : ['-accel', `tcg,tb-size=${TCG_TB_MB}`, '-cpu', 'max'];
const QEMU_ARGS = ['-M', 'microvm,pit=on,pic=on,rtc=on', ...ACCEL, '-m', '256M', '-smp', '1',
  '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot',
  '-device', 'isa-debug-exit,iobase=0x501,iosize=2'];
const BENCH_CONFIG = '[monitors.qemu]\naccelerator = "auto"\nmachine = "microvm"\ncpu = "host,-arch-capabilities"\n';

const N = Number(process.env.BENCH_N ?? 20);
// "none": only the other parts.
const VERSIONS = (process.env.BENCH_CONTAINERD ?? '1.6').split(',').map((v) => v.trim()).filter((v) => v !== 'none') as Version[];
const RUNC = 'io.containerd.runc.v2';
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 50);
const CONCURRENT_ROUNDS = Number(process.env.BENCH_CONCURRENT_ROUNDS ?? 10);
const samples: Array<{ version: string; base: number[]; ours: number[]; bare: number[]; uk: number[] }> = [];

interface Row {
  metric: string;
  baseline: number;
  ours: number;
  unit: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};

function memOf(pid: number): { rss: number; pss: number } {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024 };
}

/** Kills a task, removes it once stopped (retrying up to `tries` x 100 ms) and removes its container. */
async function removeContainer(c: Containerd, id: string, tries: number): Promise<void> {
  await c.ctr(['task', 'kill', '-s', 'KILL', id]);
  for (let i = 0; i < tries; i++) {
    if ((await c.ctr(['task', 'rm', id])).code === 0) break;
    await sleep(100);
  }
  await c.ctr(['c', 'rm', id]);
}

async function runEcho(c: Containerd, runtime: string, id: string): Promise<number> {
  const t0 = performance.now();
  const r = await c.ctr(['run', '--rm', '--runtime', runtime, BUSYBOX_IMAGE, id, 'echo', 'hi']);
  const ms = performance.now() - t0;
  if (r.code !== 0 || r.stdout !== 'hi\n') throw new Error(`${runtime} ${id}: exit ${r.code}: ${r.stderr}`);
  return ms;
}

async function runHello(c: Containerd, id: string): Promise<number> {
  const t0 = performance.now();
  const r = await c.ctr(['run', '--rm', '--runtime', RUNTIME, HELLO, id]);
  const ms = performance.now() - t0;
  if (r.code !== 7 || !r.stdout.includes('Hello from')) throw new Error(`hello ${id}: exit ${r.code}: ${r.stderr}`);
  return ms;
}

/** The hello kernel booted by a bare qemu command with the same machine arguments (the floor). */
// The hello kernel as a mewz guest (urunc gives mewz its exit device at 0x501): status (3 << 1) | 1.
const BARE_ARGS = [...QEMU_ARGS, '-kernel', path.join(GUESTS, 'hello.elf'), '-append', 'ip=/24 gateway='];

/** The same bare boot without blocking the event loop (for the concurrent run). */
function bareQemuAsync(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-system-x86_64', BARE_ARGS, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('close', (code) => (code === 7 && out.includes('Hello from') ? resolve() : reject(new Error(`bare qemu: exit ${code}`))));
  });
}

function runBareQemu(): number {
  const t0 = performance.now();
  const r = spawnSync('qemu-system-x86_64', BARE_ARGS, { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 7 || !r.stdout.includes('Hello from')) throw new Error(`bare qemu: exit ${r.status}: ${r.stderr}`);
  return ms;
}

async function benchVersion(version: Version): Promise<Row[]> {
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
  fs.writeFileSync(path.join(cfgDir, 'config.toml'), BENCH_CONFIG);
  // URUNC_SHIM_LINGER_MS unset: the product's default linger, not the tests' short one.
  const c = await Containerd.start(version, { URUNC_CONFIG_PATH: path.join(cfgDir, 'config.toml'), URUNC_SHIM_LINGER_MS: undefined });
  try {
    const imp = await c.ctr(['images', 'import', buildBusyboxImage(path.join(REPO, '.cache', 'images'))]);
    if (imp.code !== 0) throw new Error(imp.stderr);
    await runEcho(c, RUNC, 'warm-r');
    await runEcho(c, RUNTIME, 'warm-u');
    const base: number[] = [];
    const ours: number[] = [];
    for (let i = 0; i < N; i++) {
      // Alternate which goes first so drift affects both equally.
      if (i % 2 === 0) {
        base.push(await runEcho(c, RUNC, `r${i}`));
        ours.push(await runEcho(c, RUNTIME, `u${i}`));
      } else {
        ours.push(await runEcho(c, RUNTIME, `u${i}`));
        base.push(await runEcho(c, RUNC, `r${i}`));
      }
    }
    buildGuests();
    const tar = unikernelImage({ name: HELLO, type: 'mewz', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'annotations', cmd: ['exit=0'] });
    const ui = await c.ctr(['images', 'import', tar]);
    if (ui.code !== 0) throw new Error(ui.stderr);
    await runHello(c, 'warm-h');
    runBareQemu();
    const bare: number[] = [];
    const uk: number[] = [];
    for (let i = 0; i < N; i++) {
      if (i % 2 === 0) {
        bare.push(runBareQemu());
        uk.push(await runHello(c, `h${i}`));
      } else {
        uk.push(await runHello(c, `h${i}`));
        bare.push(runBareQemu());
      }
    }
    // 50 at once: every hello container must finish; the bare boots give the floor.
    // Every container must finish with the guest's status; a console that did not reach ctr is
    // counted and reported over CONCURRENT_ROUNDS rounds (the time is the median round's).
    const rounds: number[] = [];
    let silent = 0;
    for (let round = 0; round < CONCURRENT_ROUNDS; round++) {
      const t50 = performance.now();
      const outs = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => c.ctr(['run', '--rm', '--runtime', RUNTIME, HELLO, `c50-${round}-${i}`])));
      rounds.push(performance.now() - t50);
      const failed = outs.filter((r) => r.code !== 7);
      if (failed.length > 0) throw new Error(`${failed.length} of ${CONCURRENT} concurrent hello containers failed: ${failed[0]?.stderr}`);
      silent += outs.filter((r) => !r.stdout.includes('Hello from')).length;
    }
    const uk50 = median(rounds);
    console.log(`${CONCURRENT} hello at once x ${CONCURRENT_ROUNDS} (${version}): all ${CONCURRENT * CONCURRENT_ROUNDS} finished with the guest's status; console output missing in ${silent}`);
    const b50 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENT }, () => bareQemuAsync()));
    const bare50 = performance.now() - b50;
    samples.push({ version, base, ours, bare, uk });
    fs.mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
    fs.writeFileSync(path.join(REPO, 'bench-results', `echo-${version}.json`), JSON.stringify({ version, base, ours }, null, 1));
    fs.writeFileSync(path.join(REPO, 'bench-results', `hello-${version}.json`), JSON.stringify({ version, bare, uk }, null, 1));
    const added = median(uk) - median(bare);
    return [
      { metric: `ctr run --rm echo, median (containerd ${version}, n=${N})`, baseline: median(base), ours: median(ours), unit: 'ms' },
      { metric: `ctr run --rm echo, p90 (containerd ${version})`, baseline: pct(base, 90), ours: pct(ours, 90), unit: 'ms' },
      { metric: `hello unikernel: bare qemu vs ctr run --rm, median (${version}, n=${N})`, baseline: median(bare), ours: median(uk), unit: 'ms' },
      { metric: `hello unikernel: bare qemu vs ctr run --rm, p90 (${version})`, baseline: pct(bare, 90), ours: pct(uk, 90), unit: 'ms' },
      { metric: `added by the container path (uk - bare) vs runc echo (${version})`, baseline: median(base), ours: added, unit: 'ms' },
      { metric: `${CONCURRENT} hello at once: bare qemu vs ctr run --rm, total, median of ${CONCURRENT_ROUNDS} (${version}; ${silent} of ${CONCURRENT * CONCURRENT_ROUNDS} without console)`, baseline: bare50, ours: uk50, unit: 'ms' },
    ];
  } finally {
    await c.destroy();
    fs.rmSync(cfgDir, { recursive: true, force: true });
  }
}

/** Bytes allocated under dir (st_blocks), staying on dir's filesystem (so mounts below are not counted). */
function diskBytes(dir: string): number {
  let total = 0;
  const dev = fs.lstatSync(dir).dev;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      if (st.dev !== dev) continue;
      total += st.blocks * 512;
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return total;
}

const LINUX_BLOCK = 'docker.io/library/linux-uk:bench-block';

async function benchRootfs(): Promise<Row[]> {
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-rf-'));
  const cfg = path.join(cfgDir, 'config.toml');
  fs.writeFileSync(cfg, '[monitors.qemu]\naccelerator = "tcg"\nmachine = "microvm"\n[watchdog]\nboot_timeout_ms = 0\n');
  const c = await Containerd.start('2.x', { URUNC_CONFIG_PATH: cfg }, { blockfileMb: 192 });
  try {
    buildGuests();
    const tar = unikernelImage({
      name: LINUX_BLOCK, type: 'linux', hypervisor: 'qemu', kernel: path.join(GUESTS, 'vmlinux'), initrd: path.join(GUESTS, 'initramfs.gz'),
      describe: 'annotations', extra: { mountRootfs: 'true', rootfsType: 'block' }, layers: [linuxRootLayer()],
      cmd: ['/bin/app', 'bench'], env: ['PATH=/bin', 'SLEEP=600'],
    });
    const imp = await c.ctr(['images', 'import', '--local', '--snapshotter', 'blockfile', tar]);
    if (imp.code !== 0) throw new Error(imp.stderr);
    const snapDir = path.join(c.root, 'io.containerd.snapshotter.v1.blockfile', 'snapshots');
    // The image's own snapshot files; a removed container's file goes away with containerd's GC, a little later.
    const imageFiles = new Set(fs.readdirSync(snapDir));
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 100 && fs.readdirSync(snapDir).some((f) => !imageFiles.has(f)); i++) await sleep(100);
    };
    const one = async (id: string, view: boolean): Promise<{ ms: number; bundle: number; snapshots: number }> => {
      await settle();
      const before = diskBytes(snapDir);
      const t0 = performance.now();
      const r = await c.ctr(['run', '-d', '--snapshotter', 'blockfile', '--runtime', RUNTIME, '--annotation', `com.urunc.unikernel.snapshotView=${view}`, LINUX_BLOCK, id]);
      const ms = performance.now() - t0;
      if (r.code !== 0) throw new Error(`rootfs ${id}: ${r.stderr}`);
      const bundle = diskBytes(path.join(c.state, 'io.containerd.runtime.v2.task', 'default', id));
      const snapshots = diskBytes(snapDir) - before;
      await removeContainer(c, id, 100);
      return { ms, bundle, snapshots };
    };
    await one('warm-v', true);
    await one('warm-c', false);
    const views: Array<Awaited<ReturnType<typeof one>>> = [];
    const copies: Array<Awaited<ReturnType<typeof one>>> = [];
    const n = Math.min(N, 10);
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) {
        copies.push(await one(`c${i}`, false));
        views.push(await one(`v${i}`, true));
      } else {
        views.push(await one(`v${i}`, true));
        copies.push(await one(`c${i}`, false));
      }
    }
    fs.writeFileSync(path.join(REPO, 'bench-results', 'rootfs-2.x.json'), JSON.stringify({ copies, views }, null, 1));
    const MiB = 1024 * 1024;
    return [
      { metric: `block rootfs, Create-to-running (ctr run -d), median (2.x blockfile, n=${n})`, baseline: median(copies.map((x) => x.ms)), ours: median(views.map((x) => x.ms)), unit: 'ms' },
      { metric: 'block rootfs, disk added in the bundle per container', baseline: median(copies.map((x) => x.bundle)) / MiB, ours: median(views.map((x) => x.bundle)) / MiB, unit: 'MiB' },
      { metric: 'block rootfs, disk added in the snapshotter per container', baseline: median(copies.map((x) => x.snapshots)) / MiB, ours: median(views.map((x) => x.snapshots)) / MiB, unit: 'MiB' },
    ];
  } finally {
    await c.destroy();
    fs.rmSync(cfgDir, { recursive: true, force: true });
  }
}

function table(rows: Row[], base: string, ours: string): void {
  const w = Math.max(...rows.map((r) => r.metric.length));
  console.log(`${'metric'.padEnd(w)}  ${base.padStart(10)}  ${ours.padStart(10)}  ratio`);
  for (const r of rows) {
    const ratio = r.baseline > 0 ? `${(r.ours / r.baseline).toFixed(2)}x` : 'n/a';
    console.log(`${r.metric.padEnd(w)}  ${`${r.baseline.toFixed(1)} ${r.unit}`.padStart(10)}  ${`${r.ours.toFixed(1)} ${r.unit}`.padStart(10)}  ${ratio}`);
  }
}

/** A strip plot of every sample per series (one row each), with the median marked: bench-results/latency.svg. */
function writePlot(file: string): void {
  const series = samples.flatMap((s) => [
    { label: `echo, runc shim (${s.version})`, xs: s.base, color: '#4c78a8' },
    { label: `echo, urunc-ts (${s.version})`, xs: s.ours, color: '#f58518' },
    { label: `hello, bare qemu (${s.version})`, xs: s.bare, color: '#54a24b' },
    { label: `hello, urunc-ts (${s.version})`, xs: s.uk, color: '#e45756' },
  ]);
  const max = Math.max(...series.flatMap((x) => x.xs)) * 1.05;
  const left = 210, width = 560, rowH = 28, top = 30;
  const x = (ms: number) => left + (ms / max) * width;
  const h = top + series.length * rowH + 40;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 20}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<text x="${left}" y="18">ctr run --rm latency per run (ms); bar = median</text>`];
  series.forEach((s, i) => {
    const y = top + i * rowH + rowH / 2;
    parts.push(`<text x="${left - 8}" y="${y + 4}" text-anchor="end">${s.label}</text>`);
    for (const v of s.xs) parts.push(`<circle cx="${x(v).toFixed(1)}" cy="${y}" r="3" fill="${s.color}" fill-opacity="0.6"/>`);
    parts.push(`<line x1="${x(median(s.xs)).toFixed(1)}" x2="${x(median(s.xs)).toFixed(1)}" y1="${y - 9}" y2="${y + 9}" stroke="black" stroke-width="2"/>`);
  });
  const axisY = top + series.length * rowH + 8;
  parts.push(`<line x1="${left}" x2="${left + width}" y1="${axisY}" y2="${axisY}" stroke="black"/>`);
  for (let t = 0; t <= max; t += max > 1000 ? 200 : 100) {
    parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${axisY}" y2="${axisY + 4}" stroke="black"/><text x="${x(t)}" y="${axisY + 16}" text-anchor="middle">${t}</text>`);
  }
  parts.push('</svg>');
  fs.writeFileSync(file, `${parts.join('\n')}\n`);
}

/**
 * ttrpc against gRPC ([shim] protocol = "grpc") on containerd 1.7, the one version that can use a
 * gRPC shim: `ctr run --rm` of busybox echo through the same warm daemon, interleaved, and the
 * daemon's RSS before its first gRPC connection (grpc-js not loaded) and after the runs.
 */
async function benchTransport(): Promise<Row[]> {
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-grpc-'));
  const cfg = { ttrpc: path.join(cfgDir, 'ttrpc.toml'), grpc: path.join(cfgDir, 'grpc.toml') };
  fs.writeFileSync(cfg.ttrpc, `${BENCH_CONFIG}[shim]\nprotocol = "ttrpc"\n`);
  fs.writeFileSync(cfg.grpc, `${BENCH_CONFIG}[shim]\nprotocol = "grpc"\n`);
  const c = await Containerd.start('1.7', { URUNC_SHIM_LINGER_MS: undefined });
  const run = async (proto: 'ttrpc' | 'grpc', id: string): Promise<number> => {
    const t0 = performance.now();
    const r = await c.ctr(['run', '--rm', '--runtime', RUNTIME, '--runtime-config-path', cfg[proto], BUSYBOX_IMAGE, id, 'echo', 'hi']);
    if (r.code !== 0 || r.stdout !== 'hi\n') throw new Error(`${proto} ${id}: exit ${r.code}: ${r.stderr}`);
    return performance.now() - t0;
  };
  try {
    const imp = await c.ctr(['images', 'import', buildBusyboxImage(path.join(REPO, '.cache', 'images'))]);
    if (imp.code !== 0) throw new Error(imp.stderr);
    await run('ttrpc', 'warm-t');
    const daemon = c.shimPids()[0] as number;
    const before = memOf(daemon);
    const t: number[] = [];
    const g: number[] = [];
    for (let i = 0; i < N; i++) {
      if (i % 2 === 0) {
        t.push(await run('ttrpc', `t${i}`));
        g.push(await run('grpc', `g${i}`));
      } else {
        g.push(await run('grpc', `g${i}`));
        t.push(await run('ttrpc', `t${i}`));
      }
    }
    if (!c.shimPids().includes(daemon)) throw new Error('the warm daemon did not serve every run');
    const after = memOf(daemon);
    return [
      { metric: `ctr run --rm echo, median (containerd 1.7, n=${N})`, baseline: median(t), ours: median(g), unit: 'ms' },
      { metric: 'ctr run --rm echo, p90 (containerd 1.7)', baseline: pct(t, 90), ours: pct(g, 90), unit: 'ms' },
      { metric: 'daemon RSS: ttrpc only / after gRPC calls (grpc-js loaded)', baseline: before.rss, ours: after.rss, unit: 'MiB' },
    ];
  } finally {
    await c.destroy();
    fs.rmSync(cfgDir, { recursive: true, force: true });
  }
}

/**
 * CRI pod start on containerd 2.x: the time from RunPodSandbox until the first line of the pod's one
 * container is in its CRI log, for a runc busybox pod (`echo`), the hello unikernel in a pod with the
 * pause sandbox (handler urunc) and with this shim as the sandboxer (handler urunc-shim), in turn.
 * Each pod is removed (untimed) before the next.
 */
async function benchPods(): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pods-'));
  const cfg = path.join(dir, 'config.toml');
  fs.writeFileSync(cfg, BENCH_CONFIG);
  const cni = path.join(dir, 'cni');
  fs.mkdirSync(cni);
  const bridge = 'urbench0';
  fs.writeFileSync(path.join(cni, '10-bench.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: 'urunc-bench', plugins: [
      { type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '10.88.120.0/24' }]], dataDir: path.join(dir, 'ipam') } },
      { type: 'loopback' },
    ],
  }));
  const PAUSE = 'localhost/pause:bench';
  // The shim sandboxer's handler has no runtime options (deploy/containerd-config.sh): its config comes from the environment.
  const c = await Containerd.start('2.x', { URUNC_CONFIG_PATH: cfg, URUNC_SHIM_LINGER_MS: undefined },
    { cri: { sandboxImage: PAUSE, cniConfDir: cni, runtimeConfig: cfg, shimHandler: 'urunc-shim' } });
  const client = new CriClient(c.address);
  const live = new Set<string>();
  try {
    buildGuests();
    const hello = unikernelImage({ name: HELLO, type: 'mewz', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'both', cmd: ['exit=0'] });
    for (const tar of [pauseImage(dir, PAUSE), buildBusyboxImage(path.join(REPO, '.cache', 'images')), hello]) {
      const r = await c.ctr(['images', 'import', tar], { ns: 'k8s.io' });
      if (r.code !== 0) throw new Error(r.stderr);
    }
    for (let i = 0; i < 100 && !(await client.version().then(() => true, () => false)); i++) await sleep(100);
    type Kind = 'runc' | 'pause' | 'shim';
    const podOf: Record<Kind, { handler: string; container: object; first: RegExp }> = {
      runc: { handler: 'runc', container: { image: { image: BUSYBOX_IMAGE }, command: ['echo', 'hi'] }, first: / stdout F hi$/m },
      pause: { handler: 'urunc', container: { image: { image: HELLO } }, first: /Hello from/ },
      shim: { handler: 'urunc-shim', container: { image: { image: HELLO } }, first: /Hello from/ },
    };
    let n = 0;
    const phases: Record<string, number[][]> = { runc: [], pause: [], shim: [] };
    const start = async (kind: Kind): Promise<{ total: number; sandbox: number }> => {
      const k = podOf[kind];
      const logDirectory = path.join(dir, `logs-${++n}`);
      fs.mkdirSync(logDirectory);
      const log = path.join(logDirectory, 'c.log');
      const sandboxConfig = { metadata: { name: `p${n}`, uid: `u${n}`, namespace: 'default', attempt: 0 }, hostname: `p${n}`, logDirectory, linux: {} };
      const t0 = performance.now();
      const { podSandboxId } = await client.runPodSandbox(sandboxConfig, k.handler);
      const sandbox = performance.now() - t0;
      live.add(podSandboxId);
      const { containerId } = await client.createContainer(podSandboxId, { metadata: { name: 'c' }, logPath: 'c.log', ...k.container }, sandboxConfig);
      const created = performance.now() - t0;
      await client.startContainer(containerId);
      const started = performance.now() - t0;
      while (!(fs.existsSync(log) && k.first.test(fs.readFileSync(log, 'utf8')))) {
        if (performance.now() - t0 > 30_000) throw new Error(`${kind} pod ${n}: no first line after 30 s`);
        await sleep(2);
      }
      const total = performance.now() - t0;
      phases[kind]?.push([sandbox, created, started, total].map((x) => Math.round(x)));
      // Both containers end on their own: let them (untimed), so the pod's removal races no exit.
      for (let w = 0; w < 3000; w++) {
        if ((await client.containerStatus(containerId)).status?.state === ContainerState.CONTAINER_EXITED) break;
        await sleep(10);
      }
      await client.stopPodSandbox(podSandboxId);
      await client.removePodSandbox(podSandboxId);
      live.delete(podSandboxId);
      return { total, sandbox };
    };
    const kinds: Kind[] = ['runc', 'pause', 'shim'];
    for (const k of kinds) await start(k);
    const t: Record<Kind, number[]> = { runc: [], pause: [], shim: [] };
    const sb: Record<Kind, number[]> = { runc: [], pause: [], shim: [] };
    for (let i = 0; i < N; i++) {
      // Rotate the order so drift and warm caches affect all three alike.
      for (let j = 0; j < kinds.length; j++) {
        const k = kinds[(i + j) % kinds.length] as Kind;
        const r = await start(k);
        t[k].push(r.total);
        sb[k].push(r.sandbox);
      }
    }
    for (const k of kinds) {
      const cols = [0, 1, 2, 3].map((i) => median((phases[k] ?? []).map((p) => p[i] as number)));
      console.log(`pod start phases, ${k} (median ms since RunPodSandbox): sandbox ready ${cols[0]}, container created ${cols[1]}, started ${cols[2]}, first output ${cols[3]}`);
    }
    fs.mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
    fs.writeFileSync(path.join(REPO, 'bench-results', 'pods-2.x.json'), JSON.stringify({ total: t, runPodSandbox: sb, phases }, null, 1));
    return [
      { metric: `pod start to first output, median (2.x, n=${N}): runc busybox vs unikernel, pause sandbox`, baseline: median(t.runc), ours: median(t.pause), unit: 'ms' },
      { metric: 'pod start to first output, median: runc busybox vs unikernel, shim sandbox', baseline: median(t.runc), ours: median(t.shim), unit: 'ms' },
      { metric: 'pod start to first output, p90: runc busybox vs unikernel, shim sandbox', baseline: pct(t.runc, 90), ours: pct(t.shim, 90), unit: 'ms' },
      { metric: 'unikernel pod start, median: pause sandbox vs shim sandbox', baseline: median(t.pause), ours: median(t.shim), unit: 'ms' },
      { metric: 'RunPodSandbox alone, median: pause sandbox vs shim sandbox', baseline: median(sb.pause), ours: median(sb.shim), unit: 'ms' },
    ];
  } finally {
    // A failed run still removes its pods: no shim, pause or network namespace outlives the bench.
    for (const id of live) {
      await client.stopPodSandbox(id).catch(() => undefined);
      await client.removePodSandbox(id).catch(() => undefined);
    }
    client.close();
    if (process.env.E2E_KEEP_LOG) fs.copyFileSync(c.logFile, process.env.E2E_KEEP_LOG);
    await c.destroy();
    spawnSync('ip', ['link', 'del', bridge]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Checkpoint and restore (containerd 1.6): per guest, n cold boots of the counting guest timed to
 * its first "count" line, each checkpointed once counting (timed), then restored into a new
 * container (Tasks API, as the Go client) timed to its next "count" line. Both times include part of
 * a count period (hello 100 ms, Linux 200 ms).
 */
async function benchCheckpoint(): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cp-'));
  const kvm = path.join(dir, 'kvm.toml');
  const tcg = path.join(dir, 'tcg.toml');
  fs.writeFileSync(kvm, BENCH_CONFIG);
  fs.writeFileSync(tcg, '[monitors.qemu]\naccelerator = "tcg"\nmachine = "microvm"\n[guests.linux]\nextra_cmdline = "tsc_early_khz=2000000 tsc=reliable quiet"\n[watchdog]\nboot_timeout_ms = 0\n');
  const c = await Containerd.start('1.6', { URUNC_SHIM_LINGER_MS: undefined });
  const LINUX = 'docker.io/library/linux-uk:bench-count';
  const HELLO_COUNT = 'docker.io/library/hello-uk:bench-count';
  try {
    buildGuests();
    // unikraft: its command line carries the arguments (mewz gets none).
    const hello = unikernelImage({ name: HELLO_COUNT, type: 'unikraft', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'annotations', cmd: ['count'] });
    const linux = unikernelImage({ name: LINUX, type: 'linux', hypervisor: 'qemu', kernel: path.join(GUESTS, 'vmlinux'), initrd: path.join(GUESTS, 'initramfs.gz'),
      describe: 'annotations', cmd: ['/bin/app', 'bench'], env: ['PATH=/bin', 'COUNT=0.2'] });
    for (const tar of [hello, linux]) {
      const r = await c.ctr(['images', 'import', tar]);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    const counts = (f: string) => [...(fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '').matchAll(/^count (\d+)\r?$/gm)].length;
    const until = async (f: string, n: number, what: string): Promise<void> => {
      for (const t0 = Date.now(); counts(f) < n; await sleep(2)) if (Date.now() - t0 > 60_000) throw new Error(`${what}: no count line`);
    };
    let k = 0;
    const rows: Row[] = [];
    for (const g of [{ name: 'hello (kvm)', image: HELLO_COUNT, cfg: kvm, args: [], n: Math.min(N, 10) }, { name: 'Linux (tcg)', image: LINUX, cfg: tcg, args: [], n: Math.min(N, 5) }]) {
      const boot: number[] = [];
      const save: number[] = [];
      const restore: number[] = [];
      const sizes: number[] = [];
      for (let i = 0; i < g.n; i++) {
        const id = `cp${++k}`;
        const log = path.join(dir, `${id}.log`);
        const t0 = performance.now();
        const r = await c.ctr(['run', '-d', '--runtime', RUNTIME, '--runtime-config-path', g.cfg, '--log-uri', `file://${log}`, g.image, id, ...g.args]);
        if (r.code !== 0) throw new Error(r.stderr);
        await until(log, 1, `${g.name} boot`);
        boot.push(performance.now() - t0);
        await until(log, 2, `${g.name} count`);
        const ref = `localhost/bench-checkpoint:${id}`;
        const t1 = performance.now();
        const cp = await c.ctr(['containers', 'checkpoint', '--task', '--image', id, ref]);
        if (cp.code !== 0) throw new Error(cp.stderr);
        save.push(performance.now() - t1);
        sizes.push((await checkpointLayer(c, ref)).size / (1024 * 1024));
        await removeContainer(c, id, 50);
        const id2 = `${id}r`;
        const log2 = path.join(dir, `${id2}.log`);
        const cr = await c.ctr(['containers', 'create', '--runtime', RUNTIME, '--runtime-config-path', g.cfg, g.image, id2, ...g.args]);
        if (cr.code !== 0) throw new Error(cr.stderr);
        const t2 = performance.now();
        await restoreTask(c, id2, ref, `file://${log2}`);
        await until(log2, 1, `${g.name} restore`);
        restore.push(performance.now() - t2);
        await removeContainer(c, id2, 50);
        await c.ctr(['images', 'rm', ref]);
      }
      rows.push(
        { metric: `${g.name}: cold boot vs restore, to a count line, median (1.6, n=${g.n})`, baseline: median(boot), ours: median(restore), unit: 'ms' },
        { metric: `${g.name}: checkpoint (pause, save, resume), median`, baseline: 0, ours: median(save), unit: 'ms' },
        { metric: `${g.name}: checkpoint size (state + manifest, tar), median`, baseline: 0, ours: median(sizes), unit: 'MiB' },
      );
    }
    rows.push(...(await benchCriu(c, dir, until)));
    return rows;
  } finally {
    await c.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * An ordinary container's checkpoint (criu through runc) and restore to its next count line, by the
 * stock runc shim (the baseline column) and by this shim, interleaved, on the same containerd.
 */
async function benchCriu(c: Containerd, dir: string, until: (f: string, n: number, what: string) => Promise<void>): Promise<Row[]> {
  const broken = criuCannotDump();
  if (broken) {
    console.log(`checkpoint: the busybox criu rows are left out: ${broken}`);
    return [];
  }
  const r0 = await c.ctr(['images', 'import', buildBusyboxImage(path.join(REPO, '.cache', 'images'))]);
  if (r0.code !== 0) throw new Error(r0.stderr);
  const counter = ['sh', '-c', 'i=0; while :; do echo count $i; i=$((i+1)); sleep 0.1; done'];
  const n = Math.min(N, 10);
  // The stock runc shim leaves each restore's extracted copy in the temporary directory (containerd#10166; this shim removes it): removed at the end.
  const extracted = new Set(extractedCheckpoints());
  const m = { runc: { save: [] as number[], restore: [] as number[], size: [] as number[] }, ours: { save: [] as number[], restore: [] as number[], size: [] as number[] } };
  for (let i = 0; i < n; i++) {
    for (const [who, runtime] of [['runc', 'io.containerd.runc.v2'], ['ours', RUNTIME]] as const) {
      const id = `criu-${who}-${i}`;
      const log = path.join(dir, `${id}.log`);
      const r = await c.ctr(['run', '-d', '--runtime', runtime, '--log-uri', `file://${log}`, BUSYBOX_IMAGE, id, ...counter]);
      if (r.code !== 0) throw new Error(r.stderr);
      await until(log, 2, `${who} busybox count`);
      const ref = `localhost/bench-criu:${id}`;
      const t1 = performance.now();
      const cp = await c.ctr(['containers', 'checkpoint', '--task', '--image', id, ref]);
      if (cp.code !== 0) throw new Error(cp.stderr);
      m[who].save.push(performance.now() - t1);
      m[who].size.push((await checkpointLayer(c, ref)).size / (1024 * 1024));
      await removeContainer(c, id, 50);
      const id2 = `${id}r`;
      const log2 = path.join(dir, `${id2}.log`);
      // `--`: ctr containers create would take the counter's -c for its own --config.
      const cr = await c.ctr(['containers', 'create', '--runtime', runtime, '--', BUSYBOX_IMAGE, id2, ...counter]);
      if (cr.code !== 0) throw new Error(cr.stderr);
      const t2 = performance.now();
      await restoreTask(c, id2, ref, `file://${log2}`);
      await until(log2, 1, `${who} busybox restore`);
      m[who].restore.push(performance.now() - t2);
      await removeContainer(c, id2, 50);
      await c.ctr(['images', 'rm', ref]);
    }
  }
  for (const d of extractedCheckpoints()) if (!extracted.has(d)) fs.rmSync(path.join(os.tmpdir(), d), { recursive: true, force: true });
  return [
    { metric: `busybox (criu): checkpoint (pause, dump, resume), runc shim vs ours, median (1.6, n=${n})`, baseline: median(m.runc.save), ours: median(m.ours.save), unit: 'ms' },
    { metric: 'busybox (criu): restore to a count line, runc shim vs ours, median', baseline: median(m.runc.restore), ours: median(m.ours.restore), unit: 'ms' },
    { metric: 'busybox (criu): checkpoint size (images, tar), runc shim vs ours, median', baseline: median(m.runc.size), ours: median(m.ours.size), unit: 'MiB' },
  ];
}

/**
 * Memory at rest with n busybox `sleep` containers running, for each n, through the runc shim (one
 * Go process per container) and through this shim (one daemon). Measured 15 s after the last
 * container started: past the daemon's 10 s settle-and-trim (src/shim/trim.ts), as a node at rest.
 */
async function benchMemory(): Promise<Row[]> {
  const counts = (process.env.BENCH_MEMORY_COUNTS ?? '1,10,30,100').split(',').map(Number).filter((n) => n > 0);
  const c = await Containerd.start('1.6', { URUNC_SHIM_LINGER_MS: undefined });
  const result: Array<{ n: number; runc: Memory; ours: Memory; runcPolled: Memory; oursPolled: Memory; daemons: number }> = [];
  const rested: number[] = [];
  const warm: number[] = [];
  try {
    const imp = await c.ctr(['images', 'import', buildBusyboxImage(path.join(REPO, '.cache', 'images'))]);
    if (imp.code !== 0) throw new Error(imp.stderr);
    const measure = async (runtime: string, bin: string, n: number): Promise<{ mem: Memory; polled: Memory; pids: number }> => {
      const ids = Array.from({ length: n }, (_, i) => `mem-${bin.slice(-7, -3)}-${n}-${i}`);
      for (const id of ids) {
        const r = await c.ctr(['run', '-d', '--runtime', runtime, BUSYBOX_IMAGE, id, 'sleep', '600']);
        if (r.code !== 0) throw new Error(r.stderr);
      }
      await sleep(15_000);
      const pids = pidsMatching((argv) => argv.some((a) => a.includes(bin)) && argv.includes(c.address));
      const mem = memoryOf(pids);
      // Then as kubelet keeps it busy: every task's State and Stats, twice (what comes back of the code dropped at rest).
      for (let k = 0; k < 2; k++) {
        await c.ctr(['task', 'ls']);
        for (const id of ids) await c.ctr(['task', 'metrics', id]);
      }
      const polled = memoryOf(pids);
      for (const id of ids) await removeContainer(c, id, 50);
      return { mem, polled, pids: pids.length };
    };
    for (const n of counts) {
      const runc = await measure(RUNC, 'containerd-shim-runc-v2', n);
      const ours = await measure(RUNTIME, 'containerd-shim-urunc-v2', n);
      result.push({ n, runc: runc.mem, ours: ours.mem, runcPolled: runc.polled, oursPolled: ours.polled, daemons: ours.pids });
      console.log(`memory, ${n} running: runc shims ${runc.pids} processes RSS ${runc.mem.rss.toFixed(1)} PSS ${runc.mem.pss.toFixed(1)} MiB (polled: ${runc.polled.rss.toFixed(1)} / ${runc.polled.pss.toFixed(1)}); urunc-ts ${ours.pids} process(es) RSS ${ours.mem.rss.toFixed(1)} PSS ${ours.mem.pss.toFixed(1)} alone ${ours.mem.pssAlone.toFixed(1)} anon ${ours.mem.anon.toFixed(1)} MiB (polled: RSS ${ours.polled.rss.toFixed(1)} alone ${ours.polled.pssAlone.toFixed(1)} anon ${ours.polled.anon.toFixed(1)})`);
    }
    // What the pages dropped at rest cost the next container: a busybox echo once the daemon has
    // settled and trimmed (15 s), against one right after it, alternating.
    for (let i = 0; i < Math.min(N, 5); i++) {
      await sleep(15_000);
      rested.push(await runEcho(c, RUNTIME, `rest-${i}`));
      warm.push(await runEcho(c, RUNTIME, `warm-${i}`));
    }
  } finally {
    await c.destroy();
  }
  fs.mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
  fs.writeFileSync(path.join(REPO, 'bench-results', 'memory-1.6.json'), JSON.stringify({ result, rested, warm }, null, 1));
  const rows: Row[] = [];
  for (const r of result) {
    rows.push(
      { metric: `memory, ${r.n} running: runc shims' PSS vs the daemon's PSS alone (1.6)`, baseline: r.runc.pss, ours: r.ours.pssAlone, unit: 'MiB' },
      { metric: `memory, ${r.n} running: RSS, summed`, baseline: r.runc.rss, ours: r.ours.rss, unit: 'MiB' },
      { metric: `memory, ${r.n} running, after State/Stats polls: PSS (alone)`, baseline: r.runcPolled.pss, ours: r.oursPolled.pssAlone, unit: 'MiB' },
    );
  }
  const first = result[0];
  const last = result.at(-1);
  if (first && last && last.n > first.n) {
    // Straight lines through the smallest and largest counts; the crossover is where they meet.
    const slope = (f: (m: Memory) => number, k: 'runc' | 'ours') => (f(last[k]) - f(first[k])) / (last.n - first.n);
    const runcPer = slope((m) => m.pss, 'runc');
    const oursPer = slope((m) => m.pssAlone, 'ours');
    const runcBase = first.runc.pss - runcPer * first.n;
    const oursBase = first.ours.pssAlone - oursPer * first.n;
    rows.push(
      { metric: `memory: PSS per added container (${first.n} to ${last.n} running)`, baseline: runcPer, ours: oursPer, unit: 'MiB' },
      { metric: 'memory: crossover (containers from which the daemon uses less)', baseline: 0, ours: runcPer > oursPer ? Math.max(1, Math.ceil((oursBase - runcBase) / (runcPer - oursPer))) : Infinity, unit: 'ctrs' },
    );
  }
  if (rested.length > 0) rows.push({ metric: `echo right after another vs after the daemon's rest (pages dropped), median (n=${rested.length})`, baseline: median(warm), ours: median(rested), unit: 'ms' });
  return rows;
}

/** RSS (KiB) of qemu's anonymous mappings, split: the guest's RAM (the mapping of about its size), the tcg translation cache (rwx), the rest. */
function qemuAnon(pid: number, guestMiB: number): { guest: number; tb: number; rest: number } {
  const out = { guest: 0, tb: 0, rest: 0 };
  let kind: keyof typeof out | undefined;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(\S*)/.exec(line);
    if (m) {
      const kib = (parseInt(m[2] as string, 16) - parseInt(m[1] as string, 16)) / 1024;
      const anon = m[4] === '0' || m[5] === '[heap]' || m[5] === '[stack]';
      kind = !anon ? undefined : kib >= guestMiB * 1024 && kib <= (guestMiB + 4) * 1024 ? 'guest' : m[3]?.includes('x') ? 'tb' : 'rest';
    } else if (kind && line.startsWith('Rss:')) out[kind] += Number(line.split(/\s+/)[1]);
  }
  return out;
}

/**
 * 8. What vmm_overhead_mb (64 MiB) must cover: qemu's own anonymous memory beside its guest's RAM,
 * the guest as the shim sizes a 256 MiB limit (268 MiB), read from qemu's smaps once the guest holds
 * most of it (tcg: the Linux guest after writing 180 MiB into its tmpfs) or has booted (kvm: the hello
 * kernel; Linux does not boot under this machine kind's KVM). Under tcg with qemu's default
 * translation cache (baseline) against the shim's tb-size=32; under kvm only where /dev/kvm works.
 */
async function benchVmmOverhead(): Promise<Row[]> {
  buildGuests();
  const guest = 268;
  const common = ['-m', `${guest}M`, '-M', 'microvm,pit=on,pic=on,rtc=on', '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none',
    '-serial', 'stdio', '-monitor', 'none', '-no-reboot'];
  const linux = ['-kernel', path.join(GUESTS, 'vmlinux'), '-initrd', path.join(GUESTS, 'initramfs.gz'),
    '-append', 'console=ttyS0 panic=-1 tsc_early_khz=2000000 tsc=reliable quiet rdinit=/bin/app NET=off FILL_MB=180 SLEEP=60'];
  const hello = ['-kernel', path.join(GUESTS, 'hello.elf'), '-append', 'wait'];
  const measure = async (accel: string[], boot: string[], ready: string): Promise<{ guest: number; tb: number; rest: number }> => {
    const q = spawn('qemu-system-x86_64', [...common, ...accel, ...boot], { stdio: ['ignore', 'pipe', 'ignore'] });
    let serial = '';
    q.stdout.on('data', (d: Buffer) => (serial += d.toString()));
    try {
      for (let t = Date.now(); !serial.includes(ready); await sleep(100)) {
        if (Date.now() - t > 120_000 || q.exitCode !== null) throw new Error(`qemu: no "${ready}" on the console: ${serial.slice(-300)}`);
      }
      await sleep(500);
      return qemuAnon(q.pid as number, guest);
    } finally {
      q.kill('SIGKILL');
    }
  };
  const mib = (kib: number) => kib / 1024;
  const rows: Row[] = [];
  const dflt = await measure(['-accel', 'tcg', '-cpu', 'max'], linux, 'filled:');
  const bounded = await measure(['-accel', 'tcg,tb-size=32', '-cpu', 'max'], linux, 'filled:');
  rows.push(
    { metric: 'tcg, Linux guest: qemu anonymous memory beside the guest (default cache vs tb-size=32)', baseline: mib(dflt.tb + dflt.rest), ours: mib(bounded.tb + bounded.rest), unit: 'MiB' },
    { metric: 'tcg: of which the translation cache', baseline: mib(dflt.tb), ours: mib(bounded.tb), unit: 'MiB' },
    { metric: 'tcg: guest RAM resident (of 268 MiB)', baseline: mib(dflt.guest), ours: mib(bounded.guest), unit: 'MiB' },
  );
  if (kvmUsable()) {
    const k = await measure(['-accel', 'kvm', '-cpu', 'host,-arch-capabilities'], hello, 'Hello from');
    rows.push({ metric: 'kvm, hello kernel: qemu anonymous memory beside the guest (vmm_overhead_mb vs measured)', baseline: 64, ours: mib(k.tb + k.rest), unit: 'MiB' });
  } else {
    console.log('vmm overhead: /dev/kvm cannot create a VM here, kvm not measured');
  }
  return rows;
}

/**
 * 9. Docker 28 on containerd 2.x: `docker run --rm` of a busybox echo, Docker's default runtime (runc
 * through containerd's runc shim) against this shim; then the hello unikernel through this shim
 * against the bare qemu boot of part 3. Each pair interleaved, alternating which goes first.
 */
async function benchDocker(): Promise<Row[]> {
  const dir = Dockerd.makeDir();
  const cfg = path.join(dir, 'urunc.toml');
  fs.writeFileSync(cfg, BENCH_CONFIG);
  const c = await Containerd.start('2.x', { URUNC_CONFIG_PATH: cfg, URUNC_SHIM_LINGER_MS: undefined, DOCKER_HOST: `unix://${path.join(dir, 'd.sock')}` }, { privateShim: true });
  let d: Dockerd | undefined;
  try {
    d = await Dockerd.start('28', c, { dir, subnet: '172.30.70' });
    const dk = d;
    buildGuests();
    const hello = 'localhost/hello-uk:bench-docker';
    const tars = [buildBusyboxImage(path.join(REPO, '.cache', 'images')),
      unikernelImage({ name: hello, type: 'mewz', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'urunc.json', cmd: ['exit=0'] })];
    for (const tar of tars) {
      const r = await dk.docker(['load', '-i', tar]);
      if (r.code !== 0) throw new Error(`docker load: ${r.stderr}`);
    }
    const timed = async (args: string[], code: number, out: string): Promise<number> => {
      const t0 = performance.now();
      const r = await dk.docker(['run', '--rm', ...args]);
      const ms = performance.now() - t0;
      if (r.code !== code || !r.stdout.includes(out)) throw new Error(`docker run ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
      return ms;
    };
    const echo = (runtime: string) => timed(['--runtime', runtime, BUSYBOX_IMAGE, 'echo', 'hi'], 0, 'hi');
    const uk = () => timed(['--runtime', RUNTIME, hello], 7, 'Hello from');
    const pair = async (a: () => Promise<number>, b: () => Promise<number>): Promise<[number[], number[]]> => {
      await a();
      await b();
      const xs: number[] = [];
      const ys: number[] = [];
      for (let i = 0; i < N; i++) {
        if (i % 2 === 0) { xs.push(await a()); ys.push(await b()); } else { ys.push(await b()); xs.push(await a()); }
      }
      return [xs, ys];
    };
    const [base, ours] = await pair(() => echo('runc'), () => echo(RUNTIME));
    const [bare, hellos] = await pair(async () => runBareQemu(), uk);
    fs.mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
    fs.writeFileSync(path.join(REPO, 'bench-results', 'docker.json'), JSON.stringify({ docker: '28', containerd: '2.x', base, ours, bare, hellos }, null, 1));
    return [
      { metric: `docker run --rm busybox echo: runc vs urunc-ts, median (Docker 28, containerd 2.x, n=${N})`, baseline: median(base), ours: median(ours), unit: 'ms' },
      { metric: 'same, p90', baseline: pct(base, 90), ours: pct(ours, 90), unit: 'ms' },
      { metric: `hello unikernel: bare qemu vs docker run --rm, median (n=${N})`, baseline: median(bare), ours: median(hellos), unit: 'ms' },
      { metric: 'added by Docker and the shim (uk - bare) vs the runc echo through Docker', baseline: median(base), ours: median(hellos) - median(bare), unit: 'ms' },
    ];
  } finally {
    await d?.stop();
    await c.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
for (const v of VERSIONS) rows.push(...(await benchVersion(v)));
if (rows.length > 0) {
  table(rows, 'runc shim', 'urunc-ts');
  fs.mkdirSync(path.join(REPO, 'docs'), { recursive: true });
  writePlot(path.join(REPO, 'docs', 'latency.svg'));
}
// The other parts, each skipped with its variable set to 0: [variable, part, baseline's name, ours].
const parts: Array<[string, () => Promise<Row[]>, string, string]> = [
  ['BENCH_TRANSPORT', benchTransport, 'ttrpc', 'gRPC'],
  ['BENCH_ROOTFS', benchRootfs, 'copy', 'view'],
  ['BENCH_PODS', benchPods, 'baseline', 'urunc-ts'],
  ['BENCH_CHECKPOINT', benchCheckpoint, 'cold boot', 'urunc-ts'],
  ['BENCH_MEMORY', benchMemory, 'runc shim', 'urunc-ts'],
  ['BENCH_VMM', benchVmmOverhead, 'baseline', 'urunc-ts'],
  ['BENCH_DOCKER', benchDocker, 'baseline', 'urunc-ts'],
];
for (const [env, part, base, ours] of parts) {
  if (process.env[env] === '0') continue;
  console.log('');
  table(await part(), base, ours);
}
