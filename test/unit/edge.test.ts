// Parsing at the edge: argv, start's stdin, socket addresses, mount options, event encoding.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BootstrapParams } from '../../src/gen/containerd/bootstrap/bootstrap.js';
import { TaskExit } from '../../src/gen/containerd/events/task.js';
import { Any } from '../../src/gen/google/protobuf/any.js';
import { Options } from '../../src/gen/runtimeoptions/api.js';
import { socketAddress } from '../../src/shim/address.js';
import { decodeStartInput } from '../../src/shim/bootstrap.js';
import { parseFlags, toArgs } from '../../src/shim/flags.js';
import { encodeEvent } from '../../src/shim/publisher.js';
import { parseMountOptions } from '../../src/rootfs/mounts.js';
import { decodeWaitStatus } from '../../src/sys/libc.js';

describe('flags', () => {
  it('parses containerd 1.6-2.2 argv', () => {
    const f = parseFlags(['-namespace', 'k8s.io', '-address', '/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'abc', '-debug', 'start']);
    expect(f).toMatchObject({ namespace: 'k8s.io', address: '/run/containerd/containerd.sock', publishBinary: '/usr/bin/containerd', id: 'abc', debug: true, action: 'start' });
  });

  it('parses the 2.3 tail order and -flag=value', () => {
    const f = parseFlags(['-namespace=default', '-address', '/a', '-publish-binary', '/c', '-id', 'x', '-bundle', '/b', '-debug', 'delete']);
    expect(f).toMatchObject({ namespace: 'default', id: 'x', bundle: '/b', debug: true, action: 'delete' });
  });

  it('parses -info and -v without an action', () => {
    expect(parseFlags(['-info']).info).toBe(true);
    expect(parseFlags(['-v']).version).toBe(true);
  });

  it('rejects unknown flags and missing values', () => {
    expect(() => parseFlags(['-bogus', 'x'])).toThrow(/not defined/);
    expect(() => parseFlags(['-id'])).toThrow(/needs an argument/);
  });

  it('round-trips through toArgs', () => {
    const f = parseFlags(['-namespace', 'n', '-address', '/a', '-publish-binary', '/p', '-id', 'i', 'start']);
    expect(parseFlags(toArgs(f, 'serve'))).toMatchObject({ namespace: 'n', address: '/a', publishBinary: '/p', id: 'i', action: 'serve' });
  });
});

describe('start stdin', () => {
  const cri = Any.encode({ typeUrl: 'runtimeoptions.v1.Options', value: Options.encode({ typeUrl: '', configPath: '/etc/urunc/config.toml', configBody: '' }).finish() }).finish();

  it('is empty for nerdctl and plain ctr', () => {
    expect(decodeStartInput(new Uint8Array(), 'id', 'ns')).toEqual({ configPath: undefined, ttrpcAddress: undefined, grpcAddress: undefined, socketDir: undefined });
  });

  it('reads CRI ConfigPath from a bare Any (containerd <= 2.2)', () => {
    expect(decodeStartInput(cri, 'id', 'ns').configPath).toBe('/etc/urunc/config.toml');
  });

  it('reads BootstrapParams (2.3+) when id and namespace match, with options in an extension', () => {
    const raw = BootstrapParams.encode({
      instanceId: 'id', namespace: 'ns', logLevel: 0, containerdVersion: '2.3.0',
      containerdTtrpcAddress: 'unix:///run/containerd/containerd.sock.ttrpc', containerdGrpcAddress: '/run/containerd/containerd.sock',
      containerdBinary: '/usr/bin/containerd', socketDir: '/run/k/s',
      extensions: [{ value: Any.decode(cri) }],
    }).finish();
    expect(decodeStartInput(raw, 'id', 'ns')).toEqual({
      configPath: '/etc/urunc/config.toml', ttrpcAddress: 'unix:///run/containerd/containerd.sock.ttrpc',
      grpcAddress: '/run/containerd/containerd.sock', socketDir: '/run/k/s', containerdVersion: '2.3.0',
    });
  });

  it('does not take an Any for BootstrapParams (both start with tag 0x0A)', () => {
    expect(cri[0]).toBe(0x0a);
    expect(decodeStartInput(cri, 'runtimeoptions.v1.Options', 'ns').ttrpcAddress).toBeUndefined();
  });

  it('ignores garbage', () => {
    expect(decodeStartInput(Buffer.from([0xff, 0x01, 0x02]), 'id', 'ns').configPath).toBeUndefined();
  });
});

describe('socket address', () => {
  it('is unix:///run/containerd/s/ + sha256(address/ns/group), as containerd computes it', () => {
    const digest = createHash('sha256').update('/run/containerd/containerd.sock/k8s.io/pod1').digest('hex');
    expect(socketAddress('/run/containerd/containerd.sock', 'k8s.io', 'pod1')).toBe(`unix:///run/containerd/s/${digest}`);
    expect(socketAddress('/x.sock', 'n', 'g', '/run/alt')).toMatch(/^unix:\/\/\/run\/alt\/[0-9a-f]{64}$/);
  });
});

describe('mount options', () => {
  it('splits flags from data', () => {
    expect(parseMountOptions(['ro', 'nosuid', 'lowerdir=/a:/b', 'upperdir=/u'])).toEqual({ flags: 0x1 | 0x2, data: 'lowerdir=/a:/b,upperdir=/u' });
    expect(parseMountOptions(['rbind', 'rw'])).toEqual({ flags: 0x1000 | 0x4000, data: '' });
  });
});

describe('wait status', () => {
  it('decodes exits and signals as 128+n', () => {
    expect(decodeWaitStatus(3 << 8)).toBe(3);
    expect(decodeWaitStatus(9)).toBe(137);
    expect(decodeWaitStatus(15 | 0x80)).toBe(143);
  });
});

describe('events', () => {
  it('use bare type URLs and containerd field numbers', () => {
    const at = new Date(1_700_000_000_123);
    const any = encodeEvent({ topic: '/tasks/exit', containerId: 'c', id: 'e1', pid: 42, exitStatus: 3, exitedAt: at });
    expect(any.typeUrl).toBe('containerd.events.TaskExit');
    const ev = TaskExit.decode(any.value);
    expect(ev).toMatchObject({ containerId: 'c', id: 'e1', pid: 42, exitStatus: 3 });
    expect(ev.exitedAt).toEqual({ seconds: 1_700_000_000n, nanos: 123_000_000 });
    for (const topic of ['/tasks/create', '/tasks/start', '/tasks/delete', '/tasks/exec-added', '/tasks/exec-started', '/tasks/paused', '/tasks/resumed', '/tasks/oom'] as const) {
      const e = encodeEvent({ topic, containerId: 'c', execId: 'x', id: 'c', pid: 1, exitStatus: 0, exitedAt: at, bundle: '/b', rootfs: [], io: { stdin: '', stdout: '', stderr: '', terminal: false }, checkpoint: '' } as never);
      expect(e.typeUrl).toMatch(/^containerd\.events\.Task[A-Za-z]+$/);
    }
  });
});

describe('oom counter files', () => {
  it('covers cgroup v1 and v2 for cgroupfs paths and refuses systemd or escaping paths', async () => {
    const { oomCounterFiles } = await import('../../src/task/oom.js');
    expect(oomCounterFiles('/default/t')).toEqual([
      '/sys/fs/cgroup/memory/default/t/memory.oom_control',
      '/sys/fs/cgroup/default/t/memory.events',
      '/sys/fs/cgroup/unified/default/t/memory.events',
    ]);
    expect(oomCounterFiles('system.slice:cri:abc')).toEqual([]);
    expect(oomCounterFiles('/a/../../etc')).toEqual([]);
    expect(oomCounterFiles(undefined)).toEqual([]);
  });
});
