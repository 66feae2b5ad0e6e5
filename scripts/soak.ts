// npm run soak: the shared daemon over many containers, on private containerds (1.6 and 2.x by
// default). Not part of the CI suite (it takes minutes and the whole machine).
//   1. SOAK_N (1000) containers, SOAK_PARALLEL (20) at a time, a random mix of busybox and hello
//      unikernels: `ctr run --rm` (exit status and console checked), attached runs killed at a
//      random moment after their first output (status 137 checked), and runs without --rm removed
//      afterwards. The daemon's RSS at rest (SOAK_REST_MS, 40 s, after the last container of a
//      burst: V8's memory reducer and the daemon's C heap trim have run by then) after the first
//      100 containers and after the last is compared.
//   2. Faults under load: 20 containers running, then SIGKILL of the shim daemon; 20 running, then a
//      containerd restart. Afterwards every container is either still controllable (killed and
//      removed normally) or already cleaned up, and the leak check finds nothing.
// The leak check after each part: no container process (qemu, sleep), no mount under the private
// containerd, no loop device of it, no netns, no tap, no view snapshot or lease, no fifo or shim
// socket of a removed container. Prints a summary (and exits 1 when a check failed).
import fs from 'node:fs';
import { memoryOf } from './lib/memory.js';
import os from 'node:os';
import path from 'node:path';
import { Containerd, REPO, RUNTIME, pidsMatching, qemuPids, sleep, waitFor, type Version } from '../test/e2e/containerd.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../test/fixtures/oci-image.js';
import { GUESTS, buildGuests, unikernelImage } from '../test/fixtures/unikernel-images.js';
import { spawn, spawnSync } from 'node:child_process';

const N = Number(process.env.SOAK_N ?? 1000);
const PARALLEL = Number(process.env.SOAK_PARALLEL ?? 20);
const REST_MS = Number(process.env.SOAK_REST_MS ?? 40_000);
const VERSIONS = (process.env.SOAK_CONTAINERD ?? '1.6,2.x').split(',').map((v) => v.trim()) as Version[];
const HELLO = 'docker.io/library/hello-uk:soak';
/** The same kernel as Unikraft, which gets its arguments: `wait` halts it until the VM is killed. */
const HELLO_WAIT = 'docker.io/library/hello-uk:soak-wait';
const CONFIG = '[monitors.qemu]\naccelerator = "auto"\nmachine = "microvm"\ncpu = "host,-arch-capabilities"\n';
/** The hello kernel as mewz: status 3 on isa-debug-exit, qemu's (3 << 1) | 1. */
const HELLO_STATUS = 7;

type Kind = 'busybox-rm' | 'hello-rm' | 'busybox-kill' | 'hello-kill' | 'busybox-keep' | 'hello-keep';
const KINDS: Kind[] = ['busybox-rm', 'hello-rm', 'busybox-kill', 'hello-kill', 'busybox-keep', 'hello-keep'];

interface Outcome { kind: Kind; id: string; ok: boolean; why?: string }

const rand = (n: number) => Math.floor(Math.random() * n);

/** A shim process's RSS; 0 for one that has just exited (a `start` or `delete` front in flight). */
function rssKiB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function waitStopped(c: Containerd, id: string): Promise<void> {
  await waitFor(`${id} STOPPED`, async () => ((await c.ctr(['task', 'ls'])).stdout.match(new RegExp(`^${id}\\s+\\d+\\s+STOPPED`, 'm')) ? true : undefined), 30_000);
}

