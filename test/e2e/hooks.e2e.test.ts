// OCI hooks (what nerdctl's networking relies on) through this shim: for a unikernel the shim runs
// prestart (deprecated, but Docker 26 attaches its network with it), createRuntime, createContainer, startContainer, poststart and poststop itself, in order, with the
// OCI state JSON (the container's own bundle, the hypervisor's pid) on stdin; a failing
// createRuntime hook fails Create and leaves nothing. An ordinary container's hooks run through
// runc as before. The spec comes from `ctr oci spec` with `ctr run --config`.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUESTS, buildGuests, linuxRootLayer } from '../fixtures/unikernel-images.js';
import { Containerd, RUNTIME, versionsUnderTest, waitFor, qemuPids, type Version } from './containerd.js';

const KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;

describe.each(versionsUnderTest())('OCI hooks on containerd %s', (version: Version) => {
  let c: Containerd;
  let base: Record<string, unknown>;

  beforeAll(async () => {
    buildGuests();
    const cfg = path.join(GUESTS, '..', 'hooks-kvm.toml');
    fs.writeFileSync(cfg, '[monitors.qemu]\naccelerator = "auto"\nmachine = "microvm"\ncpu = "host,-arch-capabilities"\n');
    c = await Containerd.start(version, { URUNC_CONFIG_PATH: cfg });
    base = JSON.parse((await c.ctr(['oci', 'spec'])).stdout) as Record<string, unknown>;
  }, 60_000);

  afterAll(async () => {
    await c?.destroy();
  });

  /** A spec whose hooks record their kind (in order) and their stdin; `fail` makes that kind exit 3. */
  const specWithHooks = (id: string, root: string, over: Record<string, unknown>, fail?: string, kinds: readonly string[] = KINDS) => {
    const out = path.join(c.dir, `hooks-${id}`);
    fs.mkdirSync(out);
    const spec = structuredClone(base) as Record<string, any>;
    spec.root = { path: root, readonly: true };
    spec.linux.cgroupsPath = `/default/${id}`;
    spec.process.terminal = false;
    Object.assign(spec, over);
    spec.hooks = Object.fromEntries(kinds.map((k) => [k, [{
      path: '/bin/sh', args: ['sh', '-c', `echo ${k} >> ${out}/order; cat > ${out}/${k}.json${k === fail ? '; echo "no network for you" >&2; exit 3' : ''}`],
    }]]));
    const file = path.join(c.dir, `spec-${id}.json`);
    fs.writeFileSync(file, JSON.stringify(spec));
    return { file, out, state: (k: string) => JSON.parse(fs.readFileSync(path.join(out, `${k}.json`), 'utf8')) };
  };

  const unikernelRoot = (): string => {
    const root = fs.mkdtempSync(path.join(c.dir, 'ukroot-'));
    fs.mkdirSync(path.join(root, 'unikernel'));
    fs.copyFileSync(path.join(GUESTS, 'hello.elf'), path.join(root, 'unikernel', 'hello.elf'));
    return root;
  };
  const ukAnnotations = {
    // mewz: its exit device (urunc mewz.go MonitorCli) gives the hello kernel's status 3 as qemu's 7.
    'com.urunc.unikernel.unikernelType': 'mewz', 'com.urunc.unikernel.hypervisor': 'qemu', 'com.urunc.unikernel.binary': '/unikernel/hello.elf', 'test.marker': 'hooks',
  };

  it('a unikernel: the shim runs all six hooks in order, prestart first as runc (its libcontainer runs prestart, then createRuntime), with the container bundle and the hypervisor pid', async () => {
    const id = 'hooks-uk';
    const h = specWithHooks(id, unikernelRoot(), { annotations: ukAnnotations, process: { ...(base.process as object), args: ['exit=3'], terminal: false } });
    const r = await c.ctr(['run', '--rm', '--config', h.file, '--runtime', RUNTIME, id]);
    expect(r.stdout).toContain('Hello from a urunc-ts unikernel!');
    expect(r.code).toBe(7);
    expect(fs.readFileSync(path.join(h.out, 'order'), 'utf8').trim().split('\n')).toEqual([...KINDS]);
    const bundle = path.join(c.state, 'io.containerd.runtime.v2.task', 'default', id);
    const status = { prestart: 'creating', createRuntime: 'creating', createContainer: 'creating', startContainer: 'created', poststart: 'running', poststop: 'stopped' };
    const pid = h.state('createRuntime').pid as number;
    expect(pid).toBeGreaterThan(0);
    for (const k of KINDS) {
      expect(h.state(k)).toEqual({ ociVersion: base.ociVersion, id, status: status[k], pid, bundle, annotations: ukAnnotations });
    }
  }, 60_000);

  it('a unikernel whose createRuntime hook fails: Create fails with the hook error and leaves nothing', async () => {
    const id = 'hooks-uk-fail';
    const h = specWithHooks(id, unikernelRoot(), { annotations: ukAnnotations, process: { ...(base.process as object), args: ['exit=3'], terminal: false } }, 'createRuntime');
    const r = await c.ctr(['run', '--rm', '--config', h.file, '--runtime', RUNTIME, id]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('createRuntime hook /bin/sh failed with status 3: no network for you');
    expect(fs.readFileSync(path.join(h.out, 'order'), 'utf8').trim()).toBe('prestart\ncreateRuntime');
    await c.ctr(['c', 'rm', id]);
    await waitFor('no shim', () => (c.shimPids().length === 0 ? true : undefined), 15_000);
    expect(qemuPids()).toEqual([]);
    expect(c.mounts()).toEqual([]);
    expect(fs.existsSync(path.join(c.state, 'io.containerd.runtime.v2.task', 'default', id))).toBe(false);
  }, 60_000);

  it('an ordinary container: runc runs the hooks as before', async () => {
    const id = 'hooks-runc';
    // runc runs createContainer and startContainer inside the container, where the host paths are not: only the host-side kinds here.
    const host = ['prestart', 'createRuntime', 'poststart', 'poststop'];
    const h = specWithHooks(id, linuxRootLayer(), { process: { ...(base.process as object), args: ['/bin/echo', 'plain'], terminal: false } }, undefined, host);
    const r = await c.ctr(['run', '--rm', '--config', h.file, '--runtime', RUNTIME, id]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('plain\n');
    expect(fs.readFileSync(path.join(h.out, 'order'), 'utf8').trim().split('\n')).toEqual(host);
    expect(h.state('createRuntime')).toMatchObject({ id, bundle: path.join(c.state, 'io.containerd.runtime.v2.task', 'default', id) });
  }, 60_000);
});
