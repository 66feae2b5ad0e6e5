// Docker as a client (Debian's dockerd 28 from sid and 26 from trixie) on a private containerd 1.7
// and 2.x, with `docker run --runtime io.containerd.urunc.v2`, as urunc's documentation starts its
// users. What the shim sees from Docker differs from ctr and the CRI: the root is mounted by Docker
// (no rootfs mounts at Create), the network namespace has no path and gets its interface after
// Create (28) or from Docker's prestart hook (26), and with Docker's default image store containerd
// has no image for the container.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Containerd, RUNTIME, memoryCgroupOf, qemuPids, runCmd, versionsUnderTest, waitFor } from './containerd.js';
import { DOCKER_MTU, Dockerd, type DockerVersion } from './docker.js';
import { buildBusyboxImage } from '../../scripts/lib/oci-image.js';
import { GUESTS, REPO, buildGuests, unikernelImage } from '../fixtures/unikernel-images.js';

const CONFIG = '[monitors.qemu]\naccelerator = "tcg"\nmachine = "microvm"\n[guests.linux]\nextra_cmdline = "tsc_early_khz=2000000 tsc=reliable quiet"\n';
const BUSYBOX = 'docker.io/library/busybox:urunc-test';
const HELLO_JSON = 'localhost/hello-uk:docker-json';
const HELLO_PLAIN = 'localhost/hello-uk:docker-annotations';
const HELLO_LABELS = 'localhost/hello-uk:docker-labels';
const LINUX = 'localhost/linux-uk:docker';
const UK_KEYS = { 'com.urunc.unikernel.unikernelType': 'mewz', 'com.urunc.unikernel.hypervisor': 'qemu', 'com.urunc.unikernel.binary': '/unikernel/hello.elf' };

function images(): string[] {
  buildGuests();
  const kernel = path.join(GUESTS, 'hello.elf');
  return [
    buildBusyboxImage(path.join(REPO, '.cache', 'images')),
    // Described only by /urunc.json in its files (urunc's GetUnikernelConfig reads it from spec.Root.Path).
    unikernelImage({ name: HELLO_JSON, type: 'unikraft', hypervisor: 'qemu', kernel, describe: 'urunc.json', cmd: ['hello'] }),
    // Not described at all (an empty urunc.json): runs as a unikernel only with --annotation.
    unikernelImage({ name: HELLO_PLAIN, type: 'mewz', hypervisor: 'qemu', kernel, describe: 'urunc.json', uruncJsonOverride: '{}', cmd: ['ignored'] }),
    // Described only by its config's labels (bunny's LABEL lines).
    unikernelImage({ name: HELLO_LABELS, type: 'mewz', hypervisor: 'qemu', kernel, describe: 'labels', cmd: ['ignored'] }),
    unikernelImage({
      name: LINUX, type: 'linux', hypervisor: 'qemu', kernel: path.join(GUESTS, 'vmlinux'), initrd: path.join(GUESTS, 'initramfs.gz'),
      describe: 'both', cmd: ['/bin/app', 'in-docker'], env: ['PATH=/bin', 'GREETING=docker', 'SLEEP=300'],
    }),
  ];
}

const combos = versionsUnderTest().filter((v) => v !== '1.6').flatMap((v) => (['28', '26'] as DockerVersion[]).map((d) => ({ version: v, docker: d })));

const suites = combos.map((c, i) => ({ ...c, subnet: `172.30.${40 + i}`, containerdStore: false })).concat(
  // Docker's containerd image store: 28 names the image in the container record, 26 does not (labels then come from Docker's API).
  combos.filter((c) => c.version === '2.x').map((c, i) => ({ ...c, subnet: `172.30.${50 + i}`, containerdStore: true })),
);