/** One container of the given kind, checked; never throws. */
async function one(c: Containerd, kind: Kind, id: string): Promise<Outcome> {
  const hello = kind.startsWith('hello');
  const image = hello ? HELLO : BUSYBOX_IMAGE;
  const code = 1 + rand(100);
  const word = `soak-${id}`;
  try {
    if (kind.endsWith('-rm') || kind.endsWith('-keep')) {
      const args = hello ? [] : ['sh', '-c', `echo ${word}; exit ${code}`];
      const r = await c.ctr(['run', ...(kind.endsWith('-rm') ? ['--rm'] : []), '--runtime', RUNTIME, image, id, ...args], { timeoutMs: 120_000 });
      const want = hello ? HELLO_STATUS : code;
      if (r.code !== want) return { kind, id, ok: false, why: `exit ${r.code}, want ${want}: ${r.stderr.trim().slice(0, 200)}` };
      const console = hello ? 'Hello from a urunc-ts unikernel!' : word;
      if (!r.stdout.includes(console)) return { kind, id, ok: false, why: `console missing (got ${JSON.stringify(r.stdout.slice(0, 80))})` };
      if (kind.endsWith('-keep')) {
        const rm = await c.ctr(['c', 'rm', id]);
        if (rm.code !== 0) return { kind, id, ok: false, why: `c rm: ${rm.stderr.trim()}` };
      }
      return { kind, id, ok: true };
    }
    // Killed at a random moment after its first output while `ctr run --rm` is attached: its exit
    // status is the task's, and what it printed before must have reached ctr.
    const args = hello ? [] : ['sh', '-c', `echo ${word}; exec sleep 600`];
    const want = hello ? 'Hello from a urunc-ts unikernel!' : word;
    const [bin, ...argv] = c.ctrArgv(['run', '--rm', '--runtime', RUNTIME, hello ? HELLO_WAIT : image, id, ...args]);
    const child = spawn(bin as string, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const printed = new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(want)) resolve();
    }));
    const closed = new Promise<number>((resolve) => child.once('close', (code, sig) => resolve(code ?? (sig ? 128 + 9 : 1))));
    const first = await Promise.race([printed.then(() => 'printed'), closed.then(() => 'closed'), sleep(60_000).then(() => 'timeout')]);
    if (first !== 'printed') {
      child.kill('SIGKILL');
      return { kind, id, ok: false, why: `no output before ${first}: ${err.trim().slice(0, 200)}` };
    }
    await sleep(rand(1000));
    const k = await c.ctr(['task', 'kill', '-s', 'KILL', id]);
    if (k.code !== 0) return { kind, id, ok: false, why: `kill: ${k.stderr.trim()}` };
    const status = await closed;
    if (status !== 137) return { kind, id, ok: false, why: `exit ${status}, want 137: ${err.trim().slice(0, 200)}` };
    return { kind, id, ok: true };
  } catch (err: unknown) {
    return { kind, id, ok: false, why: err instanceof Error ? err.message : String(err) };
  }
}

/** What a removed container may have left; [] when nothing. */
async function leaks(c: Containerd, baseline: { snapshots: number; leases: number; fifos: number }): Promise<string[]> {
  const out: string[] = [];
  const procs = [...qemuPids(), ...pidsMatching((argv) => argv[0] === 'sleep' && argv[1] === '600')];
  if (procs.length) out.push(`container processes: ${procs.join(' ')}`);
  const mounts = c.mounts().filter((m) => m.includes('io.containerd.runtime.v2.task') || m.includes('urunc'));
  if (mounts.length) out.push(`mounts: ${mounts.slice(0, 5).join(' ')}`);
  const loops = spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(c.dir));
  if (loops.length) out.push(`loop devices: ${loops.join('; ')}`);
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.trim();
  if (netns) out.push(`netns: ${netns}`);
  const taps = spawnSync('ip', ['-o', 'link', 'show', 'type', 'tun'], { encoding: 'utf8' }).stdout.trim();
  if (taps) out.push(`taps: ${taps}`);
  const snaps = (await c.ctr(['snapshots', 'ls'])).stdout.trim().split('\n').length - 1;
  if (snaps > baseline.snapshots) out.push(`snapshots: ${snaps} (baseline ${baseline.snapshots})`);
  const leases = (await c.ctr(['leases', 'ls'])).stdout.trim().split('\n').length - 1;
  if (leases > baseline.leases) out.push(`leases: ${leases} (baseline ${baseline.leases})`);
  const fifos = countFifos(c);
  if (fifos > baseline.fifos) out.push(`fifos: ${fifos} (baseline ${baseline.fifos})`);
  const tasks = (await c.ctr(['task', 'ls'])).stdout.trim().split('\n').length - 1;
  if (tasks) out.push(`tasks left: ${tasks}`);
  const containers = (await c.ctr(['c', 'ls', '-q'])).stdout.trim();
  if (containers) out.push(`containers left: ${containers.split('\n').length}`);
  const bundles = path.join(c.state, 'io.containerd.runtime.v2.task', 'default');
  const left = fs.existsSync(bundles) ? fs.readdirSync(bundles) : [];
  if (left.length) out.push(`bundles: ${left.slice(0, 5).join(' ')}`);
  return out;
}

