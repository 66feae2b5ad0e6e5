// npm run bench: this shim against the stock runc shim, interleaved in one run on one private
// containerd, reported as medians and ratios (never asserted).
//   1. `ctr run --rm` of a busybox echo, N times each, alternating runtimes.
//   2. RSS and PSS of the shim daemon while one container sleeps, per runtime.
//   3. `ctr run --rm` of the hello unikernel through this shim against the same kernel booted by a
//      bare qemu command with the same machine arguments (the floor); the difference is what the
//      container machinery adds.
// BENCH_N (default 20) and BENCH_CONTAINERD (default "1.6", comma list allowed) tune it.
import fs from 'node:fs';
import path from 'node:path';
import { Containerd, REPO, RUNTIME, pidsMatching, sleep, type Version } from '../test/e2e/containerd.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../test/fixtures/oci-image.js';
import { GUESTS, buildGuests, unikernelImage } from '../test/fixtures/unikernel-images.js';
import { spawnSync } from 'node:child_process';
import os from 'node:os';

const HELLO = 'docker.io/library/hello-uk:bench';
const QEMU_ARGS = ['-M', 'microvm,pit=on,pic=on,rtc=on', '-accel', 'kvm', '-cpu', 'host,-arch-capabilities', '-m', '256M', '-smp', '1',
  '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot',
  '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04'];
const BENCH_CONFIG = '[monitors.qemu]\naccelerator = "kvm"\nmachine = "microvm"\ncpu = "host,-arch-capabilities"\n';

const N = Number(process.env.BENCH_N ?? 20);
const VERSIONS = (process.env.BENCH_CONTAINERD ?? '1.6').split(',').map((v) => v.trim()) as Version[];
const RUNC = 'io.containerd.runc.v2';

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

async function runEcho(c: Containerd, runtime: string, id: string): Promise<number> {
  const t0 = performance.now();
  const r = await c.ctr(['run', '--rm', '--runtime', runtime, BUSYBOX_IMAGE, id, 'echo', 'hi']);
  const ms = performance.now() - t0;
  if (r.code !== 0 || r.stdout !== 'hi\n') throw new Error(`${runtime} ${id}: exit ${r.code}: ${r.stderr}`);
  return ms;
}

async function shimMemory(c: Containerd, runtime: string, binName: string, id: string): Promise<{ rss: number; pss: number }> {
  const r = await c.ctr(['run', '-d', '--runtime', runtime, BUSYBOX_IMAGE, id, 'sleep', '600']);
  if (r.code !== 0) throw new Error(r.stderr);
  await sleep(1500);
  const pids = pidsMatching((argv) => argv.some((a) => a.includes(binName)) && argv.includes(c.address));
  const total = pids.map(memOf).reduce((a, b) => ({ rss: a.rss + b.rss, pss: a.pss + b.pss }), { rss: 0, pss: 0 });
  await c.ctr(['task', 'kill', '-s', 'KILL', id]);
  for (let i = 0; i < 50; i++) {
    if ((await c.ctr(['task', 'rm', id])).code === 0) break;
    await sleep(100);
  }
  await c.ctr(['c', 'rm', id]);
  return total;
}

async function runHello(c: Containerd, id: string): Promise<number> {
  const t0 = performance.now();
  const r = await c.ctr(['run', '--rm', '--runtime', RUNTIME, HELLO, id]);
  const ms = performance.now() - t0;
  if (r.code !== 1 || !r.stdout.includes('Hello from')) throw new Error(`hello ${id}: exit ${r.code}: ${r.stderr}`);
  return ms;
}

function runBareQemu(): number {
  const t0 = performance.now();
  const r = spawnSync('qemu-system-x86_64', [...QEMU_ARGS, '-kernel', path.join(GUESTS, 'hello.elf'), '-append', 'Unikraft -- exit=0'], { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 1 || !r.stdout.includes('Hello from')) throw new Error(`bare qemu: exit ${r.status}: ${r.stderr}`);
  return ms;
}

async function benchVersion(version: Version): Promise<Row[]> {
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
  fs.writeFileSync(path.join(cfgDir, 'config.toml'), BENCH_CONFIG);
  const c = await Containerd.start(version, { URUNC_CONFIG_PATH: path.join(cfgDir, 'config.toml') });
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
    const tar = unikernelImage({ name: HELLO, type: 'unikraft', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'annotations', cmd: ['exit=0'] });
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
    const mb = await shimMemory(c, RUNC, 'containerd-shim-runc-v2', 'mem-r');
    const mu = await shimMemory(c, RUNTIME, 'containerd-shim-urunc-v2', 'mem-u');
    fs.mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
    fs.writeFileSync(path.join(REPO, 'bench-results', `echo-${version}.json`), JSON.stringify({ version, base, ours }, null, 1));
    fs.writeFileSync(path.join(REPO, 'bench-results', `hello-${version}.json`), JSON.stringify({ version, bare, uk }, null, 1));
    const added = median(uk) - median(bare);
    return [
      { metric: `ctr run --rm echo, median (containerd ${version}, n=${N})`, baseline: median(base), ours: median(ours), unit: 'ms' },
      { metric: `ctr run --rm echo, p90 (containerd ${version})`, baseline: pct(base, 90), ours: pct(ours, 90), unit: 'ms' },
      { metric: `shim daemon RSS, 1 container (containerd ${version})`, baseline: mb.rss, ours: mu.rss, unit: 'MiB' },
      { metric: `shim daemon PSS, 1 container (containerd ${version})`, baseline: mb.pss, ours: mu.pss, unit: 'MiB' },
      { metric: `hello unikernel: bare qemu vs ctr run --rm, median (${version}, n=${N})`, baseline: median(bare), ours: median(uk), unit: 'ms' },
      { metric: `hello unikernel: bare qemu vs ctr run --rm, p90 (${version})`, baseline: pct(bare, 90), ours: pct(uk, 90), unit: 'ms' },
      { metric: `added by the container path (uk - bare) vs runc echo (${version})`, baseline: median(base), ours: added, unit: 'ms' },
    ];
  } finally {
    await c.destroy();
    fs.rmSync(cfgDir, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
for (const v of VERSIONS) rows.push(...(await benchVersion(v)));
const w = Math.max(...rows.map((r) => r.metric.length));
console.log(`${'metric'.padEnd(w)}  ${'runc shim'.padStart(10)}  ${'urunc-ts'.padStart(10)}  ratio`);
for (const r of rows) {
  console.log(`${r.metric.padEnd(w)}  ${`${r.baseline.toFixed(1)} ${r.unit}`.padStart(10)}  ${`${r.ours.toFixed(1)} ${r.unit}`.padStart(10)}  ${(r.ours / r.baseline).toFixed(2)}x`);
}
