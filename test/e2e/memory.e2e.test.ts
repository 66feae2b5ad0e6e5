// What the shared daemon loads (issue 17), read from outside in its ESM loader's registry
// (NODE_OPTIONS=--import test/fixtures/module-trace.mjs records every module URL it loads; the
// bundle's chunks name their source modules in esbuild's `// src/...` comments): a pod's pause and
// ordinary containers load no containerd client and none of the unikernel set-up, and a module
// loaded on first use after an upgrade removed the daemon's chunks still comes from its own build.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../fixtures/oci-image.js';
import { Containerd, REPO, RUNTIME, pidsMatching, versionsUnderTest, waitFor } from './containerd.js';

const HOOK = path.join(REPO, 'test', 'fixtures', 'module-trace.mjs');

/** The containerd client (its services load together), loaded for the image lookup of every container but a pod's sandbox. */
const IMAGE_LOOKUP = ['src/shim/containerd-grpc.ts', 'src/shim/image-annotations.ts', 'src/shim/containerd-snapshots.ts'];
/** Loaded only for unikernels, checkpoints, or pod sandboxes owned by the shim. */
const NOT_FOR_AN_ORDINARY_CONTAINER = [
  'src/task/prepare.ts', 'src/task/launch.ts', 'src/task/vm.ts', 'src/shim/docker-labels.ts', 'src/monitors/launcher.ts', 'src/monitors/network.ts', 'src/monitors/virtiofsd.ts',
  'src/monitors/watchdog.ts', 'src/monitors/runtime-config.ts', 'src/monitors/unikernel-config.ts', 'src/rootfs/planner.ts', 'src/rootfs/view.ts',
  'src/task/sandbox.ts', 'src/shim/sandbox-rpc.ts', 'src/task/criu.ts', 'src/monitors/checkpoint.ts', 'src/shim/grpc/server.ts',
];

describe.each(versionsUnderTest())('containerd %s', (version) => {
  let c: Containerd;
  let work: string;
  let trace: string;

  beforeAll(async () => {
    const tar = buildBusyboxImage(path.join(REPO, '.cache', 'images'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'module-trace-'));
    trace = path.join(work, 'trace');
    c = await Containerd.start(version, { NODE_OPTIONS: `--import=${HOOK}`, URUNC_MODULE_TRACE: trace }, { privateShim: true });
    const r = await c.ctr(['images', 'import', tar]);
    expect(r.code, r.stderr).toBe(0);
  });

  afterAll(async () => {
    await c?.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const daemonPid = (): number => {
    const [pid] = pidsMatching((argv) => argv.includes(c.address) && argv.includes('serve') && argv.some((a) => a.includes('containerd-shim-urunc-v2')));
    if (!pid) throw new Error('no shim daemon');
    return pid;
  };

  /** The daemon's registry: builtins by name, and the source modules of the dist chunks it loaded. */
  const registry = (pid: number): { builtins: string[]; modules: string[]; chunks: string[] } => {
    const urls = fs.readFileSync(`${trace}.${pid}`, 'utf8').split('\n').filter(Boolean);
    const chunks = urls.filter((u) => u.startsWith('file:') && u.includes('/dist/')).map((u) => fileURLToPath(u));
    const modules = chunks.flatMap((f) => [...fs.readFileSync(f, 'utf8').matchAll(/^\/\/ ((?:src|node_modules)\/\S+)$/gm)].map((m) => m[1] as string));
    return { builtins: urls.filter((u) => u.startsWith('node:')), modules, chunks };
  };

  it('a pod\'s pause container loads no containerd client and no unikernel set-up; its ordinary container and a plain ctr container load the client for their image lookup (as urunc asks containerd for every container), from the daemon\'s own build after an upgrade removed its chunks, and no unikernel set-up', async () => {
    const ids = ['pause-1', 'app-1', 'plain-1'];
    try {
      // A pause container, as CRI creates it.
      let r = await c.ctr(['run', '-d', '--annotation', 'io.kubernetes.cri.container-type=sandbox', '--runtime', RUNTIME, BUSYBOX_IMAGE, 'pause-1', 'sleep', '300']);
      expect(r.code, r.stderr).toBe(0);
      // Polled as kubelet does.
      expect((await c.ctr(['task', 'ls'])).code).toBe(0);
      expect((await c.ctr(['task', 'metrics', 'pause-1'])).code).toBe(0);
      const pid = daemonPid();
      const pod = registry(pid);
      // The registry is read (the task service is in it), and none of the heavy modules is.
      expect(pod.modules).toContain('src/task/service.ts');
      expect(pod.modules).toContain('src/task/container-kind.ts');
      for (const m of [...IMAGE_LOOKUP, ...NOT_FOR_AN_ORDINARY_CONTAINER]) expect(pod.modules, m).not.toContain(m);
      expect(pod.modules.filter((m) => m.startsWith('node_modules/smol-toml/') || m.startsWith('node_modules/@grpc/'))).toEqual([]);
      expect(pod.builtins).not.toContain('node:http2');

      // An upgrade: the new build's chunks have other names, so the ones the daemon has not loaded are gone.
      const chunkDir = path.join(c.shimRoot, 'dist', 'chunks');
      const before = new Map(fs.readdirSync(chunkDir).map((f) => [f, fs.readFileSync(path.join(chunkDir, f))]));
      const loaded = new Set(pod.chunks.map((f) => path.basename(f)));
      const removed = [...before.keys()].filter((f) => !loaded.has(f));
      expect(removed.length).toBeGreaterThan(5);
      for (const f of removed) fs.rmSync(path.join(chunkDir, f));

      // An ordinary container of the pod: its image may describe a unikernel in its labels (which CRI
      // copies into the container's), so containerd is asked; nothing of the unikernel set-up loads.
      r = await c.ctr(['run', '-d', '--annotation', 'io.kubernetes.cri.container-type=container', '--annotation', 'io.kubernetes.cri.sandbox-id=pause-1',
        '--runtime', RUNTIME, BUSYBOX_IMAGE, 'app-1', 'sleep', '300']);
      expect(r.code, r.stderr).toBe(0);
      expect(daemonPid()).toBe(pid);
      const app = registry(pid);
      for (const m of IMAGE_LOOKUP) expect(app.modules, m).toContain(m);
      expect(app.builtins).toContain('node:http2');
      for (const m of NOT_FOR_AN_ORDINARY_CONTAINER) expect(app.modules, m).not.toContain(m);
      // Every chunk of the running build is back, byte for byte.
      for (const [f, content] of before) expect(fs.readFileSync(path.join(chunkDir, f)).equals(content), f).toBe(true);

      // A container from ctr, whose image may describe a unikernel only in its annotations: the same lookup.
      r = await c.ctr(['run', '-d', '--runtime', RUNTIME, BUSYBOX_IMAGE, 'plain-1', 'sleep', '300']);
      expect(r.code, r.stderr).toBe(0);
      const plain = registry(pid);
      for (const m of NOT_FOR_AN_ORDINARY_CONTAINER) expect(plain.modules, m).not.toContain(m);
    } finally {
      for (const id of ids) await c.ctr(['task', 'kill', '-s', 'KILL', id]);
      for (const id of ids) {
        await waitFor(`${id} stopped`, async () => ((await c.ctr(['task', 'rm', id])).code === 0 || !(await c.ctr(['task', 'ls'])).stdout.includes(id) ? true : undefined), 10_000).catch(() => undefined);
        await c.ctr(['c', 'rm', id]);
      }
    }
  }, 90_000);
});