/** FIFOs under containerd's state (ctr's stdio fifos, the tasks' log fifos) and /run/containerd/fifo. */
function countFifos(c: Containerd): number {
  let n = 0;
  const walk = (d: string, depth: number): void => {
    if (depth > 6 || !fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isFIFO()) n++;
      else if (e.isDirectory()) walk(path.join(d, e.name), depth + 1);
    }
  };
  walk(c.state, 0);
  walk('/run/containerd/fifo', 0);
  return n;
}

async function pool<T>(n: number, parallel: number, job: (i: number) => Promise<T>, after?: (done: number) => Promise<void>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  let done = 0;
  const workers = Array.from({ length: parallel }, async () => {
    while (next < n) {
      const i = next++;
      results[i] = await job(i);
      done++;
      if (after) await after(done);
    }
  });
  await Promise.all(workers);
  return results;
}

/** 20 detached containers running, then `fault`; afterwards each is controlled or gone, and nothing leaks. */
async function faultRound(c: Containerd, name: string, fault: () => Promise<void>, baseline: Parameters<typeof leaks>[1]): Promise<string[]> {
  const ids = Array.from({ length: PARALLEL }, (_, i) => `${name}-${i}`);
  // --null-io: a detached ctr leaves its own fifo directory behind when the task is gone before `task rm`.
  await Promise.all(ids.map((id, i) => c.ctr(['run', '-d', '--null-io', '--runtime', RUNTIME, ...(i % 2 ? [HELLO_WAIT, id] : [BUSYBOX_IMAGE, id, 'sleep', '600'])])));
  await fault();
  const problems: string[] = [];
  let controlled = 0;
  let cleaned = 0;
  for (const id of ids) {
    const k = await c.ctr(['task', 'kill', '-s', 'KILL', id]);
    if (k.code === 0) {
      await waitStopped(c, id).catch(() => undefined);
      controlled++;
    }
    const rm = await c.ctr(['task', 'rm', '-f', id]);
    if (k.code !== 0 && rm.code !== 0 && !/not found/.test(rm.stderr)) problems.push(`${id}: neither controllable nor cleaned (${rm.stderr.trim()})`);
    if (k.code !== 0) cleaned++;
    await c.ctr(['c', 'rm', id]);
  }
  await sleep(2000);
  const left = await leaks(c, baseline);
  console.log(`  ${name}: ${controlled} still controllable, ${cleaned} already cleaned up; leaks: ${left.length ? left.join(' | ') : 'none'}`);
  return [...problems, ...left.map((l) => `${name}: ${l}`)];
}

