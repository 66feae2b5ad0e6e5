// A private containerd instance (1.6 from Debian, 1.7/2.x unpacked by scripts/fetch-newer.sh)
// with its own root, state and sockets under a temp dir; the shim's bin/ first on its PATH.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addressFileSocket } from '../../src/shim/address.js';
import { kvmUsable } from '../../src/sys/libc.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHIM_BIN = path.join(REPO, 'bin');
export const RUNTIME = 'io.containerd.urunc.v2';

export type Version = '1.6' | '1.7' | '2.x';

/**
 * Whether /dev/kvm can create a VM on this machine. Some machines of this kind have it (a nested,
 * paravirtual KVM), some do not: tests of the multiboot kernel run under qemu's `accelerator =
 * "auto"` (kvm where it works, else tcg); the few that need KVM's own behaviour are skipped without it.
 */
export const KVM = kvmUsable();
export const ALL_VERSIONS: Version[] = ['1.6', '1.7', '2.x'];

/** Versions to test: E2E_CONTAINERD="1.6,2.x" narrows the list; every one listed must exist. */
export function versionsUnderTest(): Version[] {
  const env = process.env.E2E_CONTAINERD;
  if (!env) return ALL_VERSIONS;
  return env.split(',').map((v) => v.trim()).filter((v): v is Version => (ALL_VERSIONS as string[]).includes(v));
}

