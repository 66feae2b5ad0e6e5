// The pod namespace holder (src/task/sandbox-holder.ts) and the sandbox service around it
// (src/task/sandbox.ts) in a real network namespace made by `ip netns add`, as CRI makes one before
// CreateSandbox; and `delete`'s view of a sandbox bundle.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { holderAlive, killIfSame, readSandboxState, startHolder, validateHolderOptions, SANDBOX_STATE, type Holder } from '../../src/task/sandbox-holder.js';
import { SandboxService, addPodFiles, holderOptionsFor } from '../../src/task/sandbox.js';
import { NamespaceMode, PodSandboxConfig } from '../../src/gen/cri/runtime/v1/api.js';
import { podConfigOf } from '../../src/shim/sandbox-rpc.js';
import { runDelete } from '../../src/shim/delete.js';
import { DeleteResponse } from '../../src/gen/containerd/task/v2/shim.js';

const NETNS = `urunc-holder-${process.pid}`;
const netnsPath = `/var/run/netns/${NETNS}`;
const held: Holder[] = [];
const POD = { netnsPath, ipc: true, uts: true, pid: false };

beforeEach(() => {
  expect(spawnSync('ip', ['netns', 'add', NETNS]).status).toBe(0);
});
afterEach(() => {
  for (const h of held.splice(0)) killIfSame(h);
  spawnSync('ip', ['netns', 'delete', NETNS]);
});

const ns = (pid: number | 'self', kind: string) => fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
const inNetns = (argv: string[]) => spawnSync('ip', ['netns', 'exec', NETNS, ...argv], { encoding: 'utf8' }).stdout.trim();

it('holds the pod network namespace with IPC and UTS namespaces of its own, until killed', async () => {
  const h = await startHolder(POD);
  held.push(h);
  expect(ns(h.pid, 'net')).toBe(`net:[${fs.statSync(netnsPath).ino}]`);
  expect(ns(h.pid, 'net')).not.toBe(ns('self', 'net'));
  expect(ns(h.pid, 'ipc')).not.toBe(ns('self', 'ipc'));
  expect(ns(h.pid, 'uts')).not.toBe(ns('self', 'uts'));
  // Mount and pid namespaces stay the host's: only what CRI joins containers to is new.
  expect(ns(h.pid, 'mnt')).toBe(ns('self', 'mnt'));
  expect(ns(h.pid, 'pid')).toBe(ns('self', 'pid'));
  expect(fs.readFileSync(`/proc/${h.pid}/cmdline`, 'utf8').split('\0').filter(Boolean)).toEqual(['sleep', 'infinity']);
  expect(holderAlive(h)).toBe(true);
  killIfSame(h);
  expect((await h.exited).status).toBe(137);
  expect(holderAlive(h)).toBe(false);
  // Idempotent, and never kills a process that merely reuses the pid.
  killIfSame(h);
  killIfSame({ pid: process.pid, startTime: 'not-this-one' });
});