async function soak(version: Version): Promise<{ lines: string[]; failed: boolean }> {
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-'));
  fs.writeFileSync(path.join(cfgDir, 'config.toml'), CONFIG);
  const c = await Containerd.start(version, { URUNC_CONFIG_PATH: path.join(cfgDir, 'config.toml'), URUNC_SHIM_LINGER_MS: undefined });
  const lines: string[] = [];
  let failed = false;
  try {
    for (const tar of [buildBusyboxImage(path.join(REPO, '.cache', 'images')),
      unikernelImage({ name: HELLO, type: 'mewz', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'annotations' }),
      unikernelImage({ name: HELLO_WAIT, type: 'unikraft', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'annotations', cmd: ['wait'] })]) {
      const r = await c.ctr(['images', 'import', tar]);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    const baseline = { snapshots: (await c.ctr(['snapshots', 'ls'])).stdout.trim().split('\n').length - 1, leases: (await c.ctr(['leases', 'ls'])).stdout.trim().split('\n').length - 1, fifos: countFifos(c) };
    // The daemon's RSS after every 100 containers (with up to PARALLEL in flight), and at rest (none
    // in flight, REST_MS later) after the first 100 and after the last, which the goal compares.
    const series: number[] = [];
    const rss = () => c.shimPids().map(rssKiB).reduce((a, b) => a + b, 0);
    const job = (i: number) => one(c, KINDS[rand(KINDS.length)] as Kind, `s${i}`);
    const sample = async (done: number) => {
      if (done % 100 === 0) series.push(rss());
    };
    const t0 = performance.now();
    const first = Math.min(100, N);
    const outcomes = await pool(first, PARALLEL, job, sample);
    await sleep(REST_MS);
    const rss100 = rss();
    const mem100 = memoryOf(c.shimPids());
    outcomes.push(...await pool(N - first, PARALLEL, (i) => job(first + i), (done) => sample(first + done)));
    const secs = (performance.now() - t0 - REST_MS) / 1000;
    await sleep(REST_MS);
    const rssEnd = rss();
    const memEnd = memoryOf(c.shimPids());
    const bad = outcomes.filter((o) => !o.ok);
    const byKind = KINDS.map((k) => `${k} ${outcomes.filter((o) => o.kind === k).length}`).join(', ');
    const left = await leaks(c, baseline);
    const growth = rss100 ? (rssEnd - rss100) / rss100 : 0;
    lines.push(`containerd ${version}: ${N} containers (${byKind}), ${PARALLEL} at a time, in ${secs.toFixed(0)} s: ${N - bad.length} correct, ${bad.length} wrong`);
    for (const b of bad.slice(0, 10)) lines.push(`  wrong: ${b.id} (${b.kind}): ${b.why}`);
    lines.push(`  daemon RSS at rest after 100: ${(rss100 / 1024).toFixed(1)} MiB, after ${N}: ${(rssEnd / 1024).toFixed(1)} MiB (${(growth * 100).toFixed(1)} %); every 100, in flight: ${series.map((k) => (k / 1024).toFixed(0)).join(' ')} MiB`);
    lines.push(`  of which anonymous (heap, stacks): ${mem100.anon.toFixed(1)} / ${memEnd.anon.toFixed(1)} MiB, file pages: ${(mem100.rss - mem100.anon).toFixed(1)} / ${(memEnd.rss - memEnd.anon).toFixed(1)} MiB`);
    lines.push(`  leaks: ${left.length ? left.join(' | ') : 'none'}`);
    if (bad.length || left.length || growth > 0.1) failed = true;
    console.log(lines.join('\n'));

    const faults: string[] = [];
    faults.push(...await faultRound(c, 'kill-daemon', async () => {
      for (const pid of c.shimPids()) process.kill(pid, 'SIGKILL');
      await sleep(3000);
    }, baseline));
    faults.push(...await faultRound(c, 'restart-containerd', () => c.restart(), baseline));
    lines.push(`  faults: SIGKILL of the daemon and a containerd restart, 20 containers each: ${faults.length ? faults.join(' | ') : 'every container controllable or cleaned up, nothing left'}`);
    if (faults.length) failed = true;
    console.log(lines[lines.length - 1]);
  } finally {
    await c.destroy();
    fs.rmSync(cfgDir, { recursive: true, force: true });
  }
  return { lines, failed };
}

async function main(): Promise<void> {
  buildGuests();
  const all: string[] = [`soak ${new Date().toISOString().slice(0, 10)}`];
  let failed = false;
  for (const v of VERSIONS) {
    const r = await soak(v);
    all.push(...r.lines);
    failed ||= r.failed;
  }
  console.log(`\n${all.join('\n')}`);
  fs.mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
  fs.writeFileSync(path.join(REPO, 'bench-results', 'soak.txt'), `${all.join('\n')}\n`);
  process.exit(failed ? 1 : 0);
}

await main();