export function binDir(v: Version): string {
  switch (v) {
    case '1.6': return '/usr/bin';
    case '1.7': return path.join(REPO, '.cache/containerd/trixie/usr/bin');
    case '2.x': return path.join(REPO, '.cache/containerd/sid/usr/bin');
  }
}

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export function runCmd(file: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? (sig ? 128 + 9 : 1), stdout: stdoutBytes.toString(), stderr, stdoutBytes });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export class Containerd {
  private proc: ChildProcess | undefined;
  readonly address: string;
  readonly state: string;
  readonly root: string;
  readonly configFile: string;
  private logFd: number | undefined;

  /** Extra environment for containerd (and so for the shims it starts). */
  env: NodeJS.ProcessEnv = {};

  private constructor(readonly version: Version, readonly dir: string) {
    this.address = path.join(dir, 'c.sock');
    this.state = path.join(dir, 'state');
    this.root = path.join(dir, 'root');
    this.configFile = path.join(dir, 'config.toml');
  }

  get bin(): string {
    return binDir(this.version);
  }

  get logFile(): string {
    return path.join(this.dir, 'containerd.log');
  }

  /** blockfileMb: also configure containerd's blockfile snapshotter (1.7, 2.x) with an ext4 scratch image of that size. */
  /**
   * cri: enable the CRI plugin (this sandbox image, a CNI conf dir, restrict_oom_score_adj) and add the
   * runtime with deploy/install.sh, whose shim copy containerd then runs.
   */
  static async start(version: Version, env: NodeJS.ProcessEnv = {}, opts: { blockfileMb?: number; cri?: CriOptions; privateShim?: boolean } = {}): Promise<Containerd> {
    const bin = binDir(version);
    if (!fs.existsSync(path.join(bin, 'containerd'))) {
      throw new Error(`containerd ${version} missing at ${bin}: run scripts/setup.sh`);
    }
    const c = new Containerd(version, fs.mkdtempSync(path.join(os.tmpdir(), 'ucd-')));
    // Shim daemons linger 0.5 s after their last task (default 10 min): back-to-back containers in a
    // test reuse the warm daemon, and the checks that no shim is left still hold within seconds.
    c.env = { URUNC_SHIM_LINGER_MS: '500', ...env };
    let extra = '';
    if (opts.blockfileMb) {
      const scratch = path.join(c.dir, 'blockfile-scratch.ext4');
      fs.writeFileSync(scratch, '');
      fs.truncateSync(scratch, opts.blockfileMb * 1024 * 1024);
      const r = await runCmd('mkfs.ext4', ['-q', '-F', '-E', 'root_owner=0:0', scratch]);
      if (r.code !== 0) throw new Error(`mkfs.ext4: ${r.stderr}`);
      extra = ['[plugins."io.containerd.snapshotter.v1.blockfile"]', `  scratch_file = "${scratch}"`, '  fs_type = "ext4"', '  mount_options = []', ''].join('\n');
    }
    if (opts.cri) extra += c.criBase(opts.cri);
    c.cri = opts.cri !== undefined;
    fs.writeFileSync(c.configFile, c.config() + extra);
    if (opts.cri) await c.install(opts.cri);
    else if (opts.privateShim) c.copyShim();
    await c.launch();
    return c;
  }

  private cri = false;
  /** Where containerd finds the shim: the checkout's bin/, or where deploy/install.sh put it. */
  private shimBin = SHIM_BIN;

  /** The admin's part of a CRI config (sandbox image, CNI, the test host's oom limit); the runtime comes from deploy/install.sh. */
  private criBase(o: CriOptions): string {
    if (this.version === '2.x') {
      return [
        "[plugins.'io.containerd.cri.v1.images'.pinned_images]", `  sandbox = '${o.sandboxImage}'`,
        "[plugins.'io.containerd.cri.v1.runtime']", '  restrict_oom_score_adj = true',
        "[plugins.'io.containerd.cri.v1.runtime'.cni]", "  bin_dirs = ['/usr/lib/cni']", `  conf_dir = '${o.cniConfDir}'`, '',
      ].join('\n');
    }
    return [
      '[plugins."io.containerd.grpc.v1.cri"]', `  sandbox_image = "${o.sandboxImage}"`, '  restrict_oom_score_adj = true',
      '[plugins."io.containerd.grpc.v1.cri".cni]', '  bin_dir = "/usr/lib/cni"', `  conf_dir = "${o.cniConfDir}"`, '',
    ].join('\n');
  }

  /** The shim copied into <dir>/opt as deploy/install.sh lays it out (bin, dist, koffi), for tests that change its files. */
  private copyShim(): void {
    const opt = path.join(this.dir, 'opt');
    for (const d of ['bin', 'dist', 'package.json', 'node_modules/koffi', 'node_modules/@koromix']) fs.cpSync(path.join(REPO, d), path.join(opt, d), { recursive: true });
    this.shimBin = path.join(opt, 'bin');
  }

  /** Where the shim's files are: the checkout, or the private copy. */
  get shimRoot(): string {
    return path.dirname(this.shimBin);
  }

  /** Runs deploy/install.sh against this instance: shim into <dir>/opt, link into <dir>/bin, runtime into the config. */
  private async install(o: CriOptions): Promise<void> {
    const r = await runCmd('bash', [path.join(REPO, 'deploy', 'install.sh'), '--prefix', path.join(this.dir, 'opt'), '--bindir', path.join(this.dir, 'bin'),
      '--containerd-config', this.configFile, '--urunc-config', o.runtimeConfig, '--version', this.version === '2.x' ? '3' : '2',
      '--sandboxer', o.sandboxer ?? 'podsandbox']);
    if (r.code !== 0) throw new Error(`install.sh: ${r.stderr}`);
    this.shimBin = path.join(this.dir, 'bin');
    if (o.shimHandler) {
      const block = await runCmd('bash', [path.join(REPO, 'deploy', 'containerd-config.sh'), '--version', '3', '--handler', o.shimHandler, '--sandboxer', 'shim', '--no-runc']);
      if (block.code !== 0) throw new Error(`containerd-config.sh: ${block.stderr}`);
      fs.appendFileSync(this.configFile, block.stdout);
    }
  }

  private config(): string {
    const v3 = this.version === '2.x';
    const disabled = this.cri ? ['io.containerd.internal.v1.opt', 'io.containerd.nri.v1.nri'] : v3
      ? ['io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.images', 'io.containerd.cri.v1.runtime', 'io.containerd.podsandbox.controller.v1.podsandbox', 'io.containerd.sandbox.controller.v1.shim', 'io.containerd.internal.v1.opt', 'io.containerd.nri.v1.nri']
      : ['io.containerd.grpc.v1.cri', 'io.containerd.internal.v1.opt', 'io.containerd.nri.v1.nri'];
    return [
      `version = ${v3 ? 3 : 2}`,
      `root = "${this.root}"`,
      `state = "${this.state}"`,
      `disabled_plugins = [${disabled.map((p) => `"${p}"`).join(', ')}]`,
      '[grpc]', `  address = "${this.address}"`,
      '[ttrpc]', `  address = "${this.address}.ttrpc"`,
      '[debug]', `  address = "${path.join(this.dir, 'debug.sock')}"`, '  level = "debug"',
      '',
    ].join('\n');
  }

  async launch(): Promise<void> {
    this.logFd = fs.openSync(this.logFile, 'a');
    // criu (scripts/fetch-newer.sh): containerd 2.x's CRI refuses CheckpointContainer without one on its PATH.
    const criu = path.join(REPO, '.cache', 'criu', 'bin');
    const env = { ...process.env, ...this.env, PATH: `${this.shimBin}:${this.bin}:${fs.existsSync(criu) ? `${criu}:` : ''}${process.env.PATH ?? '/usr/bin:/bin'}` };
    this.proc = spawn(path.join(this.bin, 'containerd'), ['--config', this.configFile], {
      stdio: ['ignore', this.logFd, this.logFd],
      env,
      detached: true,
    });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`containerd ${this.version} exited: ${fs.readFileSync(this.logFile, 'utf8').slice(-2000)}`);
      if (fs.existsSync(this.address)) {
        const r = await this.ctr(['version']);
        if (r.code === 0) return;
      }
      await sleep(100);
    }
    throw new Error(`containerd ${this.version} did not come up`);
  }

  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  ctr(args: string[], opts: { input?: string; ns?: string; timeoutMs?: number } = {}): Promise<CmdResult> {
    return runCmd(path.join(this.bin, 'ctr'), ['--address', this.address, '-n', opts.ns ?? 'default', ...args], opts);
  }

  /** The ctr argv (for running under `script` for a terminal). */
  ctrArgv(args: string[], ns = 'default'): string[] {
    return [path.join(this.bin, 'ctr'), '--address', this.address, '-n', ns, ...args];
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await Promise.race([done, sleep(10_000)]);
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await done;
    }
    if (this.logFd !== undefined) fs.closeSync(this.logFd);
    this.logFd = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** The shim socket containerd recorded for a task (its bundle's `address` file, either form), as unix://. */
  shimAddress(id: string, ns = 'default'): string {
    const text = fs.readFileSync(path.join(this.state, 'io.containerd.runtime.v2.task', ns, id, 'address'), 'utf8');
    return addressFileSocket(text) ?? text.trim();
  }

  /** Mount points at or below this instance's directory. */
  mounts(): string[] {
    return fs.readFileSync('/proc/mounts', 'utf8').split('\n')
      .map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '))
      .filter((m) => m.startsWith(this.dir));
  }

  /** The end of containerd's log (the shim's lines are in it): printed when a test fails, for the next reader. */
  logTail(lines = 80): string {
    const text = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
    return text.split('\n').filter((l) => !/level=(debug|info) msg="(loading plugin|skip loading|Received containerd event|event published)/.test(l)).slice(-lines).join('\n');
  }

  /** What containerd logged about dead shims and their `delete` (its stderr, failures): for failure messages. */
  cleanupLog(): string {
    const text = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
    return text.split('\n').filter((l) => /shim disconnected|cleanup warnings|failed to clean up|dead shim|failed to delete|shim grpc connection unexpected state/.test(l)).join('\n');
  }

  /** The shim daemons serving this instance (not a `start` or `delete` passing through). */
  shimDaemonPids(): number[] {
    return pidsMatching((argv) => argv.includes(this.address) && argv.includes('serve') && argv.some((a) => a.includes('containerd-shim')));
  }

  /** Processes whose argv mentions this instance (shims, containerd itself excluded). */
  shimPids(): number[] {
    return pidsMatching((argv) => argv.includes(this.address) && argv.some((a) => a.includes('containerd-shim')) );
  }

  async destroy(): Promise<void> {
    await this.stop();
    for (const m of this.mounts().sort().reverse()) await runCmd('umount', ['-l', m]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface CriOptions {
  sandboxImage: string;
  cniConfDir: string;
  /** The runtime config (/etc/urunc/config.toml) the installer names in the runtime options' ConfigPath. */
  runtimeConfig: string;
  /** 2.x: who holds a pod's namespaces (deploy/install.sh --sandboxer); default containerd's pause sandbox. */
  sandboxer?: 'podsandbox' | 'shim';
  /** 2.x: a second handler of this name with the shim sandboxer (deploy/containerd-config.sh), next to the installed one. */
  shimHandler?: string;
}

/** This runtime's qemu processes (named urunc-<id>), on the whole machine. */
/** The memory cgroup limit of a process, in bytes (cgroup v1's memory controller, or v2's memory.max). */
/** The directory of a process's memory cgroup (cgroup v1's memory controller, else the v2 unified one). */
export function memoryCgroupOf(pid: number): { dir: string; v1: boolean } {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  if (v1) return { dir: `/sys/fs/cgroup/memory${v1.split(':')[2]}`, v1: true };
  return { dir: `/sys/fs/cgroup${(lines.find((l) => l.startsWith('0::')) as string).slice(3)}`, v1: false };
}

export function memoryLimitOf(pid: number): number {
  const { dir, v1 } = memoryCgroupOf(pid);
  return Number(fs.readFileSync(path.join(dir, v1 ? 'memory.limit_in_bytes' : 'memory.max'), 'utf8'));
}

export const qemuPids = (): number[] => pidsMatching((argv) => (argv[0] ?? '').includes('qemu-system') && argv.some((a) => a.startsWith('urunc-')));

export function pidsMatching(pred: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.length && pred(argv)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (last !== undefined && last !== false) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}