it('a shared PID namespace (shareProcessNamespace): the holder is pid 1 of its own; the hostname and a net sysctl are set inside', async () => {
  const h = await startHolder({ ...POD, pid: true, hostname: 'web-0', sysctls: { 'net.ipv4.ip_unprivileged_port_start': '80' } });
  held.push(h);
  expect(ns(h.pid, 'pid')).not.toBe(ns('self', 'pid'));
  expect(fs.readFileSync(`/proc/${h.pid}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m);
  expect(spawnSync('nsenter', [`--uts=/proc/${h.pid}/ns/uts`, 'hostname'], { encoding: 'utf8' }).stdout.trim()).toBe('web-0');
  expect(os.hostname()).not.toBe('web-0');
  expect(inNetns(['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'])).toBe('80');
  killIfSame(h);
  expect((await h.exited).status).toBe(137);
});

it('host networking and host IPC: the holder stays in the host network, IPC and UTS namespaces', async () => {
  const h = await startHolder({ ipc: false, uts: false, pid: false });
  held.push(h);
  for (const kind of ['net', 'ipc', 'uts', 'pid']) expect(ns(h.pid, kind)).toBe(ns('self', kind));
});

it('refuses, before starting anything, what a pod cannot ask: host sysctls, a sysctl path escape, a bad hostname', () => {
  expect(() => validateHolderOptions({ ...POD, sysctls: { 'kernel.hostname': 'x' } })).toThrow(/not namespaced/);
  expect(() => validateHolderOptions({ ...POD, sysctls: { 'net.ipv4//..//x': '1' } })).toThrow(/invalid sysctl name/);
  expect(() => validateHolderOptions({ ...POD, sysctls: { 'net.core.somaxconn': '1\n2' } })).toThrow(/invalid value/);
  expect(() => validateHolderOptions({ ipc: true, uts: false, pid: false, sysctls: { 'net.core.somaxconn': '1' } })).toThrow(/host's network/);
  expect(() => validateHolderOptions({ ...POD, ipc: false, sysctls: { 'kernel.shmmax': '1' } })).toThrow(/host's IPC/);
  expect(() => validateHolderOptions({ ...POD, hostname: 'a b' })).toThrow(/invalid pod hostname/);
  expect(() => validateHolderOptions({ ...POD, sysctls: { 'kernel.shmmax': '1', 'net.ipv4.conf.eth0/100.rp_filter': '1' }, hostname: 'ok' })).not.toThrow();
});

it('a network namespace path that does not exist fails before anything is started', async () => {
  await expect(startHolder({ ...POD, netnsPath: '/var/run/netns/urunc-no-such-netns' })).rejects.toThrow(/ENOENT/);
});

it('a path that is not a network namespace: nsenter fails and its error is reported', async () => {
  await expect(startHolder({ ...POD, netnsPath: '/etc/hostname' })).rejects.toThrow(/sandbox holder in \/etc\/hostname exited with status \d+: nsenter/);
});

describe('SandboxService', () => {
  const log = pino({ level: 'silent' });
  const any = (o: object) => ({ typeUrl: 'type.googleapis.com/runtime.v1.PodSandboxConfig', value: PodSandboxConfig.encode(PodSandboxConfig.fromPartial(o)).finish() });
  const config = (o: object) => podConfigOf(any(o));

  it('the PodSandboxConfig decides the namespaces; a pod user namespace and foreign options are refused', () => {
    expect(holderOptionsFor(netnsPath, config({ hostname: 'h' }))).toMatchObject({ netnsPath, ipc: true, uts: true, pid: false, hostname: 'h' });
    const hostAll = config({ hostname: 'h', linux: { securityContext: { namespaceOptions: { network: NamespaceMode.NODE, ipc: NamespaceMode.NODE, pid: NamespaceMode.POD } } } });
    expect(holderOptionsFor('', hostAll)).toMatchObject({ netnsPath: undefined, ipc: false, uts: false, pid: true, hostname: undefined });
    expect(() => holderOptionsFor(netnsPath, config({ linux: { securityContext: { namespaceOptions: { usernsOptions: { mode: NamespaceMode.POD } } } } }))).toThrow(/user namespace/);
    expect(() => podConfigOf({ typeUrl: 'x.Other', value: new Uint8Array([1]) })).toThrow(/expected runtime\.v1\.PodSandboxConfig/);
    expect(() => podConfigOf({ typeUrl: 'runtime.v1.PodSandboxConfig', value: new Uint8Array([0xff, 0xff]) })).toThrow(/sandbox options:/);
    expect(() => holderOptionsFor('', undefined)).toThrow(/no netns_path/);
  });

  it('create, start, status, stop, wait, shutdown; the record in the bundle is what `delete` needs', async () => {
    const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-'));
    let empty = 0;
    const svc = new SandboxService(log, () => empty++);
    try {
      await svc.create('k8s.io', { id: 'pod1', bundle, netnsPath, config: config({ hostname: 'pod1', dnsConfig: { servers: ['10.96.0.10', '1.1.1.1'], searches: ['svc.cluster.local'], options: ['ndots:5'] } }) });
      // The pod files CRI's pause sandbox would have made, and their mounts added to a container's spec once.
      const files = svc.podFiles('k8s.io', 'pod1') ?? [];
      expect(files.map((f) => f.destination)).toEqual(['/etc/hostname', '/etc/hosts', '/etc/resolv.conf']);
      expect(fs.readFileSync(path.join(bundle, 'etc', 'hostname'), 'utf8')).toBe('pod1\n');
      expect(fs.readFileSync(path.join(bundle, 'etc', 'resolv.conf'), 'utf8')).toBe('search svc.cluster.local\nnameserver 10.96.0.10\nnameserver 1.1.1.1\noptions ndots:5\n');
      expect(fs.readFileSync(path.join(bundle, 'etc', 'hosts'), 'utf8')).toBe(fs.readFileSync('/etc/hosts', 'utf8'));
      const ctr = fs.mkdtempSync(path.join(os.tmpdir(), 'ctr-'));
      fs.writeFileSync(path.join(ctr, 'config.json'), JSON.stringify({ ociVersion: '1.1.0', root: { path: 'rootfs', readonly: true }, mounts: [{ destination: '/etc/hosts', type: 'bind', source: '/kubelet/etc-hosts' }], x: 1 }));
      expect(addPodFiles(ctr, files)).toBe(2);
      expect(addPodFiles(ctr, files)).toBe(0);
      const spec = JSON.parse(fs.readFileSync(path.join(ctr, 'config.json'), 'utf8'));
      expect(spec.x).toBe(1);
      expect(spec.mounts).toEqual([
        { destination: '/etc/hosts', type: 'bind', source: '/kubelet/etc-hosts' },
        { destination: '/etc/hostname', type: 'bind', source: path.join(bundle, 'etc', 'hostname'), options: ['rbind', 'rprivate', 'ro'] },
        { destination: '/etc/resolv.conf', type: 'bind', source: path.join(bundle, 'etc', 'resolv.conf'), options: ['rbind', 'rprivate', 'ro'] },
      ]);
      fs.rmSync(ctr, { recursive: true });
      expect(svc.podFiles('k8s.io', 'nope')).toBeUndefined();
      await expect(svc.create('k8s.io', { id: 'pod1', bundle, netnsPath, config: undefined })).rejects.toThrow(/already exists/);
      await expect(svc.create('k8s.io', { id: 'pod2', bundle: 'relative', netnsPath, config: undefined })).rejects.toThrow(/not an existing directory/);
      expect(svc.status('k8s.io', 'pod1', false).state).toBe('SANDBOX_NOTREADY');
      const { pid } = await svc.start('k8s.io', 'pod1');
      held.push(readSandboxState(bundle)?.holder as Holder);
      expect((await svc.start('k8s.io', 'pod1')).pid).toBe(pid);
      const st = svc.status('k8s.io', 'pod1', true);
      expect(st).toMatchObject({ pid, state: 'SANDBOX_READY' });
      expect(JSON.parse(st.info.info as string).namespaces).toContainEqual({ type: 'network', path: netnsPath });
      expect(readSandboxState(bundle)?.holder?.pid).toBe(pid);
      expect(() => svc.ping('k8s.io', 'other')).toThrow(/not found/);
      const waited = svc.wait('k8s.io', 'pod1');
      await svc.stop('k8s.io', 'pod1');
      expect((await waited).exitStatus).toBe(137);
      expect(svc.status('k8s.io', 'pod1', false).state).toBe('SANDBOX_NOTREADY');
      expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
      await svc.shutdown('k8s.io', 'pod1');
      expect(svc.size).toBe(0);
      expect(empty).toBe(1);
      expect(fs.existsSync(path.join(bundle, SANDBOX_STATE))).toBe(false);
    } finally {
      fs.rmSync(bundle, { recursive: true, force: true });
    }
  });

  it('`delete` of a sandbox bundle whose daemon died stops the holder it recorded', async () => {
    const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-'));
    try {
      const svc = new SandboxService(log);
      await svc.create('k8s.io', { id: 'pod3', bundle, netnsPath, config: undefined });
      const { pid } = await svc.start('k8s.io', 'pod3');
      held.push(readSandboxState(bundle)?.holder as Holder);
      let out: Uint8Array = new Uint8Array();
      await runDelete({ id: 'pod3', namespace: 'k8s.io', bundle, address: '' } as never, { cwd: bundle, stdout: (b: Uint8Array) => (out = b), stderr: () => undefined } as never);
      expect(DeleteResponse.decode(out).pid).toBe(pid);
      await expect.poll(() => fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), { timeout: 2000 }).toBe(false);
      expect(fs.existsSync(path.join(bundle, SANDBOX_STATE))).toBe(false);
    } finally {
      fs.rmSync(bundle, { recursive: true, force: true });
    }
  });
});