for (const { version, docker, subnet, containerdStore } of suites) describe(`Docker ${docker} on containerd ${version}${containerdStore ? ', containerd image store' : ''}`, () => {
  let c: Containerd;
  let d: Dockerd;
  let dir: string;

  beforeAll(async () => {
    dir = Dockerd.makeDir();
    const cfg = path.join(dir, 'urunc.toml');
    fs.writeFileSync(cfg, CONFIG);
    // Docker passes no runtime options: the config comes from containerd's environment; Docker's API from DOCKER_HOST.
    c = await Containerd.start(version, { URUNC_CONFIG_PATH: cfg, DOCKER_HOST: `unix://${path.join(dir, 'd.sock')}` }, { privateShim: true });
    d = await Dockerd.start(docker, c, { dir, subnet, containerdStore });
    for (const tar of images()) {
      const r = await d.docker(['load', '-i', tar]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 180_000);

  afterAll(async () => {
    if (process.env.KEEP_LOG) fs.copyFileSync(c.logFile, process.env.KEEP_LOG);
    await d?.stop();
    await c?.destroy();
  });

  const run = (args: string[], timeoutMs = 90_000) => d.docker(['run', '--runtime', RUNTIME, ...args], { timeoutMs });

  /** Nothing of the containers is left: no VM, no shim, no tap, no mount under containerd's or Docker's dirs, no bundle. */
  const expectClean = async () => {
    await waitFor('no qemu', () => (qemuPids().length === 0 ? true : undefined), 20_000);
    // The shim daemon leaves after its last task (it lingers 0.5 s in these tests).
    await waitFor('no shim', () => (c.shimPids().length === 0 ? true : undefined), 20_000);
    // No tap anywhere on the host (the guests' taps lived in the containers' namespaces, gone with them).
    expect((await runCmd('ip', ['-o', 'link', 'show'])).stdout).not.toMatch(/ukt[0-9a-f]{10}/);
    expect(c.mounts()).toEqual([]);
    // (Docker keeps its data root and overlay2 dir bind-mounted on themselves: those are its own.)
    const ours = [path.join(dir, 'data'), path.join(dir, 'data', 'overlay2')];
    const below = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${dir}/`) && !ours.includes(m));
    expect(below).toEqual([]);
    expect((await d.docker(['ps', '-aq'])).stdout.trim()).toBe('');
    // No bundle left in containerd's state for Docker's namespace.
    const bundles = path.join(c.state, 'io.containerd.runtime.v2.task', 'moby');
    expect(fs.existsSync(bundles) ? fs.readdirSync(bundles) : []).toEqual([]);
  };

  it('busybox on the bridge network: run --rm, -d, exec, logs, stop, kill, rm', async () => {
    const once = await run(['--rm', BUSYBOX, 'sh', '-c', 'echo hello-$((6*7)); cat /proc/net/dev']);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toContain('hello-42');
    expect(once.stdout).toContain('eth0');
    const det = await run(['-d', '--name', 'bb', BUSYBOX, 'sh', '-c', 'echo started; exec sleep 300']);
    expect(det.code, det.stderr).toBe(0);
    const cgroup = memoryCgroupOf(Number((await d.docker(['inspect', '-f', '{{.State.Pid}}', 'bb'])).stdout.trim())).dir;
    expect(fs.existsSync(cgroup) && path.basename(cgroup) !== 'memory').toBe(true);
    const ex = await d.docker(['exec', 'bb', 'sh', '-c', 'echo in-exec; id -u']);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toBe('in-exec\n0\n');
    await waitFor('the log', async () => ((await d.docker(['logs', 'bb'])).stdout.includes('started') ? true : undefined));
    const stop = await d.docker(['stop', '-t', '1', 'bb']);
    expect(stop.code, stop.stderr).toBe(0);
    expect((await d.docker(['inspect', '-f', '{{.State.Status}}', 'bb'])).stdout.trim()).toBe('exited');
    expect((await d.docker(['start', 'bb'])).code).toBe(0);
    const kill = await d.docker(['kill', 'bb']);
    expect(kill.code, kill.stderr).toBe(0);
    expect((await d.docker(['wait', 'bb'])).stdout.trim()).toBe('137');
    expect((await d.docker(['rm', 'bb'])).code).toBe(0);
    await expectClean();
    expect(fs.existsSync(cgroup)).toBe(false);
  }, 120_000);

  // urunc's GetUnikernelConfig (pkg/unikontainers) reads urunc.json from spec.Root.Path.
  it('a unikernel described by /urunc.json in its files (read from spec.root.path, which Docker mounted) boots', async () => {
    const r = await run(['--rm', HELLO_JSON]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout, r.stderr).toContain('Hello from a urunc-ts unikernel!');
    await expectClean();
  }, 120_000);

  it('a unikernel described by --annotation boots; mewz\'s exit device gives the status', async () => {
    const ann = Object.entries(UK_KEYS).flatMap(([k, v]) => ['--annotation', `${k}=${v}`]);
    const r = await run(['--rm', ...ann, HELLO_PLAIN, 'exit=3']);
    expect(r.stdout, r.stderr).toContain('Hello from a urunc-ts unikernel!');
    expect(r.code).toBe(7);
    await expectClean();
  }, 120_000);

  // The Docker fallback of urunc's shim (fetchDockerImageLabels, docker_fallback.go; a fork's open change): Config.Labels through Docker's API.
  it(`a unikernel described by its image's config labels boots (${containerdStore ? 'containerd image store' : 'default store: labels through the Docker Engine API'})`, async () => {
    const r = await run(['--rm', HELLO_LABELS, 'exit=3']);
    expect(r.stdout, r.stderr).toContain('Hello from a urunc-ts unikernel!');
    expect(r.code).toBe(7);
    await expectClean();
  }, 120_000);

  // urunc's reexec process (unikontainers.Exec) builds the monitor's command line at start, from the
  // interface it finds then: Docker 28 moves it in after Create, Docker 26 from its prestart hook.
  it('a networked Linux guest gets its NIC, Docker\'s address, gateway and MTU, and answers ping at its Docker IP; stop and kill end it', async () => {
    const r = await run(['-d', '--name', 'web', LINUX]);
    expect(r.code, r.stderr).toBe(0);
    const ip = (await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'web'])).stdout.trim();
    expect(ip).toMatch(new RegExp(`^${subnet.replace(/\./g, '\\.')}\\.\\d+$`));
    const logs = async () => { const l = await d.docker(['logs', 'web']); return l.stdout + l.stderr; };
    await waitFor('the guest to configure its Docker address', async () => ((await logs()).includes(`net: ${ip}/24 via ${subnet}.1`) ? true : undefined), 90_000)
      .catch(async (err: unknown) => { throw new Error(`${String(err)}; guest log:\n${await logs()}`); });
    expect(await logs()).toContain(`mtu: ${DOCKER_MTU}`);
    const ping = await runCmd('busybox', ['ping', '-c', '2', '-W', '3', ip]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    // The task's pid is the hypervisor (urunc-launch exec'd it at Start), in the container's cgroup.
    const pid = Number((await d.docker(['inspect', '-f', '{{.State.Pid}}', 'web'])).stdout.trim());
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toMatch(/qemu-system/);
    const cgroup = memoryCgroupOf(pid).dir;
    expect(cgroup).toContain(path.basename((await d.docker(['inspect', '-f', '{{.Id}}', 'web'])).stdout.trim()));
    const stop = await d.docker(['stop', '-t', '2', 'web']);
    expect(stop.code, stop.stderr).toBe(0);
    expect((await d.docker(['inspect', '-f', '{{.State.Status}}', 'web'])).stdout.trim()).toBe('exited');
    // Started again: a new Create and Start, a new namespace from Docker, the network found again at Start.
    const configured = async (addr: string) => (await logs()).split('\n').filter((l) => l.trim() === `net: ${addr}/24 via ${subnet}.1`).length;
    const before = await configured(ip);
    expect(before).toBe(1);
    expect((await d.docker(['start', 'web'])).code).toBe(0);
    const ip2 = (await d.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'web'])).stdout.trim();
    await waitFor('the restarted guest to configure its address', async () => ((await configured(ip2)) > (ip2 === ip ? before : 0) ? true : undefined), 90_000)
      .catch(async (err: unknown) => { throw new Error(`${String(err)} (${ip2}); guest log:\n${await logs()}`); });
    expect((await runCmd('busybox', ['ping', '-c', '1', '-W', '3', ip2])).code).toBe(0);
    expect((await d.docker(['kill', 'web'])).code).toBe(0);
    expect((await d.docker(['wait', 'web'])).stdout.trim()).toBe('137');
    expect((await d.docker(['rm', 'web'])).code).toBe(0);
    await expectClean();
    expect(fs.existsSync(cgroup)).toBe(false);
  }, 180_000);
});
