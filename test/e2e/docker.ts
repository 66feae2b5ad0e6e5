// A private Docker engine (Debian's dockerd and docker CLI, unpacked by scripts/fetch-newer.sh: sid
// 28.x, trixie 26.x) on a private containerd, with its own data and exec roots, socket, and a bridge
// network of its own (a Linux bridge this helper makes, with no iptables changes on the host).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, runCmd, sleep, waitFor, type CmdResult, type Containerd } from './containerd.js';

export type DockerVersion = '28' | '26';
/** The bridge network's MTU: not the default, so that a guest showing it got it from the network. */
export const DOCKER_MTU = 1400;
const SUITE: Record<DockerVersion, string> = { 28: 'sid', 26: 'trixie' };

export function dockerBin(v: DockerVersion): { dockerd: string; docker: string; dir: string } {
  const root = path.join(REPO, '.cache', 'docker', SUITE[v], 'usr');
  return { dockerd: path.join(root, 'sbin', 'dockerd'), docker: path.join(root, 'bin', 'docker'), dir: root };
}

export class Dockerd {
  private proc: ChildProcess | undefined;
  readonly socket: string;
  private constructor(readonly version: DockerVersion, readonly dir: string, readonly bridge: string, readonly subnet: string) {
    this.socket = path.join(dir, 'd.sock');
  }

  /** The bridge's /24 is `${subnet}.0`, the host is `${subnet}.1` on it. `containerdStore`: Docker's containerd image store instead of overlay2. */
  /** A directory for a Docker engine (its socket at <dir>/d.sock), made before the containerd that must know the socket. */
  static makeDir(): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), 'udk-'));
  }

  static async start(v: DockerVersion, c: Containerd, o: { dir: string; subnet: string; containerdStore?: boolean }): Promise<Dockerd> {
    const bin = dockerBin(v);
    if (!fs.existsSync(bin.dockerd)) throw new Error(`dockerd ${v} missing at ${bin.dockerd}: run scripts/setup.sh`);
    const dir = o.dir;
    const bridge = `urd${path.basename(dir).slice(-6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
    const d = new Dockerd(v, dir, bridge, o.subnet);
    for (const args of [['link', 'add', bridge, 'type', 'bridge'], ['addr', 'add', `${o.subnet}.1/24`, 'dev', bridge], ['link', 'set', bridge, 'up']]) {
      const r = await runCmd('ip', args);
      if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    }
    const config = path.join(dir, 'daemon.json');
    fs.writeFileSync(config, JSON.stringify(o.containerdStore ? { features: { 'containerd-snapshotter': true } } : {}));
    const log = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
    d.proc = spawn(bin.dockerd, [
      '--config-file', config, '--containerd', c.address, '-H', `unix://${d.socket}`,
      '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'd.pid'),
      '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--bridge', bridge, '--mtu', String(DOCKER_MTU),
    ], { stdio: ['ignore', log, log], env: { ...process.env, PATH: `${path.join(bin.dir, 'sbin')}:${path.join(bin.dir, 'bin')}:${process.env.PATH ?? ''}` } });
    fs.closeSync(log);
    await waitFor(`dockerd ${v}`, async () => ((await d.docker(['version', '--format', '{{.Server.Version}}'])).code === 0 ? true : undefined), 60_000)
      .catch((err: unknown) => { throw new Error(`${String(err)}\n${d.log().slice(-2000)}`); });
    return d;
  }

  docker(args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<CmdResult> {
    return runCmd(dockerBin(this.version).docker, ['-H', `unix://${this.socket}`, ...args], { timeoutMs: opts.timeoutMs ?? 120_000, input: opts.input });
  }

  log(): string {
    return fs.readFileSync(path.join(this.dir, 'dockerd.log'), 'utf8');
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null) {
      p.kill('SIGTERM');
      for (let i = 0; i < 150 && p.exitCode === null && p.signalCode === null; i++) await sleep(100);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    await runCmd('ip', ['link', 'del', this.bridge]);
    for (const m of fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(this.dir)).sort().reverse()) {
      await runCmd('umount', ['-l', m]);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
