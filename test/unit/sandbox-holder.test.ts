// The pod namespace holder (src/task/sandbox-holder.ts) in a real network namespace made by
// `ip netns add`, as CRI makes one before CreateSandbox.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { holderAlive, killIfSame, startHolder, type Holder } from '../../src/task/sandbox-holder.js';

const NETNS = `urunc-holder-${process.pid}`;
const netnsPath = `/var/run/netns/${NETNS}`;
const held: Holder[] = [];

beforeEach(() => {
  expect(spawnSync('ip', ['netns', 'add', NETNS]).status).toBe(0);
});
afterEach(() => {
  for (const h of held.splice(0)) killIfSame(h);
  spawnSync('ip', ['netns', 'delete', NETNS]);
});

const ns = (pid: number | 'self', kind: string) => fs.readlinkSync(`/proc/${pid}/ns/${kind}`);

it('holds the pod network namespace with IPC and UTS namespaces of its own, until killed', async () => {
  const h = await startHolder(netnsPath);
  held.push(h);
  expect(ns(h.pid, 'net')).toBe(`net:[${fs.statSync(netnsPath).ino}]`);
  expect(ns(h.pid, 'net')).not.toBe(ns('self', 'net'));
  expect(ns(h.pid, 'ipc')).not.toBe(ns('self', 'ipc'));
  expect(ns(h.pid, 'uts')).not.toBe(ns('self', 'uts'));
  // Mount and pid namespaces stay the host's: only what CRI joins containers to is new.
  expect(ns(h.pid, 'mnt')).toBe(ns('self', 'mnt'));
  expect(fs.readFileSync(`/proc/${h.pid}/cmdline`, 'utf8').split('\0').filter(Boolean)).toEqual(['sleep', 'infinity']);
  expect(holderAlive(h)).toBe(true);
  killIfSame(h);
  await expect.poll(() => holderAlive(h), { timeout: 2000 }).toBe(false);
  // Idempotent, and never kills a process that merely reuses the pid.
  killIfSame(h);
  killIfSame({ pid: process.pid, startTime: 'not-this-one' });
});

it('a network namespace path that does not exist fails before anything is started', async () => {
  await expect(startHolder('/var/run/netns/urunc-no-such-netns')).rejects.toThrow(/ENOENT/);
});

it('a path that is not a network namespace: nsenter fails and its error is reported', async () => {
  await expect(startHolder('/etc/hostname')).rejects.toThrow(/sandbox holder in \/etc\/hostname exited with status \d+: nsenter/);
});
